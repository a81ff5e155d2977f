// A second close() of a producer (a shutdown hook racing an explicit close) waits for the
// buffered publishes the first is still sending, as the first does (review: it returned at
// once, and a caller that then exited dropped accepted publishes).
import { describe, expect, it } from 'vitest';
import { messagingSuite } from './helpers/messaging-fixture.ts';

describe('producer close() twice', () => {
  const { fixture, producer } = messagingSuite('single');

  it('a second close() waits for the buffered publishes like the first', async () => {
    const f = await fixture({ 'messaging.linger_ms': 250 });
    await f.topics.ensure('twice', { partitions: 1 });
    const p = producer(f);
    await p.publish('twice', 'warm'); // loads the topic row (waits out the linger)
    let settled = false;
    const pub = p.publish('twice', 'buffered').then(() => (settled = true));
    const first = p.close();
    await p.close();
    expect(settled).toBe(true);
    await first;
    await pub;
    expect(await f.redis.xlen(f.mkeys.stream('twice', 0))).toBe(2);
  });
});
