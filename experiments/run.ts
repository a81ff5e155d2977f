// Entry point of `npm run exp:<name>` (tsx experiments/run.ts <name> [options]).
import { runExpCommand } from './command.ts';

runExpCommand(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `knobos exp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
