// Fixtures of the file-service tests: a seeded knobs table (its clock past every cooldown), a
// knob client following the file knobs, and file-service instances over one volume, with a
// manual clock for mtimes so tests choose their times.
import { KnobClient } from '../../controlplane/knobs/client.ts';
import { ManualClock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { KnobValue } from '../../knobs/index.ts';
import {
  FileService,
  FILE_KNOBS,
  type FileServiceOptions,
} from '../../controlplane/files/index.ts';
import type { Keys } from '../../controlplane/store/keys.ts';
import { uniqueKeys, type TestRedis } from './redis.ts';

const HOUR_MS = 3_600_000;

export interface FilesFixture {
  keys: Keys;
  table: KnobTable;
  /** The clock of the services (mtimes, ctimes). */
  clock: ManualClock;
  /** Another instance over the same volume, with its own knob client and cache. */
  instance(opts?: Partial<FileServiceOptions>): Promise<FileService>;
  /** Promotes a knob (past its cooldown) and waits until every instance's client sees it. */
  setKnob(name: string, value: KnobValue): Promise<void>;
  close(): Promise<void>;
}

export async function filesFixture(
  redis: TestRedis,
  opts: { knobs?: Record<string, KnobValue> } = {},
): Promise<FilesFixture> {
  const keys = uniqueKeys();
  const knobClock = new ManualClock();
  const table = new KnobTable(redis.client(), { keys, clock: knobClock });
  await table.seed();
  const clock = new ManualClock(1_700_000_000_000);
  const services: FileService[] = [];
  const clients: KnobClient[] = [];

  const setKnob = async (name: string, value: KnobValue): Promise<void> => {
    knobClock.advance(HOUR_MS);
    const row = await table.get(name);
    const { version } = await table.promote({
      name,
      value,
      baseVersion: row.version,
      actor: 'test',
      reason: 'test',
    });
    const deadline = Date.now() + 10_000;
    while (clients.some((c) => c.version(name) < version)) {
      if (Date.now() > deadline) throw new Error(`knob ${name} v${version} never arrived`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  for (const [name, value] of Object.entries(opts.knobs ?? {})) await setKnob(name, value);

  return {
    keys,
    table,
    clock,
    async instance(over = {}) {
      const knobs = await KnobClient.start({ table, names: FILE_KNOBS, resyncIntervalMs: 0 });
      clients.push(knobs);
      const s = await FileService.start({
        redis: redis.client(),
        keys,
        knobs,
        clock,
        traceSampleRate: 1,
        ...over,
      });
      services.push(s);
      return s;
    },
    setKnob,
    async close() {
      await Promise.all(services.map((s) => s.close()));
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}
