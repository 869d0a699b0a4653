/** A time as the API writes it (metav1.Time): RFC 3339 in UTC, whole seconds. */
export function formatTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}
