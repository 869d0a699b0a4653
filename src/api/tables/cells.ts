/** Building blocks shared by the Table printers: columns, labels, selectors, containers. */

import type { Container } from "kubernetes-types/core/v1.js";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import type { ColumnDefinition, TableDef } from "./types.js";

export interface ColumnOptions {
  priority?: number;
  format?: string;
}

export function column(
  name: string,
  type: string,
  description: string,
  options: ColumnOptions = {},
): ColumnDefinition {
  return {
    name,
    type,
    format: options.format ?? "",
    description,
    priority: options.priority ?? 0,
  };
}

export const nameColumn = (description = "Name of the object."): ColumnDefinition =>
  column("Name", "string", description, { format: "name" });

export const ageColumn = (): ColumnDefinition =>
  column("Age", "string", "Time since the object was created.");

export const wide = { priority: 1 } as const;

/** Names and images of the containers, each list joined by commas. */
export function containerColumns(): ColumnDefinition[] {
  return [
    column("Containers", "string", "Names of the containers in the template.", wide),
    column("Images", "string", "Images of the containers in the template.", wide),
  ];
}

/** Typed printer registration: the cells function sees the object as its API type. */
export function table<T>(
  columns: readonly ColumnDefinition[],
  cells: (obj: T, now: Date) => unknown[],
): TableDef {
  return { columns, cells: (obj, now) => cells(obj as T, now) };
}

/** `k1=v1,k2=v2` with keys sorted, or "<none>" for no labels. */
export function formatLabels(labels: Record<string, string> | null | undefined): string {
  const keys = Object.keys(labels ?? {}).sort(compareStrings);
  if (keys.length === 0) return "<none>";
  return keys.map((k) => `${k}=${labels![k]}`).join(",");
}

/** Byte-order comparison of ASCII-range strings (Go's string ordering). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareStrings);
}

/**
 * The selector a LabelSelector stands for, in label-selector syntax: requirements sorted by key,
 * `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. Undefined for an unknown operator.
 * Nil and empty selectors both print as "".
 */
export function labelSelectorString(
  selector: LabelSelector | null | undefined,
): string | undefined {
  if (!selector) return "";
  const requirements: { key: string; text: string }[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    requirements.push({ key, text: `${key}=${value}` });
  }
  for (const expr of selector.matchExpressions ?? []) {
    const values = [...(expr.values ?? [])];
    const list = values.length === 1 ? values[0]! : values.sort(compareStrings).join(",");
    switch (expr.operator) {
      case "In":
        requirements.push({ key: expr.key, text: `${expr.key} in (${list})` });
        break;
      case "NotIn":
        requirements.push({ key: expr.key, text: `${expr.key} notin (${list})` });
        break;
      case "Exists":
        requirements.push({ key: expr.key, text: expr.key });
        break;
      case "DoesNotExist":
        requirements.push({ key: expr.key, text: `!${expr.key}` });
        break;
      default:
        return undefined;
    }
  }
  return requirements
    .sort((a, b) => compareStrings(a.key, b.key))
    .map((r) => r.text)
    .join(",");
}

/** A LabelSelector for display: "<none>" when it selects by nothing, "<error>" when invalid. */
export function formatLabelSelector(selector: LabelSelector | null | undefined): string {
  const text = labelSelectorString(selector);
  if (text === undefined) return "<error>";
  return text === "" ? "<none>" : text;
}

/** Container names and images, each joined by commas. */
export function layoutContainers(
  containers: readonly Container[] | null | undefined,
): [string, string] {
  const list = containers ?? [];
  return [list.map((c) => c.name).join(","), list.map((c) => c.image ?? "").join(",")];
}

/** A resource quantity as printed: the canonical string, "0" when absent. */
export function quantity(q: string | number | null | undefined): string {
  if (q === undefined || q === null || q === "") return "0";
  return String(q);
}

/** An int-or-string value as printed. */
export function intOrString(v: string | number): string {
  return String(v);
}

/** Go's `%s` of a nil *Quantity. */
export function quantityOrNil(q: string | number | null | undefined): string {
  return q === undefined || q === null ? "<nil>" : String(q);
}

/** "True", "False", or "<unset>" for a missing boolean. */
export function printBoolPtr(value: boolean | null | undefined): string {
  if (value === undefined || value === null) return "<unset>";
  return value ? "True" : "False";
}

/** Address of a host and port, with IPv6 hosts in brackets. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Up to `max` items joined by commas, then " + N more..."; "<unset>" for none. */
export function listWithMore(list: string[], count: number, max: number): string {
  const text = list.join(",");
  if (count > max) return `${text} + ${count - max} more...`;
  return text === "" ? "<unset>" : text;
}
