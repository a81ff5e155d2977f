// A knob client whose start() fails closes what it opened: its subscriber connection would
// otherwise stay open and keep the process alive. Failures come from ACLs on a real Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { connect } from '../controlplane/redis/connect.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('knob client start failures (single redis)', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** A table on a connection as `user`, and the count of that user's connections to Redis. */
  async function tableAs(user: string, rules: string[]) {
    const admin = redis.client();
    await admin.acl('SETUSER', user, 'on', '>pw', ...rules);
    const keys = uniqueKeys();
    await new KnobTable(admin, { keys }).seed();
    const conn = connect(redis.target, { username: user, password: 'pw' });
    conn.on('error', () => {});
    await conn.ping();
    const connections = async () =>
      ((await admin.client('LIST')) as string)
        .split('\n')
        .filter((l) => l.includes(` user=${user} `)).length;
    expect(await connections()).toBe(1);
    return { table: new KnobTable(conn, { keys }), conn, connections };
  }

  it('closes its subscriber connection when subscribing fails', async () => {
    // No channel may be subscribed to: SUBSCRIBE answers NOPERM.
    const { table, conn, connections } = await tableAs('nosub', ['~*', 'resetchannels', '+@all']);
    await expect(KnobClient.start({ table, resyncIntervalMs: 0 })).rejects.toThrow(/NOPERM/);
    await eventually(async () => (await connections()) === 1, 'only the table connection left');
    conn.disconnect();
  });

  it('closes its subscriber connection when the first load fails', async () => {
    // Subscribes, but may not read the epoch: every load attempt fails until start() gives up.
    const { table, conn, connections } = await tableAs('noget', ['~*', '&*', '+@all', '-get']);
    await expect(KnobClient.start({ table, resyncIntervalMs: 0 })).rejects.toThrow(/NOPERM/);
    await eventually(async () => (await connections()) === 1, 'only the table connection left');
    conn.disconnect();
  });
});
