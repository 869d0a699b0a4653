import { invalidValue, required, type FieldError } from "../../api/status.js";
import type { KObject } from "../registry/types.js";

const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN = `${DNS1123_LABEL}(\\.${DNS1123_LABEL})*`;
const labelRe = new RegExp(`^${DNS1123_LABEL}$`);
const subdomainRe = new RegExp(`^${DNS1123_SUBDOMAIN}$`);
const QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const qualifiedNameRe = new RegExp(`^${QUALIFIED_NAME}$`);
const LABEL_VALUE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const labelValueRe = new RegExp(`^${LABEL_VALUE}$`);

/** Upstream's messages for a value that is not a DNS-1123 label or subdomain (validation.IsDNS1123*). */
export function dns1123LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push("must be no more than 63 characters");
  if (!labelRe.test(value)) {
    errs.push(
      `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '${DNS1123_LABEL}')`,
    );
  }
  return errs;
}

export function dns1123SubdomainErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push("must be no more than 253 characters");
  if (!subdomainRe.test(value)) {
    errs.push(
      `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '${DNS1123_SUBDOMAIN}')`,
    );
  }
  return errs;
}

function pathSegmentErrors(value: string): string[] {
  if (value === "." || value === "..") return [`may not be '${value}'`];
  if (value.includes("/")) return ["may not contain '/'"];
  if (value.includes("%")) return ["may not contain '%'"];
  return [];
}

/** Upstream's label key check (validation.IsQualifiedName). */
export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split("/");
  let name = value;
  const errs: string[] = [];
  if (parts.length === 2) {
    const [prefix, n] = parts as [string, string];
    name = n;
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else errs.push(...dns1123SubdomainErrors(prefix).map((e) => `prefix part ${e}`));
  } else if (parts.length > 2) {
    return [
      `a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '${QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (name.length > 63) errs.push("name part must be no more than 63 characters");
  if (name.length > 0 && !qualifiedNameRe.test(name)) {
    errs.push(
      `name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '${QUALIFIED_NAME}')`,
    );
  }
  return errs;
}

export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push("must be no more than 63 characters");
  if (!labelValueRe.test(value)) {
    errs.push(
      `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '${LABEL_VALUE}')`,
    );
  }
  return errs;
}

const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

export type NameFormat = "subdomain" | "label" | "path";

/** metadata checks every object gets (upstream's ValidateObjectMeta). */
export function validateObjectMeta(
  obj: KObject,
  namespaced: boolean,
  nameFormat: NameFormat,
): FieldError[] {
  const errs: FieldError[] = [];
  const meta = obj.metadata ?? {};
  const check =
    nameFormat === "label"
      ? dns1123LabelErrors
      : nameFormat === "path"
        ? pathSegmentErrors
        : dns1123SubdomainErrors;
  if (!meta.name && !meta.generateName) {
    errs.push(required("metadata.name", "name or generateName is required"));
  } else if (meta.name) {
    for (const e of check(meta.name)) errs.push(invalidValue("metadata.name", meta.name, e));
  }
  if (namespaced) {
    if (!meta.namespace) errs.push(required("metadata.namespace", ""));
    else
      for (const e of dns1123LabelErrors(meta.namespace))
        errs.push(invalidValue("metadata.namespace", meta.namespace, e));
  } else if (meta.namespace) {
    errs.push({
      type: "FieldValueForbidden",
      field: "metadata.namespace",
      message: "metadata.namespace: Forbidden: not allowed on this type",
    });
  }
  for (const [key, value] of Object.entries(meta.labels ?? {})) {
    for (const e of qualifiedNameErrors(key)) errs.push(invalidValue("metadata.labels", key, e));
    for (const e of labelValueErrors(String(value)))
      errs.push(invalidValue("metadata.labels", value, e));
  }
  let annotationBytes = 0;
  for (const [key, value] of Object.entries(meta.annotations ?? {})) {
    for (const e of qualifiedNameErrors(key.toLowerCase()))
      errs.push(invalidValue("metadata.annotations", key, e));
    annotationBytes += key.length + String(value).length;
  }
  if (annotationBytes > TOTAL_ANNOTATION_SIZE_LIMIT) {
    errs.push({
      type: "FieldValueTooLong",
      field: "metadata.annotations",
      message: `metadata.annotations: Too long: must have at most ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes`,
    });
  }
  return errs;
}
