// Command-line usage errors, and numeric flags, the one way for every knobos command (`knobos ...` in cli/ and
// `npm run exp:*` here): plain decimal digits, a range checked, an error naming the flag and
// its rule. Here, not in cli/, because experiments/ may not import cli/; and a module of its
// own, so the CLI loads nothing else of the experiments to parse a flag.

import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command's arguments break its usage (every knobos command answers it with exit 2). */
export class UsageError extends Error {}

/**
 * A command-line flag whose value breaks its rule; the message names the flag and the rule.
 * Every knobos command answers it as a usage error (exit 2).
 */
export class FlagError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(message);
    this.name = 'FlagError';
  }
}

/** The range a numeric flag must fall in: min/max inclusive, above/below exclusive. */
export interface FlagRule {
  integer?: boolean;
  min?: number;
  above?: number;
  max?: number;
  below?: number;
}

function ruleText(r: FlagRule): string {
  const lo = r.min ?? r.above;
  const hi = r.max ?? r.below;
  let range = '';
  if (r.integer && r.min !== undefined && r.max !== undefined) range = ` in ${r.min}..${r.max}`;
  else if (lo !== undefined && hi !== undefined)
    range = ` in ${r.min !== undefined ? '[' : '('}${lo}, ${hi}${r.max !== undefined ? ']' : ')'}`;
  else if (lo !== undefined) range = ` ${r.min !== undefined ? '>=' : '>'} ${lo}`;
  else if (hi !== undefined) range = ` ${r.max !== undefined ? '<=' : '<'} ${hi}`;
  return r.integer ? `an integer${range} in decimal digits` : `a decimal number${range}`;
}

/**
 * `--<flag> <raw>` as a number written the plain decimal way: digits with at most one point
 * (integers: digits only), a leading '-' only where the rule admits negative values; no hex,
 * exponent, '+', spaces, or empty value. Checks the rule; throws a FlagError naming both.
 */
export function parseFlagNumber(flag: string, raw: string, rule: FlagRule = {}): number {
  const lo = rule.min ?? rule.above;
  const sign = lo === undefined || lo < 0 ? '-?' : '';
  const syntax = new RegExp(`^${sign}${rule.integer ? '[0-9]+' : '([0-9]+\\.?[0-9]*|\\.[0-9]+)'}$`);
  const v = syntax.test(raw) ? Number(raw) : Number.NaN;
  const ok =
    Number.isFinite(v) &&
    (!rule.integer || Number.isSafeInteger(v)) &&
    (rule.min === undefined || v >= rule.min) &&
    (rule.above === undefined || v > rule.above) &&
    (rule.max === undefined || v <= rule.max) &&
    (rule.below === undefined || v < rule.below);
  if (!ok) throw new FlagError(flag, `--${flag} must be ${ruleText(rule)}, got '${raw}'`);
  // -0 is 0: a flag's value prints as the user would write it.
  return v === 0 ? 0 : v;
}

/**
 * node:util's parseArgs, the one way every knobos command reads its flags: a value flag given
 * twice is a usage error naming it (parseArgs keeps the last value and drops the first without
 * a word: `--base 7 --base 3` promoted against version 3), unless it is declared `multiple`.
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  // One parse, with its tokens: the result is the plain one's, with `tokens` besides.
  const parsed = parseArgs({ ...config, tokens: true });
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    const spec = config.options?.[t.name];
    if (spec?.type !== 'string' || spec.multiple) continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} given twice: give it once`);
    seen.add(t.name);
  }
  return parsed as unknown as ReturnType<typeof parseArgs<T>>;
}
