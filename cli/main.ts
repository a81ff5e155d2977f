// The `knobos` command line. Each command lives in its own file under commands/ and is
// loaded only when called, so `knobos sim cache` does not pay for the API server's imports.
type Command = { run(argv: string[]): Promise<number | void> };

const COMMANDS: Record<string, { help: string; load: () => Promise<Command> }> = {};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.help}`);
  return `usage: knobos <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`knobos: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const code = await (await cmd.load()).run(rest);
  return typeof code === 'number' ? code : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`knobos: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
