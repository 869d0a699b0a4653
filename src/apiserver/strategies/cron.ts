/**
 * Cron schedules as Kubernetes reads them (robfig/cron v3's standard parser, which CronJob
 * validation and the CronJob controller both use upstream): `TZ=`/`CRON_TZ=` prefixes, the
 * macros `@yearly` .. `@hourly`, `@every <duration>`, five fields with names, ranges, steps and
 * `?`, robfig's error messages, and the next time a schedule fires in a time zone.
 */
import { goQuote } from "./util.js";

// ---------------------------------------------------------------------------------------------
// Time zones.

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Whether Go's time.LoadLocation would know `tz` ("" and "UTC" are UTC). */
export function validTimeZone(tz: string): boolean {
  if (tz === "" || tz === "UTC" || tz === "Local") return true;
  try {
    zoneFormatter(tz);
    return true;
  } catch {
    return false;
  }
}

function zoneFormatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(tz, f);
  }
  return f;
}

export function isUTC(tz: string): boolean {
  return tz === "" || tz === "UTC" || tz === "Etc/UTC";
}

/** The wall clock of `instant` in `tz`, as milliseconds of a UTC date with the same fields. */
export function wallClock(instant: number, tz: string): number {
  if (isUTC(tz)) return instant;
  const parts: Record<string, number> = {};
  for (const p of zoneFormatter(tz === "Local" ? localZone() : tz).formatToParts(new Date(instant)))
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  const ms = ((instant % 1000) + 1000) % 1000;
  return Date.UTC(
    parts.year!,
    parts.month! - 1,
    parts.day!,
    parts.hour!,
    parts.minute!,
    parts.second!,
    ms,
  );
}

export function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The offset of `tz` from UTC at `instant` (ms, east positive). */
export function zoneOffset(instant: number, tz: string): number {
  return wallClock(instant, tz) - instant;
}

/**
 * The instant whose wall clock in `tz` is `wall`; undefined when that wall time does not exist
 * (skipped by a daylight saving change). Of two instants, the earlier.
 */
export function instantOfWall(wall: number, tz: string): number | undefined {
  if (isUTC(tz)) return wall;
  const first = wall - zoneOffset(wall, tz);
  const candidates = [first, wall - zoneOffset(first, tz)];
  for (const c of candidates.sort((a, b) => a - b)) if (wallClock(c, tz) === wall) return c;
  return undefined;
}

/** RFC 3339 of `instant` in `tz` (Go's time.RFC3339: "Z" in UTC, else "+hh:mm"). */
// ---------------------------------------------------------------------------------------------
// Cron schedules.

export interface Schedule {
  /** The first time strictly after `t` (ms); 0 when there is none within five years. */
  next(t: number): number;
}

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTH_NAMES: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};
const DOW_NAMES: Record<string, number> = {
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};
const FIELDS: Bounds[] = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: MONTH_NAMES },
  { min: 0, max: 6, names: DOW_NAMES },
];
const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

export class CronParseError extends Error {}

/** Go's strconv.Atoi, with its error text. */
function atoi(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s))
    throw new CronParseError(`strconv.Atoi: parsing ${goQuote(s)}: invalid syntax`);
  const n = Number(s);
  if (!Number.isSafeInteger(n))
    throw new CronParseError(`strconv.Atoi: parsing ${goQuote(s)}: value out of range`);
  return n;
}

function parseNumber(s: string, names?: Record<string, number>): number {
  const named = names?.[s.toLowerCase()];
  if (named !== undefined) return named;
  let n: number;
  try {
    n = atoi(s);
  } catch (err) {
    throw new CronParseError(`failed to parse int from ${s}: ${(err as Error).message}`);
  }
  if (n < 0) throw new CronParseError(`negative number (${n}) not allowed: ${s}`);
  return n;
}

