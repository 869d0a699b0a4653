/** The shapes of a server-side Table definition (meta.k8s.io/v1 `TableColumnDefinition`). */

export interface ColumnDefinition {
  /** Column title as upstream spells it ("Name", "Ready", "Nominated Node"); kubectl upper-cases it. */
  name: string;
  /** OpenAPI type of the cells: "string", "integer", "boolean", "number" or "date". */
  type: string;
  /** "name" for the column holding the object's name, "" otherwise. */
  format: string;
  description: string;
  /** 0 for columns kubectl always prints, 1 for columns only `-o wide` prints. */
  priority: number;
}

/**
 * How objects of one kind print as Table rows. `cells` returns one value per column, wide columns
 * included (the server always fills every column; kubectl drops priority > 0 unless `-o wide`).
 * Timestamps are rendered relative to `now`.
 */
export interface TableDef {
  readonly columns: readonly ColumnDefinition[];
  cells(obj: object, now: Date): unknown[];
}
