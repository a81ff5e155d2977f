// The batching simulator. Messages go to a partition (seeded, uniformly: the trace has no
// keys); each partition keeps one open batch, sealed when it reaches batchSize (at the arrival
// that fills it) or when its first message has lingered lingerMs (at that deadline). A sealed
// batch queues FIFO at the partition's consumer. Because sealing and service happen in time
// order within a partition and partitions do not interact, each batch's completion is known
// the moment it is sealed: no event queue is needed, and the run is O(messages).
//
// The simulator advances in windows (`advance(untilMs)`), so the env can change the knobs
// between windows; a whole-run evaluation is one advance to the end.
import type { Rng } from '../core/rng.ts';
import {
  MessagingConfigError,
  checkKnobs,
  checkMessages,
  type BatchKnobs,
  type CostModel,
  type Messages,
} from './model.ts';

/** What happened in one window: messages whose batch was sealed in it. */
export interface WindowStats {
  /** Latency (ms) of each message sealed in the window, in sealing order. */
  latenciesMs: number[];
  batches: number;
  /** Consumer time spent on those batches, summed over partitions. */
  busyMs: number;
  /** Latest completion time of those batches (-Infinity when none). */
  lastCompletionMs: number;
}

interface Partition {
  /** Arrival times and costs of the open batch (at most batchSize, itself <= 4096 by knob). */
  openT: number[];
  openCostMs: number;
  freeAtMs: number;
}

export class BatchingSim {
  private next = 0;
  private readonly parts: Partition[];
  private knobs: BatchKnobs;
  private window: WindowStats = emptyWindow();

  constructor(
    private readonly messages: Messages,
    private readonly cost: CostModel,
    readonly partitions: number,
    knobs: BatchKnobs,
    private readonly rng: Rng,
  ) {
    checkMessages(messages);
    checkKnobs(knobs);
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new MessagingConfigError('partitions', `must be an integer >= 1, got ${partitions}`);
    }
    this.knobs = { ...knobs };
    this.parts = Array.from({ length: partitions }, () => ({
      openT: [],
      openCostMs: 0,
      freeAtMs: 0,
    }));
  }

  get done(): boolean {
    return this.next >= this.messages.tMs.length && this.parts.every((p) => p.openT.length === 0);
  }

  /** Messages arrived but not yet sealed into a batch, across partitions. */
  get openMessages(): number {
    return this.parts.reduce((n, p) => n + p.openT.length, 0);
  }

  /** Work queued at consumers beyond nowMs, summed over partitions (ms). */
  backlogMs(nowMs: number): number {
    return this.parts.reduce((s, p) => s + Math.max(0, p.freeAtMs - nowMs), 0);
  }

  get arrived(): number {
    return this.next;
  }

  /**
   * New knob values from nowMs on; an open batch they make due is sealed at nowMs. One due at
   * nowMs itself stays open, as advance() leaves it: a message arriving at its deadline joins
   * it (sealed here, the same knobs set again at every window boundary changed the batches).
   */
  setKnobs(knobs: BatchKnobs, nowMs: number): void {
    checkKnobs(knobs);
    this.knobs = { ...knobs };
    for (const p of this.parts) {
      if (p.openT.length === 0) continue;
      if (p.openT.length >= knobs.batchSize || this.deadline(p) < nowMs) {
        this.seal(p, Math.max(nowMs, p.openT.at(-1) as number));
      }
    }
  }

  /** Processes arrivals before untilMs and the lingering batches due before it. */
  advance(untilMs: number): WindowStats {
    const { tMs, tokens } = this.messages;
    while (this.next < tMs.length && (tMs[this.next] as number) < untilMs) {
      const t = tMs[this.next] as number;
      const p = this.parts[this.rng.int(this.partitions)] as Partition;
      if (p.openT.length > 0 && this.deadline(p) < t) this.seal(p, this.deadline(p));
      p.openT.push(t);
      p.openCostMs +=
        this.cost.perMessageMs + (this.cost.perKTokenMs * (tokens[this.next] as number)) / 1000;
      this.next++;
      if (p.openT.length >= this.knobs.batchSize) this.seal(p, t);
    }
    for (const p of this.parts) {
      if (p.openT.length > 0 && this.deadline(p) < untilMs) this.seal(p, this.deadline(p));
    }
    const out = this.window;
    this.window = emptyWindow();
    return out;
  }

  private deadline(p: Partition): number {
    return (p.openT[0] as number) + this.knobs.lingerMs;
  }

  private seal(p: Partition, atMs: number): void {
    const start = Math.max(atMs, p.freeAtMs);
    const end = start + this.cost.batchOverheadMs + p.openCostMs;
    p.freeAtMs = end;
    for (const t of p.openT) this.window.latenciesMs.push(end - t);
    this.window.batches++;
    this.window.busyMs += end - start;
    this.window.lastCompletionMs = Math.max(this.window.lastCompletionMs, end);
    p.openT = [];
    p.openCostMs = 0;
  }
}

function emptyWindow(): WindowStats {
  return { latenciesMs: [], batches: 0, busyMs: 0, lastCompletionMs: -Infinity };
}
