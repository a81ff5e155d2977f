// Free loopback ports for managed redis-server processes. A cluster node also listens on
// port + 10000 (the cluster bus), so both must be free.
import { createServer } from 'node:net';

function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(null));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : null;
      srv.close(() => resolve(got));
    });
  });
}

/** A free port below 55536 whose cluster-bus twin (port + 10000) is free too. */
export async function freePort(opts: { clusterBus?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await tryListen(0);
    if (port === null || port > 55_535) continue;
    if (!opts.clusterBus || (await tryListen(port + 10_000)) !== null) return port;
  }
  throw new Error('freePort: no free loopback port found after 200 attempts');
}
