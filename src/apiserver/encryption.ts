/**
 * Encryption at rest (`--encryption-provider-config`): an EncryptionConfiguration
 * (apiserver.config.k8s.io/v1) names, per resource, an ordered list of providers. Writes use the
 * first provider; reads pick the provider by the stored value's prefix
 * (`k8s:enc:<provider>:v1:<key name>:`), or `identity` for values without one. Values are laid out
 * as upstream's transformers lay them out: aescbc is IV + AES-CBC (PKCS#7); aesgcm is nonce +
 * AES-GCM ciphertext and tag, with the storage key as additional data; secretbox is nonce +
 * XSalsa20-Poly1305. Rotation: put the new key first and keep the old one after it, then rewrite
 * the objects (`kubectl get secrets -A -o json | kubectl replace -f -`).
 */
import fs from "node:fs";
import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from "node:crypto";
import YAML from "yaml";
import nacl from "tweetnacl";

/** Turns stored bytes into plain bytes and back, for one resource. */
export interface ValueTransformer {
  toStorage(plain: Uint8Array, key: string): Uint8Array;
  fromStorage(stored: Uint8Array, key: string): Uint8Array;
}

export class EncryptionConfigError extends Error {
  override readonly name = "EncryptionConfigError";
}

interface Provider {
  /** Bytes stored values of this provider start with; empty for identity. */
  prefix: Buffer;
  encrypt(plain: Buffer, key: string): Buffer;
  decrypt(body: Buffer, key: string): Buffer;
}

const IDENTITY: Provider = {
  prefix: Buffer.alloc(0),
  encrypt: (plain) => plain,
  decrypt: (body) => body,
};

function provider(kind: string, keyName: string, secret: Buffer): Provider {
  const prefix = Buffer.from(`k8s:enc:${kind}:v1:${keyName}:`);
  switch (kind) {
    case "aescbc":
      return {
        prefix,
        encrypt(plain) {
          const iv = randomBytes(16);
          const c = createCipheriv(`aes-${secret.length * 8}-cbc`, secret, iv);
          return Buffer.concat([iv, c.update(plain), c.final()]);
        },
        decrypt(body) {
          if (body.length < 16 || (body.length - 16) % 16 !== 0) {
            throw new Error("the stored data is not a multiple of the block size");
          }
          const d = createDecipheriv(`aes-${secret.length * 8}-cbc`, secret, body.subarray(0, 16));
          return Buffer.concat([d.update(body.subarray(16)), d.final()]);
        },
      };
    case "aesgcm":
      return {
        prefix,
        encrypt(plain, key) {
          const nonce = randomBytes(12);
          const c = createCipheriv(`aes-${secret.length * 8}-gcm` as CipherGCMTypes, secret, nonce);
          c.setAAD(Buffer.from(key));
          return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
        },
        decrypt(body, key) {
          if (body.length < 12 + 16)
            throw new Error("the stored data was shorter than the nonce and tag");
          const d = createDecipheriv(
            `aes-${secret.length * 8}-gcm` as CipherGCMTypes,
            secret,
            body.subarray(0, 12),
          );
          d.setAAD(Buffer.from(key));
          d.setAuthTag(body.subarray(body.length - 16));
          return Buffer.concat([d.update(body.subarray(12, body.length - 16)), d.final()]);
        },
      };
    case "secretbox":
      return {
        prefix,
        encrypt(plain) {
          const nonce = randomBytes(24);
          return Buffer.concat([nonce, nacl.secretbox(plain, nonce, secret)]);
        },
        decrypt(body) {
          const out = nacl.secretbox.open(body.subarray(24), body.subarray(0, 24), secret);
          if (!out) throw new Error("output array was not large enough for encryption");
          return Buffer.from(out);
        },
      };
    default:
      throw new Error(`unknown provider ${kind}`);
  }
}

class PrefixTransformer implements ValueTransformer {
  constructor(private readonly providers: Provider[]) {}

  toStorage(plain: Uint8Array, key: string): Uint8Array {
    const p = this.providers[0]!;
    if (p === IDENTITY) return plain;
    return Buffer.concat([p.prefix, p.encrypt(Buffer.from(plain), key)]);
  }

  fromStorage(stored: Uint8Array, key: string): Uint8Array {
    const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    let identity = false;
    for (const p of this.providers) {
      if (p === IDENTITY) {
        identity = true;
        continue;
      }
      if (bytes.length >= p.prefix.length && bytes.subarray(0, p.prefix.length).equals(p.prefix)) {
        return p.decrypt(bytes.subarray(p.prefix.length), key);
      }
    }
    if (identity && !bytes.subarray(0, 8).equals(Buffer.from("k8s:enc:"))) return stored;
    throw new Error(`no matching prefix found for the stored value of ${key}`);
  }
}

