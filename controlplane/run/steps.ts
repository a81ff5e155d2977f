// How the node (node.ts) and its run/ stacks stop what they started, and undo a failed start:
// every step, newest first, whatever failed before it.
import type { Logger } from '../log.ts';

/** Something started, and how to undo it. */
export interface UndoStep {
  name: string;
  undo: () => Promise<unknown> | unknown;
}

/**
 * Undoes `steps` newest first, emptying the list: every step runs even when an earlier one
 * failed (each failure is logged), and a step pushed while this runs is undone too. Returns the
 * failures in the order they happened; never rejects.
 */
export async function undoSteps(
  steps: UndoStep[],
  log: Logger,
): Promise<{ step: string; err: Error }[]> {
  const failures: { step: string; err: Error }[] = [];
  for (let s = steps.pop(); s; s = steps.pop()) {
    try {
      log.debug({ step: s.name }, 'stopping');
      await s.undo();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      failures.push({ step: s.name, err });
      log.error({ err: err.message, step: s.name }, `stopping ${s.name} failed`);
    }
  }
  return failures;
}
