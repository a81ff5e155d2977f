// The file service as `npm start` runs it: one instance following its knobs, a paced Zipf
// read workload over a set of files, and the loop's read-cache target. Sizes are chosen so
// the embedded Redis holds the data set comfortably (~100 MB) and the loop has something to
// find within minutes.
import { FileService, FILE_KNOBS } from '../files/service.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { Logger } from '../log.ts';
import { FilesCacheTarget } from '../loop/targets/files-cache.ts';
import { startStackKnobs } from './stack-knobs.ts';
import { undoSteps, type UndoStep } from './steps.ts';
import { FilesWorkload } from '../workload/files.ts';

export interface FilesStack {
  files: FileService;
  workload: FilesWorkload;
  target: FilesCacheTarget;
  stop(): Promise<void>;
}

export async function startFilesStack(
  knobs: KnobTable,
  log: Logger,
  opts: {
    seed: number;
    ratePerS: number;
    /** The loop's table (its Redis user) for the tuning target; default `knobs`. */
    loopKnobs?: KnobTable;
  },
): Promise<FilesStack> {
  // What has started, in order; stop() and a failed start undo it newest first, every step
  // even when one fails.
  const steps: UndoStep[] = [];
  const undo = async (): Promise<void> => {
    const failures = await undoSteps(steps, log);
    if (failures[0]) throw failures[0].err;
  };
  let files: FileService;
  let workload: FilesWorkload;
  try {
    const client = await startStackKnobs(knobs, FILE_KNOBS);
    steps.push({ name: 'knob client', undo: () => client.close() });
    const f = await FileService.start({
      redis: knobs.redis,
      keys: knobs.keys,
      knobs: client,
      instance: 'files-0',
      // Every access is traced: shadow mode's ghost caches are exact only on the whole stream.
      traceSampleRate: 1,
    });
    files = f;
    steps.push({ name: 'file service', undo: () => f.close() });
    log.info('files: creating the workload data set');
    const w = await FilesWorkload.start({
      files,
      source: { kind: 'zipf', files: 1500, alpha: 0.8, fileBytes: 64 * 1024, writeFraction: 0.01 },
      ratePerS: opts.ratePerS,
      seed: opts.seed,
    });
    workload = w;
    steps.push({ name: 'workload', undo: () => w.stop() });
  } catch (err) {
    // What started is stopped: a failed start leaves nothing running.
    await undo().catch(() => undefined); // each failure was logged
    throw err;
  }
  const target = new FilesCacheTarget({
    knobs: opts.loopKnobs ?? knobs,
    memoryPricePerGiB: 0.1,
    windowMs: 60_000,
    minRecords: 5_000,
    maxRecords: 50_000,
    budget: 20,
    shadowMs: 20_000,
    shadowMinRequests: 3_000,
  });
  return {
    files,
    workload,
    target,
    // Every step runs even when one fails; it then rejects with the first failure.
    stop: undo,
  };
}
