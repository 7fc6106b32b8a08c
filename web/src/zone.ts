// Calendar arithmetic in a named IANA time zone, with Intl alone. Pure functions of instants
// (milliseconds) and calendar dates; a day is from one local midnight to the next, so the days
// around a daylight-saving change are 23 or 25 hours long, as they are on the wall.

/** A calendar date; `m` is 1–12. */
export type LocalDate = { y: number; m: number; d: number };

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall clock in `timeZone` at instant `t`. */
function wall(t: number, timeZone: string) {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(t)) {
    if (part.type !== "literal") p[part.type] = Number(part.value);
  }
  return { y: p.year, m: p.month, d: p.day, hh: p.hour % 24, mm: p.minute, ss: p.second };
}

/** How far the zone's wall clock is ahead of UTC at instant `t`, in ms. */
export function offsetMs(t: number, timeZone: string): number {
  const w = wall(t, timeZone);
  const seconds = Math.floor(t / 1000) * 1000;
  return Date.UTC(w.y, w.m - 1, w.d, w.hh, w.mm, w.ss) - seconds;
}

/** Throws a RangeError for a name Intl does not know. */
export function checkZone(timeZone: string): void {
  formatter(timeZone);
}

export function localDate(t: number, timeZone: string): LocalDate {
  const w = wall(t, timeZone);
  return { y: w.y, m: w.m, d: w.d };
}

/** "HH:MM" on the zone's wall clock. */
export function clock(t: number, timeZone: string): string {
  const w = wall(t, timeZone);
  return `${String(w.hh).padStart(2, "0")}:${String(w.mm).padStart(2, "0")}`;
}

/**
 * The instant the zone's wall clock shows `date` `hh:mm`. A time that happens twice (clocks go
 * back) gives the first; a time that never happens (clocks go forward) moves forward by the gap,
 * so a day whose midnight is skipped starts at 01:00.
 */
export function zonedInstant(date: LocalDate, hh: number, mm: number, timeZone: string): number {
  const asUtc = Date.UTC(date.y, date.m - 1, date.d, hh, mm);
  const day = 86_400_000;
  const before = offsetMs(asUtc - day, timeZone);
  const after = offsetMs(asUtc + day, timeZone);
  const valid = [asUtc - before, asUtc - after].filter((t, i) => offsetMs(t, timeZone) === [before, after][i]);
  return valid.length > 0 ? Math.min(...valid) : asUtc - before;
}

/** Start of the day (local midnight) as an instant. */
export function dayStart(date: LocalDate, timeZone: string): number {
  return zonedInstant(date, 0, 0, timeZone);
}

export function addDays(date: LocalDate, n: number): LocalDate {
  const t = new Date(Date.UTC(date.y, date.m - 1, date.d + n));
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

/** 0 for Monday … 6 for Sunday. */
export function weekday(date: LocalDate): number {
  return (new Date(Date.UTC(date.y, date.m - 1, date.d)).getUTCDay() + 6) % 7;
}

export function mondayOf(date: LocalDate): LocalDate {
  return addDays(date, -weekday(date));
}

export function isoDate(date: LocalDate): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(date.y, 4)}-${p(date.m)}-${p(date.d)}`;
}

export function parseIsoDate(s: string | null): LocalDate | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s ?? "");
  if (!m) return null;
  const date = { y: Number(m[1]), m: Number(m[2]), d: Number(m[3]) };
  return isoDate(addDays(date, 0)) === s ? date : null;
}

/** A datetime-local value ("2026-03-29T02:30") read on the zone's wall clock. */
export function parseLocalDateTime(value: string, timeZone: string): number | null {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})/.exec(value);
  const date = m ? parseIsoDate(m[1]) : null;
  if (!m || !date) return null;
  return zonedInstant(date, Number(m[2]), Number(m[3]), timeZone);
}

/** The instant in the form the API takes: RFC 3339, UTC, whole seconds. */
export function rfc3339(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

const dayNames = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  weekday: "short",
  day: "numeric",
  month: "short",
});

/** "Mon 23 Mar" for a calendar date. */
export function dayLabel(date: LocalDate): string {
  return dayNames.format(Date.UTC(date.y, date.m - 1, date.d, 12));
}
