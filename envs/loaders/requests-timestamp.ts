// Datetime strings of request traces ("2023-11-16 18:17:03.9799600"), parsed exactly: the
// fraction may have any number of digits (Date.parse keeps only milliseconds and reads a
// string without a zone as local time, which would make a trace depend on the machine).
// A string without a zone is taken as UTC; a trailing Z or +hh:mm / -hhmm offset is honoured.

/** A parsed instant split into whole seconds and a fraction, so differences stay exact. */
export interface Instant {
  /** Whole seconds since the Unix epoch. */
  s: number;
  /** Milliseconds past that second, in [0, 1000). */
  fracMs: number;
}

const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,12}))?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

function zoneOffsetS(zone: string | undefined): number {
  if (zone === undefined || zone.toUpperCase() === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const h = Number(digits.slice(0, 2));
  const m = Number(digits.slice(2, 4));
  if (h > 23 || m > 59) return Number.NaN;
  return sign * (h * 3600 + m * 60);
}

/** The instant a datetime string names, or a reason it is not one. */
export function parseDatetime(text: string): Instant | string {
  const m = DATETIME.exec(text.trim());
  if (!m)
    return `not a datetime (expected YYYY-MM-DD HH:MM:SS[.fraction][zone]): ${JSON.stringify(text)}`;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (hour > 23 || minute > 59 || second > 59) return `time out of range: ${JSON.stringify(text)}`;
  const dayMs = Date.UTC(year, month - 1, day);
  const check = new Date(dayMs);
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    return `no such date: ${JSON.stringify(text)}`;
  }
  const offsetS = zoneOffsetS(zone);
  if (Number.isNaN(offsetS)) return `zone offset out of range: ${JSON.stringify(text)}`;
  return {
    s: dayMs / 1000 + hour * 3600 + minute * 60 + second - offsetS,
    fracMs: frac === undefined ? 0 : Number(`0.${frac}`) * 1000,
  };
}

/** b - a in milliseconds. */
export function diffMs(a: Instant, b: Instant): number {
  return (b.s - a.s) * 1000 + (b.fracMs - a.fracMs);
}
