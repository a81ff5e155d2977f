// The `knobos` command line. Each command lives in its own file under commands/ and is
// loaded only when called, so `knobos sim cache` does not pay for the API server's imports.
// A command name may be two words (`sim cache`).
import { FlagError, UsageError } from '../experiments/flags.ts';
import { writeErrorLine } from '../experiments/report.ts';

type Command = { run(argv: string[]): Promise<number | void> };

/** `flags`: the usage line of a command that has no --help of its own (main answers it). */
const COMMANDS: Record<string, { help: string; flags?: string; load: () => Promise<Command> }> = {
  start: {
    help: 'run the embedded default: Redis, the knobs table, the services and their workloads, the loop, the API and dashboard (npm start)',
    flags: '[--redis URL] [--exit-after-start]',
    load: () => import('./commands/start.ts'),
  },
  'sim cache': {
    help: 'replay a cache trace under a policy and size',
    load: () => import('./commands/sim-cache.ts'),
  },
  'sim scheduler': {
    help: 'run a job trace through the cluster scheduling simulator',
    load: () => import('./commands/sim-scheduler.ts'),
  },
  exp: {
    help: 'run an experiment on the simulators (scheduler, cache, placement, messaging, all)',
    load: () => import('./commands/exp.ts'),
  },
  serve: {
    help: 'run the API server and dashboard against an existing Redis',
    flags: '[--redis URL]',
    load: () => import('./commands/serve.ts'),
  },
  knobs: {
    help: 'list, get, history, audit, set, rollback, pin, unpin, freeze, unfreeze',
    load: () => import('./commands/knobs.ts'),
  },
  tasks: {
    help: "a scheduler shard's tasks: get, list by state, cancel",
    load: () => import('./commands/tasks.ts'),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)} ${c.help}`);
  return `usage: knobos <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  if (!first || first === '--help' || first === '-h') {
    // Asked for, the usage is the output; for a missing command it is the error message.
    (first ? process.stdout : process.stderr).write(usage());
    return first ? 0 : 2;
  }
  // Own keys only: `knobos toString` is an unknown command, not Object.prototype's.
  const command = (name: string) => (Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined);
  const two = command(`${first} ${second ?? ''}`);
  const [cmd, rest] = two ? [two, argv.slice(2)] : [command(first), argv.slice(1)];
  if (!cmd) {
    process.stderr.write(`knobos: unknown command '${first}'\n\n${usage()}`);
    if (argv.includes('--json')) writeErrorLine(new Error(`unknown command '${first}'`), 'usage');
    return 2;
  }
  if (cmd.flags !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    const name = two ? `${first} ${second}` : first;
    process.stdout.write(`usage: knobos ${name} ${cmd.flags}\n\n${cmd.help}\n`);
    return 0;
  }
  const code = await (await cmd.load()).run(rest);
  return typeof code === 'number' ? code : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // An unknown option or a stray argument (node:util parseArgs), a flag given twice or a bad
    // flag value, that a command let through: a usage error all the same (code 'usage', as
    // the commands that answer their own report it).
    const code = String((err as { code?: unknown } | undefined)?.code ?? '');
    const usage =
      code.startsWith('ERR_PARSE_ARGS') || err instanceof UsageError || err instanceof FlagError;
    // With --json the last stdout line is the error as JSON (the run's one object).
    if (process.argv.includes('--json')) writeErrorLine(err, usage ? 'usage' : undefined);
    process.stderr.write(`knobos: ${err instanceof Error ? err.message : String(err)}\n`);
    // Exit, not just set the code: a failed command must not live on in a handle it left.
    process.exit(usage ? 2 : 1);
  },
);
