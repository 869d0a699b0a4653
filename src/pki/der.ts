/**
 * Just enough ASN.1 DER to write X.509 certificates and to read the few fields of an existing CA
 * that signing needs (its raw subject and its subject key identifier). Writing certificates here,
 * with node:crypto doing keys and signatures, keeps `k8ts certs` free of a certificate library
 * and its start-up cost.
 */

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A TLV with the given tag byte around the concatenated contents. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const octetString = (b: Buffer): Buffer => tlv(0x04, b);
export const boolean = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
/** An explicit (constructed) context-specific tag `[n]`. */
export const explicit = (n: number, ...items: Buffer[]): Buffer => tlv(0xa0 | n, ...items);
/** An implicit primitive context-specific tag `[n]`. */
export const implicit = (n: number, b: Buffer): Buffer => tlv(0x80 | n, b);

/** A non-negative INTEGER from its big-endian magnitude. */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const b = magnitude.subarray(i);
  return tlv(0x02, (b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]));

export function objectIdentifier(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128))
      chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** A BIT STRING of whole bytes (no unused bits). */
export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);

/**
 * A BIT STRING of named bits (bit 0 is the first byte's high bit) in DER form: trailing zero
 * bits dropped, their count in the leading byte.
 */
export function namedBits(bits: number[]): Buffer {
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return tlv(0x03, Buffer.from([7 - (max & 7)]), bytes);
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A directory string as Go writes one: PrintableString when it can be, UTF8String otherwise. */
export function directoryString(s: string): Buffer {
  return tlv(PRINTABLE.test(s) ? 0x13 : 0x0c, Buffer.from(s, "utf8"));
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 requires; whole seconds, UTC. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-23T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "");
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2) + "Z", "ascii"))
    : tlv(0x18, Buffer.from(digits + "Z", "ascii"));
}

/** One element read from DER: its tag, and where its header and content lie in the input. */
export interface Element {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export class DERError extends Error {
  override readonly name = "DERError";
}

export function readElement(buf: Buffer, offset: number, limit = buf.length): Element {
  if (offset + 2 > limit) throw new DERError("truncated DER element");
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let contentStart = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || contentStart + n > limit) throw new DERError("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw new DERError("truncated DER element");
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element. */
export function children(buf: Buffer, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const e = readElement(buf, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

function decodeOID(b: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (parts.length === 0)
        parts.push(Math.min(2, Math.floor(v / 40)), v - 40 * Math.min(2, Math.floor(v / 40)));
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

/**
 * From a certificate's DER: the raw subject Name (to copy byte for byte as the issuer of what it
 * signs; verifiers compare names as bytes) and the subject key identifier, when it has one.
 */
export function certificateFields(der: Buffer): { subject: Buffer; subjectKeyId?: Buffer } {
  const cert = readElement(der, 0);
  const tbs = children(der, cert)[0];
  if (!tbs) throw new DERError("empty certificate");
  const fields = children(der, tbs);
  const hasVersion = fields[0]?.tag === 0xa0;
  const subject = fields[hasVersion ? 5 : 4];
  if (!subject) throw new DERError("certificate without subject");
  let subjectKeyId: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (extensions) {
    const list = children(der, extensions)[0];
    for (const ext of list ? children(der, list) : []) {
      const parts = children(der, ext);
      const id = parts[0];
      const value = parts[parts.length - 1];
      if (!id || !value || decodeOID(der.subarray(id.contentStart, id.end)) !== "2.5.29.14")
        continue;
      const inner = readElement(der, value.contentStart, value.end);
      subjectKeyId = Buffer.from(der.subarray(inner.contentStart, inner.end));
    }
  }
  return { subject: Buffer.from(der.subarray(subject.start, subject.end)), subjectKeyId };
}

/** The public key bits of a SubjectPublicKeyInfo (the BIT STRING content after its pad byte). */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const top = readElement(spki, 0);
  const bits = children(spki, top)[1];
  if (!bits || bits.tag !== 0x03) throw new DERError("not a SubjectPublicKeyInfo");
  return spki.subarray(bits.contentStart + 1, bits.end);
}
