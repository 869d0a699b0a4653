let nowSecond = -1;
let nowText = "";

/** The current time as formatTime writes it, formatted once per second. */
function now(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== nowSecond) {
    nowSecond = second;
    nowText = formatTime(new Date(second * 1000));
  }
  return nowText;
}

/** A time as the API writes it (metav1.Time): RFC 3339 in UTC, whole seconds. */
export function formatTime(d?: Date): string {
  if (d === undefined) return now();
  const iso = d.toISOString();
  // "2006-01-02T15:04:05.000Z" for years 0-9999; other years have a sign and more digits.
  return iso.length === 24 ? iso.slice(0, 19) + "Z" : iso.replace(/\.\d+Z$/, "Z");
}