/** One field: the set of values, and whether it was a bare `*`/`?` (robfig's star bit). */
function parseField(field: string, b: Bounds): { values: Set<number>; star: boolean } {
  const values = new Set<number>();
  let star = false;
  for (const expr of field.split(",").filter((e) => e !== "")) {
    const [range = "", stepStr, extra] = expr.split("/");
    if (extra !== undefined) throw new CronParseError(`too many slashes: ${expr}`);
    const lowHigh = range.split("-");
    let start: number;
    let end: number;
    let isStar = false;
    if (lowHigh[0] === "*" || lowHigh[0] === "?") {
      start = b.min;
      end = b.max;
      isStar = true;
    } else {
      start = parseNumber(lowHigh[0] ?? "", b.names);
      if (lowHigh.length === 1) end = start;
      else if (lowHigh.length === 2) end = parseNumber(lowHigh[1] ?? "", b.names);
      else throw new CronParseError(`too many hyphens: ${expr}`);
    }
    let step = 1;
    if (stepStr !== undefined) {
      step = parseNumber(stepStr);
      if (lowHigh.length === 1 && !isStar) end = b.max;
      if (step > 1) isStar = false;
    }
    if (start < b.min)
      throw new CronParseError(`beginning of range (${start}) below minimum (${b.min}): ${expr}`);
    if (end > b.max)
      throw new CronParseError(`end of range (${end}) above maximum (${b.max}): ${expr}`);
    if (start > end)
      throw new CronParseError(
        `beginning of range (${start}) beyond end of range (${end}): ${expr}`,
      );
    if (step === 0) throw new CronParseError(`step of range should be a positive number: ${expr}`);
    for (let v = start; v <= end; v += step) values.add(v);
    if (isStar) star = true;
  }
  return { values, star };
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration, in milliseconds. */
export function parseGoDuration(s: string): number {
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (!rest) throw new CronParseError(`time: invalid duration ${goQuote(s)}`);
  let total = 0;
  while (rest) {
    const m = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!m) throw new CronParseError(`time: invalid duration ${goQuote(s)}`);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

class SpecSchedule implements Schedule {
  constructor(
    private readonly minute: Set<number>,
    private readonly hour: Set<number>,
    private readonly dom: Set<number>,
    private readonly month: Set<number>,
    private readonly dow: Set<number>,
    /** Either day field was a bare star: both must match. */
    private readonly dayAnd: boolean,
    private readonly tz: string,
  ) {}

  private dayMatches(wall: Date): boolean {
    const d = this.dom.has(wall.getUTCDate());
    const w = this.dow.has(wall.getUTCDay());
    return this.dayAnd ? d && w : d || w;
  }

  next(t: number): number {
    // Wall clock minutes strictly after t's minute, checked day by day for five years.
    let wall = Math.floor(wallClock(t, this.tz) / 60_000) * 60_000 + 60_000;
    const limitYear = new Date(wall).getUTCFullYear() + 5;
    for (;;) {
      const d = new Date(wall);
      if (d.getUTCFullYear() > limitYear) return 0;
      const dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      if (!this.month.has(d.getUTCMonth() + 1) || !this.dayMatches(d)) {
        wall = dayStart + 86_400_000;
        continue;
      }
      const found = this.firstInDay(dayStart, wall);
      if (found !== undefined) {
        const instant = instantOfWall(found, this.tz);
        if (instant !== undefined && instant > t) return instant;
        wall = found + 60_000;
        continue;
      }
      wall = dayStart + 86_400_000;
    }
  }

  /** The first matching wall minute of the day starting at `dayStart`, at or after `from`. */
  private firstInDay(dayStart: number, from: number): number | undefined {
    for (let h = 0; h < 24; h++) {
      if (!this.hour.has(h)) continue;
      for (let m = 0; m < 60; m++) {
        if (!this.minute.has(m)) continue;
        const w = dayStart + h * 3_600_000 + m * 60_000;
        if (w >= from) return w;
      }
    }
    return undefined;
  }
}

class ConstantDelaySchedule implements Schedule {
  constructor(private readonly delay: number) {}
  next(t: number): number {
    return t - (((t % 1000) + 1000) % 1000) + this.delay;
  }
}

/**
 * robfig/cron v3's ParseStandard: `TZ=`/`CRON_TZ=` prefix, macros, `@every`, five fields.
 * Throws CronParseError with its messages.
 */
export function parseSchedule(spec: string): Schedule {
  if (spec.length === 0) throw new CronParseError("empty spec string");
  let tz = "";
  let rest = spec;
  if (rest.startsWith("TZ=") || rest.startsWith("CRON_TZ=")) {
    const i = rest.indexOf(" ");
    const eq = rest.indexOf("=");
    const loc = i < 0 ? rest.slice(eq + 1) : rest.slice(eq + 1, i);
    if (i < 0 || !validTimeZone(loc))
      throw new CronParseError(`provided bad location ${loc}: unknown time zone ${loc}`);
    tz = loc === "Local" ? localZone() : loc;
    rest = rest.slice(i).trim();
  }
  if (rest.startsWith("@every ")) {
    const d = rest.slice("@every ".length);
    let ms: number;
    try {
      ms = parseGoDuration(d);
    } catch (err) {
      throw new CronParseError(`failed to parse duration ${rest}: ${(err as Error).message}`);
    }
    ms = Math.max(1000, ms);
    return new ConstantDelaySchedule(ms - (ms % 1000));
  }
  if (rest.startsWith("@")) {
    const macro = MACROS[rest];
    if (!macro) throw new CronParseError(`unrecognized descriptor: ${rest}`);
    rest = macro;
  }
  const fields = rest.split(/\s+/).filter((f) => f !== "");
  if (fields.length !== 5)
    throw new CronParseError(
      `expected exactly 5 fields, found ${fields.length}: [${fields.join(" ")}]`,
    );
  const [minute, hour, dom, month, dow] = fields.map((f, i) => parseField(f, FIELDS[i]!));
  return new SpecSchedule(
    minute!.values,
    hour!.values,
    dom!.values,
    month!.values,
    dow!.values,
    dom!.star || dow!.star,
    tz,
  );
}

/** robfig/cron's error for a schedule, or undefined when it parses. */
export function cronScheduleError(schedule: string): string | undefined {
  try {
    parseSchedule(schedule);
    return undefined;
  } catch (err) {
    if (err instanceof CronParseError) return err.message;
    throw err;
  }
}
