// What producers and consumers know of their topics: the rows, cached in memory and reloaded
// when the `messaging.partitions` knob changes (after growing each known topic to the knob's
// value, which any instance may do: the version check makes it safe) and every refreshMs, so
// a topic grown elsewhere is picked up without a restart. A topic first loaded after a raise
// it missed (no process had it cached) is grown on load: its row records the knob value it
// saw, and only a knob above that value grows it.
import { EventEmitter } from 'node:events';
import type { KnobChangeEvent, KnobClient } from '../knobs/client.ts';
import { StaleVersionError } from '../store/errors.ts';
import { ShrinkRefusedError } from './errors.ts';
import type { Logger } from '../log.ts';
import type { TopicInfo, Topics } from './topics.ts';

export class TopicCache extends EventEmitter<{ change: [TopicInfo]; refreshed: [TopicInfo] }> {
  private readonly rows = new Map<string, TopicInfo>();
  /** Loads under way: the first publishes to a topic wait for one read, not one each. */
  private readonly loading = new Map<string, Promise<TopicInfo>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onKnob = (e: KnobChangeEvent) => {
    if (e.name === 'messaging.partitions') void this.growToKnob(Number(e.value), e.version);
  };

  constructor(
    readonly topics: Topics,
    private readonly knobs: KnobClient,
    private readonly log: Logger,
    refreshMs = 5_000,
  ) {
    super();
    knobs.on('change', this.onKnob);
    if (refreshMs > 0) {
      this.timer = setInterval(() => void this.refresh(), refreshMs);
      this.timer.unref();
    }
  }

  /** The cached row (loaded on first use; TopicNotFoundError for an unknown topic). */
  async get(name: string): Promise<TopicInfo> {
    const cached = this.rows.get(name);
    if (cached) return cached;
    let load = this.loading.get(name);
    if (!load) {
      load = this.load(name).finally(() => this.loading.delete(name));
      this.loading.set(name, load);
    }
    const row = await load;
    if (!this.rows.has(name)) this.rows.set(name, row);
    return this.rows.get(name) as TopicInfo;
  }

  /**
   * Reads a row; grows it first when the partitions knob is now above the value the row saw
   * (`knobValue`): that raise happened while no process had the topic cached, so nobody grew
   * it. A row created with fewer partitions than the knob on purpose records the knob value
   * it saw, and is left alone until the knob goes above that value (a lowering, or a write
   * back to the same value, grows nothing). Rows without a recorded value are left alone.
   */
  private async load(name: string): Promise<TopicInfo> {
    const row = await this.topics.get(name);
    const knobVersion = this.knobs.version('messaging.partitions');
    const value = Number(this.knobs.get('messaging.partitions'));
    if (!this.knobRaised(row, value)) return row;
    // Grown past the knob already (a shrink would be refused): up to date.
    if (!(value > row.partitions)) return row;
    try {
      return await this.topics.grow(name, value, knobVersion, value);
    } catch (err) {
      // Grown by another instance meanwhile (its row is the one to read; past the knob, a
      // refused shrink, it is up to date), or not growable.
      if (!(err instanceof StaleVersionError || err instanceof ShrinkRefusedError))
        this.log.warn({ err: (err as Error).message, topic: name }, 'topic grow failed');
      return this.topics.get(name);
    }
  }

  peek(name: string): TopicInfo | undefined {
    return this.rows.get(name);
  }

  async refresh(): Promise<void> {
    for (const name of [...this.rows.keys()]) {
      try {
        const row = await this.topics.get(name);
        const old = this.rows.get(name);
        this.rows.set(name, row);
        if (!old || old.version !== row.version) this.emit('change', row);
        // Every refresh too: a consumer retries what failed to start since (a partition whose
        // start hit a Redis hiccup would wait for the next version change, which may never come).
        else this.emit('refreshed', row);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, topic: name }, 'topic refresh failed');
      }
    }
  }

  /**
   * Whether the knob's value is above the one the row saw. A row without a recorded value
   * (written before it was) counts as having seen nothing: only a knob change
   * (growToKnob) grows it, not a load.
   */
  private knobRaised(row: TopicInfo, value: number, loading = true): boolean {
    if (!Number.isFinite(value)) return false;
    if (row.knobValue === undefined) return !loading;
    return value > row.knobValue;
  }

  private async growToKnob(partitions: number, knobVersion: number): Promise<void> {
    for (const [name, row] of this.rows) {
      // Only a knob above the value the row saw grows it (a lowering leaves it alone).
      if (!this.knobRaised(row, partitions, false)) continue;
      if (partitions <= row.partitions) {
        // Grown past the knob already (a shrink would be refused): up to date.
        if (partitions < row.partitions)
          this.log.info(
            { topic: name, partitions: row.partitions, knob: partitions },
            'messaging.partitions is below the topic: topics only grow, the knob is not applied',
          );
        continue;
      }
      try {
        await this.topics.grow(name, partitions, knobVersion, partitions);
      } catch (err) {
        // Another instance grew it at the same time (its row is the one to read), or grew
        // it past the knob (a refused shrink: up to date).
        if (!(err instanceof StaleVersionError || err instanceof ShrinkRefusedError))
          this.log.warn({ err: (err as Error).message, topic: name }, 'topic grow failed');
      }
    }
    await this.refresh();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.knobs.off('change', this.onKnob);
  }
}
