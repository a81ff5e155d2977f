// Security headers on every answer (not only the dashboard's files), and the change stream's
// bounds: a reader that stalls is cut off (its socket destroyed, its buffer freed), and one
// token cannot take every stream slot.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startApi, type ApiFixture } from './helpers/api-server.ts';
import { openStream, type EventStream } from './helpers/api-sse.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

describe('API security headers and event stream bounds', () => {
  let redis: TestRedis;
  let api: ApiFixture;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis, { listen: true, maxStreams: 30 });
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  it('sends nosniff, no-referrer and no framing everywhere, and no-store on /api', async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const cases: [string, Record<string, string>, number][] = [
      ['/', {}, 200],
      ['/app.js', {}, 200],
      ['/docs', {}, 200],
      ['/docs/json', {}, 200],
      ['/healthz', {}, 200],
      ['/nope.html', {}, 404],
      ['/api/knobs', admin, 200],
      ['/api/knobs', {}, 401],
      ['/api/nope', admin, 404],
    ];
    for (const [url, headers, status] of cases) {
      const res = await api.app.inject({ url, headers });
      expect(res.statusCode, url).toBe(status);
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
      expect(res.headers['x-frame-options'], url).toBe('DENY');
      expect(String(res.headers['content-security-policy']), url).toContain(
        "frame-ancestors 'none'",
      );
      if (url.startsWith('/api/')) expect(res.headers['cache-control'], url).toBe('no-store');
    }
    // The dashboard keeps its own, stricter policy.
    const index = await api.app.inject({ url: '/' });
    expect(index.headers['content-security-policy']).toContain("default-src 'self'");

    // The event stream answers outside fastify's hooks: it sets its own.
    const ac = new AbortController();
    const res = await fetch(`${api.url}/api/events`, { headers: admin, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toContain('no-store');
    ac.abort();
  });

  it('refuses a token its eleventh stream while other tokens still get theirs', async () => {
    const mine = await api.token('viewer');
    const other = await api.token('viewer');
    const streams: EventStream[] = [];
    try {
      for (let i = 0; i < 10; i++) streams.push(await openStream(api.url, mine));
      const res = await fetch(`${api.url}/api/events`, { headers: api.bearer(mine) });
      expect(res.status).toBe(429);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({
        code: 'KNOBOS_API_TOO_MANY_STREAMS',
        limit: 10,
        scope: 'token',
      });
      streams.push(await openStream(api.url, other));
      await streams[streams.length - 1]?.next('hello');
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('destroys the socket of a reader that stops reading once its buffer overflows', async () => {
    const token = await api.token('viewer');
    const port = Number(new URL(api.url).port);
    const sockets: net.Socket[] = [];
    const onConnection = (s: net.Socket) => sockets.push(s);
    api.app.server.on('connection', onConnection);
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {}); // reset by the server: expected
    try {
      await new Promise((r) => client.once('connect', r));
      const head = new Promise<string>((r) => client.once('data', (d) => r(String(d))));
      client.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      expect(await head).toMatch(/^HTTP\/1\.1 200/);
      client.pause(); // reads nothing more
      const server = sockets[sockets.length - 1] as net.Socket;
      // Full rows pile up: past the kernel's buffers, then past the hub's 1 MiB.
      const channel = api.knobs.keys.knobChanges();
      const msg = JSON.stringify({
        change: 'c',
        changes: [{ name: 'placement.map', version: 1, value: '{}' }],
      });
      for (let batch = 0; batch < 80 && !server.destroyed; batch++) {
        const p = api.redis.pipeline();
        for (let i = 0; i < 500; i++) p.publish(channel, msg);
        await p.exec();
        await new Promise((r) => setTimeout(r, 60));
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(server.destroyed).toBe(true);
      expect(server.writableLength).toBe(0);
    } finally {
      api.app.server.off('connection', onConnection);
      client.destroy();
    }
  });
});
