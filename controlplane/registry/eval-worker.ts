// The evaluator's worker thread: keeps the TPC-H DAGs and the heuristic runs in memory and
// answers one simulation job per message (evaluator.ts sends them one at a time).
import { parentPort, workerData } from 'node:worker_threads';
import { runJob, toWire, type SimJob } from './jobs.ts';
import { SchedulingSims, type TraceFiles } from './sim.ts';

const port = parentPort;
if (!port) throw new Error('eval-worker.ts runs as a worker thread (see evaluator.ts)');
const sims = new SchedulingSims((workerData as { trace: TraceFiles }).trace);
port.on('message', (m: { id: number; job: SimJob }) => {
  try {
    port.postMessage({ id: m.id, ok: true, result: runJob(sims, m.job) });
  } catch (err) {
    port.postMessage({ id: m.id, ok: false, error: toWire(err) });
  }
});
