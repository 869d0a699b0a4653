/**
 * Server-side Table printing as upstream's API server does it: per-kind column definitions and
 * cells, and the default table (name and creation time) for kinds with no printer of their own.
 */

import { column, nameColumn, table } from "./cells.js";
import {
  certificatesPrinters,
  coordinationPrinters,
  discoveryPrinters,
  networkingPrinters,
  nodePrinters,
  rbacPrinters,
  schedulingPrinters,
  storagePrinters,
} from "./cluster.js";
import { corePrinters, eventsV1Event } from "./core.js";
import type { TableDef } from "./types.js";
import { appsPrinters, autoscalingPrinters, batchPrinters, policyPrinters } from "./workloads.js";

export type { ColumnDefinition, TableDef } from "./types.js";

const printers: Record<string, Record<string, TableDef>> = {
  "": corePrinters,
  apps: appsPrinters,
  batch: batchPrinters,
  autoscaling: autoscalingPrinters,
  policy: policyPrinters,
  "events.k8s.io": { Event: eventsV1Event },
  "networking.k8s.io": networkingPrinters,
  "rbac.authorization.k8s.io": rbacPrinters,
  "certificates.k8s.io": certificatesPrinters,
  "coordination.k8s.io": coordinationPrinters,
  "storage.k8s.io": storagePrinters,
  "scheduling.k8s.io": schedulingPrinters,
  "node.k8s.io": nodePrinters,
  "discovery.k8s.io": discoveryPrinters,
};

/**
 * The printer upstream registers for objects of `kind` in API group `group` (the group the object
 * was read through: events.k8s.io Events print from their own field names), or undefined when
 * upstream serves that kind with the {@link defaultTable}.
 */
export function tableFor(group: string, kind: string): TableDef | undefined {
  return Object.hasOwn(printers, group) && Object.hasOwn(printers[group]!, kind)
    ? printers[group]![kind]
    : undefined;
}

/**
 * The table of kinds without a printer (Role, ClusterRole, LimitRange, custom resources):
 * the name, and the creation time in RFC 3339 UTC.
 */
export const defaultTable: TableDef = table<{
  metadata?: { name?: string; creationTimestamp?: string | null };
}>([nameColumn(), column("Created At", "date", "Time the object was created.")], (obj) => [
  obj.metadata?.name,
  createdAt(obj.metadata?.creationTimestamp),
]);

/** {@link tableFor}, falling back to {@link defaultTable}. */
export function tableOrDefault(group: string, kind: string): TableDef {
  return tableFor(group, kind) ?? defaultTable;
}

function createdAt(timestamp: string | null | undefined): string {
  const ms = timestamp ? Date.parse(timestamp) : NaN;
  const date = Number.isNaN(ms) ? new Date(Date.UTC(1, 0, 1)) : new Date(ms);
  if (Number.isNaN(ms)) date.setUTCFullYear(1);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}Z`
  );
}

export {
  humanDuration,
  shortHumanDuration,
  translateTimestampSince,
  translateTimestampUntil,
} from "./format.js";
