// `knobos exp <name> [--trace FILE --format FMT] [--seeds N] [--budget N] [--quick] [--json]`:
// run an experiment (experiments/specs) and write experiments/results/<name>/. The command
// itself lives in experiments/command.ts so `npm run exp:*` runs the very same code.
import { runExpCommand } from '../../experiments/command.ts';

export function run(argv: string[]): Promise<number> {
  return runExpCommand(argv);
}
