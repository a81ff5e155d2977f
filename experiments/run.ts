// Entry point of `npm run exp:<name>` (tsx experiments/run.ts <name> [options]).
import { runExpCommand } from './command.ts';
import { emitError } from './report.ts';

runExpCommand(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    emitError('knobos exp', err, process.argv.includes('--json'));
    process.exitCode = 1;
  },
);
