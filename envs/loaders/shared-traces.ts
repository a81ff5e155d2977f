// Where the shared traces live: `../shared/traces/` next to the project root, resolved from
// this file so a path works whatever the working directory (and no machine path is written).
import { resolve } from 'node:path';

/** The project root (this file is envs/loaders/shared-traces.ts). */
export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');

/** A file under the shared traces, `../shared/traces/` next to the project root. */
export function sharedTrace(relative: string): string {
  return resolve(PROJECT_ROOT, '..', 'shared', 'traces', relative);
}
