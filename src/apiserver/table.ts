import { tableOrDefault } from "../api/tables/index.js";
import type { Registry } from "./registry/store.js";
import type { KObject } from "./registry/types.js";
import type { CachedObject } from "./registry/cache.js";
import type { StreamedBody } from "./body.js";

/** A row's object in a Table: the object's metadata only, as upstream's default includeObject. */
export function toPartialObjectMetadata(obj: KObject): KObject {
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: obj.metadata };
}

/**
 * A meta.k8s.io/v1 Table of `items` with upstream's columns for the kind. `withoutColumns` leaves
 * the column definitions out (watch events after the first, as upstream sends them).
 */
export function toTable(
  registry: Registry,
  items: KObject[],
  metadata: Record<string, unknown>,
  withoutColumns = false,
): KObject {
  const printer = tableOrDefault(registry.def.group, registry.def.kind);
  const now = new Date();
  const table: KObject = {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: metadata as KObject["metadata"],
    rows: items.map((obj) => ({
      cells: printer.cells(obj, now),
      object: toPartialObjectMetadata(obj),
    })),
  };
  if (!withoutColumns) table.columnDefinitions = printer.columns;
  return table;
}

const ROW_OBJECT =
  ',"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":';

/**
 * The JSON of a Table of cached objects, as toTable gives it, written item by item: each row's
 * metadata comes from the stored bytes without encoding it again, the cells from the kept
 * decoded object.
 */
export function tableJSONBody(
  registry: Registry,
  items: CachedObject[],
  metadata: Record<string, unknown>,
): StreamedBody {
  const printer = tableOrDefault(registry.def.group, registry.def.kind);
  const now = new Date();
  const head = { kind: "Table", apiVersion: "meta.k8s.io/v1", metadata };
  return {
    head: `${JSON.stringify(head).slice(0, -1)},"columnDefinitions":${JSON.stringify(printer.columns)},"rows":[`,
    count: items.length,
    item: (w, i) => {
      const obj = items[i]!;
      const cells = JSON.stringify(printer.cells(obj.printView(), now));
      w.text(`${i > 0 ? "," : ""}{"cells":${cells}${ROW_OBJECT}`);
      obj.writeMetadataJSON(w);
      w.text("}}");
    },
    tail: "]}",
  };
}
