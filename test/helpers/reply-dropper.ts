// A TCP proxy between a client and Redis that can swallow one reply and drop the connection:
// the client (ioredis) then reconnects and resends the command it got no answer for, with the
// same arguments, which the server has already run.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { connect, type RedisClient } from '../../controlplane/redis/connect.ts';
import { freePort } from '../../controlplane/redis/ports.ts';
import type { TestRedis } from './redis.ts';

/** Forwards both ways; once armed, swallows the next reply chunk and drops that connection. */
export class ReplyDropper {
  armed = false;
  dropped = 0;
  port = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  async start(targetPort: number): Promise<this> {
    this.port = await freePort();
    this.server = createServer((client) => {
      const up = netConnect({ port: targetPort, host: '127.0.0.1' });
      for (const s of [client, up]) {
        this.sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('data', (d) => up.write(d));
      up.on('data', (d) => {
        if (!this.armed) return void client.write(d);
        this.armed = false;
        this.dropped++;
        client.destroy();
        up.destroy();
      });
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    });
    const server = this.server;
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', () => r()));
    return this;
  }
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A ReplyDropper in front of the test's server, a client connected through it, and close(). */
export async function throughDropper(
  test: TestRedis,
): Promise<{ proxy: ReplyDropper; client: RedisClient; close: () => Promise<void> }> {
  const port = Number(new URL((test.target as { url: string }).url).port);
  const proxy = await new ReplyDropper().start(port);
  const client = connect({ url: `redis://127.0.0.1:${proxy.port}` });
  client.on('error', () => {}); // the dropped connection's, expected
  return {
    proxy,
    client,
    close: async () => {
      client.disconnect();
      await proxy.stop();
    },
  };
}
