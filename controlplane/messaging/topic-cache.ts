// What producers and consumers know of their topics: the rows, cached in memory and reloaded
// when the `messaging.partitions` knob changes (after growing each known topic to the knob's
// value, which any instance may do: the version check makes it safe) and every refreshMs, so
// a topic grown elsewhere is picked up without a restart. A topic first loaded after a raise
// it missed (no process had it cached) is grown on load: its row records the knob version it
// reflects.
import { EventEmitter } from 'node:events';
import type { KnobChangeEvent, KnobClient } from '../knobs/client.ts';
import { StaleVersionError } from '../store/errors.ts';
import type { Logger } from '../log.ts';
import type { TopicInfo, Topics } from './topics.ts';

export class TopicCache extends EventEmitter<{ change: [TopicInfo] }> {
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
   * Reads a row; grows it first when the partitions knob was raised (a newer version, a larger
   * value) since the row last reflected it: that raise happened while no process had the
   * topic cached, so nobody grew it. A row created with fewer partitions than the knob on
   * purpose records the knob version it saw, and is left alone.
   */
  private async load(name: string): Promise<TopicInfo> {
    const row = await this.topics.get(name);
    const knobVersion = this.knobs.version('messaging.partitions');
    if (row.knobVersion === undefined || row.knobVersion >= knobVersion) return row;
    const partitions = Number(this.knobs.get('messaging.partitions'));
    if (!(partitions > row.partitions)) return row;
    try {
      return await this.topics.grow(name, partitions, knobVersion);
    } catch (err) {
      // Grown by another instance meanwhile (its row is the one to read), or not growable.
      if (!(err instanceof StaleVersionError))
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
      } catch (err) {
        this.log.warn({ err: (err as Error).message, topic: name }, 'topic refresh failed');
      }
    }
  }

  private async growToKnob(partitions: number, knobVersion: number): Promise<void> {
    for (const [name, row] of this.rows) {
      if (partitions < row.partitions) {
        this.log.warn(
          { topic: name, partitions: row.partitions, knob: partitions },
          'messaging.partitions went down: topics only grow, the knob is not applied',
        );
        continue;
      }
      try {
        await this.topics.grow(name, partitions, knobVersion);
      } catch (err) {
        // Another instance grew it at the same time: its row is the one to read.
        if (!(err instanceof StaleVersionError))
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