const KEY_LENGTHS: Record<string, number[]> = {
  aescbc: [16, 24, 32],
  aesgcm: [16, 24, 32],
  secretbox: [32],
};

/**
 * Reads an EncryptionConfiguration file; errors name the file and the field, as upstream's
 * validation does. Returns the transformer of a group/resource, or undefined to store it plain.
 */
export function loadEncryptionConfig(
  file: string,
): (group: string, resource: string) => ValueTransformer | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new EncryptionConfigError(
      `error reading encryption provider configuration file "${file}": ${(err as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new EncryptionConfigError(
      `error decoding encryption provider configuration file "${file}": ${(err as Error).message}`,
    );
  }
  const fail = (msg: string) =>
    new EncryptionConfigError(`error while parsing file "${file}": ${msg}`);
  const config = doc as { kind?: string; apiVersion?: string; resources?: unknown };
  if (!config || typeof config !== "object" || config.kind !== "EncryptionConfiguration") {
    throw fail(`got unexpected kind "${config?.kind ?? ""}", expected EncryptionConfiguration`);
  }
  if (config.apiVersion !== "apiserver.config.k8s.io/v1") {
    throw fail(
      `no kind "EncryptionConfiguration" is registered for version "${config.apiVersion ?? ""}"`,
    );
  }
  if (!Array.isArray(config.resources) || config.resources.length === 0) {
    throw fail(
      "resources: Required value: EncryptionConfiguration.Resources must contain at least one resource",
    );
  }
  const rules: Array<{ match: string[]; transformer: ValueTransformer }> = [];
  config.resources.forEach((r: { resources?: unknown; providers?: unknown }, i: number) => {
    const at = `resources[${i}]`;
    if (!Array.isArray(r.resources) || r.resources.length === 0) {
      throw fail(`${at}.resources: Required value: resource must be specified`);
    }
    if (!Array.isArray(r.providers) || r.providers.length === 0) {
      throw fail(`${at}.providers: Required value: provider must be specified`);
    }
    const providers: Provider[] = r.providers
      .map((p: Record<string, unknown>, j: number) => {
        const pat = `${at}.providers[${j}]`;
        const kinds = Object.keys(p ?? {});
        if (kinds.length !== 1) {
          throw fail(
            `${pat}: Invalid value: "${kinds.join(",")}": more than one provider specified in a single element, should split into different list elements`,
          );
        }
        const kind = kinds[0]!;
        if (kind === "identity") return IDENTITY;
        if (kind === "kms")
          throw fail(
            `${pat}.kms: Unsupported value: "kms": KMS providers are not supported by k8ts`,
          );
        if (!KEY_LENGTHS[kind]) throw fail(`${pat}: Unsupported value: "${kind}"`);
        const keys = (p[kind] as { keys?: Array<{ name?: string; secret?: string }> } | null)?.keys;
        if (!Array.isArray(keys) || keys.length === 0) {
          throw fail(
            `${pat}.${kind}.keys: Required value: keys (list) should have at least 1 element`,
          );
        }
        return keys.map((k, n) => {
          const kat = `${pat}.${kind}.keys[${n}]`;
          if (!k?.name) throw fail(`${kat}.name: Required value: key name is required`);
          if (k.name.includes(":"))
            throw fail(`${kat}.name: Invalid value: "${k.name}": should not contain ':'`);
          if (!k.secret) throw fail(`${kat}.secret: Required value: secret is required`);
          const secret = Buffer.from(k.secret, "base64");
          if (secret.toString("base64").replace(/=+$/, "") !== k.secret.replace(/=+$/, "")) {
            throw fail(`${kat}.secret: Invalid value: "REDACTED": secrets must be base64 encoded`);
          }
          const lengths = KEY_LENGTHS[kind]!;
          if (!lengths.includes(secret.length)) {
            throw fail(
              `${kat}.secret: Invalid value: "REDACTED": secret is not of the expected length, got ${secret.length}, expected one of [${lengths.join(" ")}]`,
            );
          }
          return provider(kind, k.name, secret);
        });
      })
      .flat();
    rules.push({ match: r.resources.map(String), transformer: new PrefixTransformer(providers) });
  });
  return (group, resource) => {
    const names = [group ? `${resource}.${group}` : resource, group ? `*.${group}` : "*.", "*.*"];
    for (const rule of rules) {
      if (names.some((n) => rule.match.includes(n))) return rule.transformer;
    }
    return undefined;
  };
}
