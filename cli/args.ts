// Flag values as numbers for the CLI's commands: the parser of experiments/flags.ts (which
// `npm run exp:*` shares), with a fallback for an absent flag.
import { parseFlagNumber, type FlagRule } from '../experiments/flags.ts';

export {
  FlagError,
  parseFlagNumber,
  parseFlags,
  UsageError,
  type FlagRule,
} from '../experiments/flags.ts';

/** `--<flag>` as a number under `rule`, or `fallback` when the flag is absent. */
export function numberFlag(
  flag: string,
  raw: string | undefined,
  rule: FlagRule,
): number | undefined;
export function numberFlag(
  flag: string,
  raw: string | undefined,
  rule: FlagRule,
  fallback: number,
): number;
export function numberFlag(
  flag: string,
  raw: string | undefined,
  rule: FlagRule,
  fallback?: number,
): number | undefined {
  return raw === undefined ? fallback : parseFlagNumber(flag, raw, rule);
}
