// Publish dedup records are scored and trimmed on Redis's clock, as the consumer's are: a
// producer whose clock runs ahead no longer trims the idempotency records other producers just
// wrote (review: a keyed retry within dedupMs was stored twice).
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { messagingSuite } from './helpers/messaging-fixture.ts';

describe('publish dedup retention and producer clocks', () => {
  const { fixture, producer } = messagingSuite('single');

  it('a keyed retry within dedupMs (Redis time) is a duplicate whatever the clocks', async () => {
    const f = await fixture({ 'messaging.linger_ms': 0 });
    await f.topics.ensure('skew', { partitions: 1, dedupMs: 60_000 });
    const a = producer(f); // a right clock
    const b = producer(f, { clock: new ManualClock(Date.now() + 61_000) }); // 61 s ahead
    const first = await a.publish('skew', 'pay', { key: 'order-1' });
    await b.publish('skew', 'other'); // any publish by b runs the dedup trim
    const retry = await a.publish('skew', 'pay', { key: 'order-1' });
    expect({
      dup: retry.duplicate,
      id: retry.id,
      len: await f.redis.xlen(f.mkeys.stream('skew', 0)),
    }).toEqual({ dup: true, id: first.id, len: 2 });
  });
});
