// End to end on real Redis with a live file service: the read cache starts from a poor
// default (FIFO, 1 MiB); the loop calibrates a cache simulator from the live access trace,
// proposes a better configuration, passes the simulation gate and shadow (ghost caches on the
// live stream), promotes it, and the live hit ratio rises by at least the stated margin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, type KnobSpec } from '../knobs/index.ts';
import { FileService } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon, type LoopEvent } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { FilesCacheTarget } from '../controlplane/loop/targets/files-cache.ts';
import { telemetrySeries } from '../controlplane/telemetry/read.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import { startZipfReader } from './helpers/zipf-reader.ts';

const MIB = 2 ** 20;
/** The margin the promotion must raise the live hit ratio by (absolute). */
const MARGIN = 0.15;

/** The catalog with a poor cache default, as a badly configured cluster would start. */
const POOR: KnobSpec[] = CATALOG.map((k): KnobSpec => {
  if (k.name === 'files.cache_bytes' && k.type === 'int') return { ...k, default: 1 * MIB };
  if (k.name === 'files.cache_policy' && k.type === 'enum') return { ...k, default: 'fifo' };
  return k;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('control loop end to end: the file service read cache', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('improves the live hit ratio from a poor default, every step audited', async () => {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys, catalog: POOR });
    await table.seed();
    const knobClient = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys, catalog: POOR }),
      resyncIntervalMs: 1000,
    });
    const files = await FileService.start({
      redis: redis.client(),
      keys,
      knobs: knobClient,
      traceSampleRate: 1,
      telemetryIntervalMs: 250,
    });
    const paths = Array.from({ length: 300 }, (_, i) => `/data/f${i}`);
    await files.mkdir(ROOT, '/data');
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (const p of paths) {
      await files.create(ROOT, p);
      await files.write(ROOT, p, 0, chunk);
    }
    const reader = startZipfReader(files, paths, { alpha: 0.9, seed: 11, maxReads: 2_000_000 });
    const target = new FilesCacheTarget({
      knobs: table,
      memoryPricePerGiB: 1,
      windowMs: 4_000,
      minRecords: 1_500,
      maxRecords: 20_000,
      budget: 12,
      shadowMs: 1_500,
      shadowMinRequests: 1_000,
      gate: { slices: 4, minSamples: 4, maxSamples: 12 },
      slo: {
        baselineMs: 3_000,
        watchMs: 4_000,
        settleMs: 300,
        stepMs: 250,
        minPoints: 4,
        maxRegression: 0.1,
      },
    });
    const proposals = new ProposalTable(table);
    const daemon = new LoopDaemon({
      knobs: table,
      proposals,
      targets: [target],
      log: createLogger('loop-e2e', 'silent'),
      minChangeIntervalMs: 0,
      seed: 3,
    });
    try {
      await sleep(4_500); // a window of live accesses to calibrate from
      const events: LoopEvent[] = [];
      const deadline = Date.now() + 90_000;
      while (
        !events.some((e) => e.kind === 'promoted' || e.kind === 'rejected') &&
        Date.now() < deadline
      ) {
        events.push(...(await daemon.tick()));
        await sleep(300);
      }
      const promoted = events.find((e) => e.kind === 'promoted') as { id: string } | undefined;
      expect(
        promoted,
        JSON.stringify(events.filter((e) => e.kind !== 'shadow_pending')),
      ).toBeDefined();
      const { proposal } = await proposals.get(promoted!.id);
      const liveAt = proposal.updatedAt;
      await sleep(3_500);
      await files.flush();
      const q = (fromMs: number, toMs: number) =>
        telemetrySeries(redis.client(), keys, 'files', 'cache_interval_hit_ratio', {
          fromMs,
          toMs,
          stepMs: 250,
        });
      const mean = (xs: { value: number }[]) => xs.reduce((a, b) => a + b.value, 0) / xs.length;
      const before = mean(await q(liveAt - 3_000, liveAt));
      const after = mean(await q(liveAt + 1_000, liveAt + 3_500));
      // The numbers, for the README's worked example.
      process.stderr.write(
        `loop-e2e-cache: ${JSON.stringify({ before, after, changes: proposal.changes, sim: (proposal.simReport as { improvement: number }).improvement, shadow: proposal.shadowReport })}\n`,
      );
      expect(after - before).toBeGreaterThanOrEqual(MARGIN);
      expect((await table.get('files.cache_policy')).proposalId).toBe(proposal.id);
      const actions = (await table.audit({ limit: 50 }))
        .filter((a) => a.target === proposal.id || a.detail['proposal_id'] === proposal.id)
        .map((a) => a.action);
      expect(actions).toEqual(
        expect.arrayContaining([
          'proposal.create',
          'proposal.simulated',
          'proposal.shadow',
          'knob.promote',
        ]),
      );
      // The shadow's ghost of the live configuration saw what the live cache saw.
      const shadow = proposal.shadowReport as {
        details: { incumbent: { hitRatio: number }; candidate: { hitRatio: number } };
      };
      expect(shadow.details.candidate.hitRatio).toBeGreaterThan(shadow.details.incumbent.hitRatio);
    } finally {
      await reader.stop();
      await daemon.stop();
      await files.close();
      await knobClient.close();
    }
  }, 180_000);
});
