// A command group's subcommands (`knobos knobs set …`, `knobos tasks cancel …`): one parser
// that checks, before any connection, the subcommand, its positional arguments (no more, no
// fewer), the flags that apply to it (each required one given, none that does not apply, none
// empty). Global flags (--redis, --actor, …) apply to every subcommand.
import { parseFlags, UsageError } from './args.ts';

export interface SubcommandSpec<C extends string, F extends string> {
  /** The group's name, as errors show it (`knobs`). */
  group: string;
  /** Each subcommand's positional arguments (names for errors) and its own flags. */
  takes: Record<C, { args: readonly string[]; flags: readonly F[] }>;
  /** Flags that are required wherever they apply. */
  required: readonly F[];
  /** String flags every subcommand takes. */
  global: readonly string[];
}

export interface Parsed<C extends string> {
  cmd: C;
  args: string[];
  /** Every flag's value as given (strings; --json and --help as booleans). */
  values: Record<string, string | boolean | undefined>;
}

/**
 * Parses `argv` (after the group's name) under `spec`: 'help' for --help, 'usage' for no
 * subcommand; throws a UsageError (or parseArgs' error for an unknown option) otherwise.
 */
export function parseSubcommand<C extends string, F extends string>(
  argv: string[],
  spec: SubcommandSpec<C, F>,
): Parsed<C> | 'help' | 'usage' {
  const commands = Object.keys(spec.takes) as C[];
  const flags = new Set<string>([...spec.global, ...commands.flatMap((c) => spec.takes[c].flags)]);
  const options: Record<string, { type: 'string' } | { type: 'boolean'; short?: string }> = {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of flags) options[f] = { type: 'string' };
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options,
  });
  if (values['help']) return 'help';
  const [cmd, ...args] = positionals;
  if (cmd === undefined) return 'usage';
  const g = spec.group;
  if (!Object.hasOwn(spec.takes, cmd)) throw new UsageError(`${g}: unknown command '${cmd}'`);
  const takes = spec.takes[cmd as C];
  const extra = args.slice(takes.args.length);
  if (extra.length > 0)
    throw new UsageError(`${g} ${cmd}: unexpected arguments: ${extra.join(' ')}`);
  takes.args.forEach((what, i) => {
    if (!args[i]) throw new UsageError(`${g} ${cmd}: ${what} is required`);
  });
  for (const [flag, v] of Object.entries(values)) {
    if (v === '') throw new UsageError(`${g} ${cmd}: --${flag} must not be empty`);
    // Global flags apply everywhere; the others, given where they do nothing, are refused.
    if (typeof v === 'string' && !spec.global.includes(flag) && !takes.flags.includes(flag as F)) {
      const where = commands.filter((c) => spec.takes[c].flags.includes(flag as F));
      throw new UsageError(`${g} ${cmd}: --${flag} applies only to ${g} ${where.join(', ')}`);
    }
  }
  for (const flag of spec.required)
    if (takes.flags.includes(flag) && values[flag] === undefined)
      throw new UsageError(`${g} ${cmd}: --${flag} is required`);
  return { cmd: cmd as C, args, values };
}
