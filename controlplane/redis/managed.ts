// Managed redis-server processes: the embedded default of `npm start`, and what every test
// and benchmark starts for itself. A child on a free loopback port with its own data folder;
// stop() shuts it down cleanly (SHUTDOWN NOSAVE), kill() sends SIGKILL for fault tests, and
// restart() brings the same node back on the same port and data (AOF replay). A server still
// running when this process exits is sent SIGTERM (it fsyncs its AOF and exits).
// A start succeeds only when the server answering on the port is the child started here
// (INFO process_id, or on Linux its listening socket): a port taken by another server (a
// freePort race between parallel workers) fails the start, or, on a port start() picked
// itself, moves it to another free port.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, ReplyError } from 'ioredis';
import { freePort } from './ports.ts';

export type AppendFsync = 'always' | 'everysec' | 'no';

export interface RedisServerOptions {
  /** Data folder; a fresh temporary folder when omitted (removed on stop). */
  dir?: string;
  port?: number;
  /** Append-only file: off by default; with `appendfsync` set it turns on. */
  appendfsync?: AppendFsync;
  cluster?: boolean;
  /**
   * How long a cluster node may be silent before the others mark it failing. Short timeouts
   * fail over fast but flap on a machine whose CPU is saturated (heartbeats come late).
   */
  clusterNodeTimeoutMs?: number;
  /** Extra config lines, e.g. ['maxmemory 100mb']. */
  extraConfig?: string[];
  /** Bound on the wait for the server to answer PING. */
  startTimeoutMs?: number;
  /**
   * Called once the server process exists, before it answers (loading a large AOF takes
   * seconds): a caller that must find the server after its own crash records it here.
   */
  onSpawn?: (pid: number, port: number) => void;
}

export class RedisNotInstalledError extends Error {
  constructor() {
    super(
      'redis-server is not on the PATH. Install it with: sudo apt-get install -y redis-server ' +
        '(or point knobos at a running Redis with REDIS_URL=redis://host:port)',
    );
    this.name = 'RedisNotInstalledError';
  }
}

// Servers of this process still running. They live in their own process group (see launch()),
// so a signal to ours does not reach them: when this process exits without stopping them
// (an uncaught error, process.exit), they are sent SIGTERM here rather than left behind. An
// 'exit' handler cannot wait for them, and SIGTERM is what needs no waiting: the server shuts
// down on its own as on SHUTDOWN, writing and fsyncing its AOF first (under appendfsync
// everysec a SIGKILL can lose acknowledged writes: ones whose write to the AOF Redis put off
// behind a slow fsync, and, should the machine go down next, ones not fsynced yet). SIGCONT
// follows for a paused server.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    c.kill('SIGTERM');
    c.kill('SIGCONT');
  }
});

/** Free ports start() tries when another process takes the one it picked first. */
const PORT_ATTEMPTS = 4;
/**
 * stop(): SIGKILL after this long. Past Redis's shutdown-timeout (10 s), the longest a SHUTDOWN
 * waits for lagging replicas before it exits on its own.
 */
const STOP_KILL_AFTER_MS = 15_000;
/** Bound on the SHUTDOWN reply (a hung server), after which stop() sends SIGTERM. */
const SHUTDOWN_TIMEOUT_MS = 12_000;
/** Bound on one start-up probe (a connect, PING or INFO); the probe loop retries after it. */
const PROBE_TIMEOUT_MS = 2_000;
/** How much of a server's output is kept in memory for error messages. */
const OUTPUT_KEPT_CHARS = 16_000;

/** Our child could not listen on its port: another process holds it. */
class PortTakenError extends Error {}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export class ManagedRedis {
  readonly host = '127.0.0.1';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Set by stop() and kill(): the next exit is planned, not a crash. */
  private exitPlanned = false;
  private readonly unplannedExitListeners = new Set<(reason: string) => void>();
  /** The tail of what the current process wrote (its log and stderr). */
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly confPath: string,
    private readonly startTimeoutMs: number,
  ) {}

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  /** The last `n` lines the server wrote (its log and stderr), for error messages. */
  lastLines(n: number): string {
    return this.output.trim().split('\n').slice(-n).join('\n');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Calls `listener` when the server exits without stop() or kill() (a crash, an OOM kill, a
   * SHUTDOWN from a client). The reason names the server, its exit code or signal and the last
   * lines it logged. Returns a function that removes the listener.
   */
  onUnplannedExit(listener: (reason: string) => void): () => void {
    this.unplannedExitListeners.add(listener);
    return () => this.unplannedExitListeners.delete(listener);
  }

  static async start(opts: RedisServerOptions = {}): Promise<ManagedRedis> {
    if (!redisServerAvailable()) throw new RedisNotInstalledError();
    const ownsDir = opts.dir === undefined;
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'knobos-redis-'));
    try {
      mkdirSync(dir, { recursive: true });
      for (let attempt = 1; ; attempt++) {
        const port = opts.port ?? (await freePort({ clusterBus: opts.cluster === true }));
        const confPath = join(dir, `redis-${port}.conf`);
        const nodesConf = join(dir, `nodes-${port}.conf`);
        const hadNodesConf = existsSync(nodesConf);
        writeFileSync(confPath, serverConfig(port, dir, opts).join('\n') + '\n');
        const server = new ManagedRedis(
          port,
          dir,
          ownsDir,
          confPath,
          opts.startTimeoutMs ?? 10_000,
        );
        try {
          await server.launch(opts.onSpawn);
          return server;
        } catch (err) {
          // A port given by the caller is theirs to pick again; one picked here is retried.
          if (!(err instanceof PortTakenError) || opts.port !== undefined) throw err;
          rmSync(confPath, { force: true });
          if (!hadNodesConf) rmSync(nodesConf, { force: true });
          if (attempt >= PORT_ATTEMPTS)
            throw new Error(
              `redis-server could not listen on a free port after ${attempt} attempts: ${err.message}`,
            );
        }
      }
    } catch (err) {
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async launch(onSpawn?: (pid: number, port: number) => void): Promise<void> {
    // Its own process group: a Ctrl-C in the terminal reaches only us, and stop() then shuts
    // the server down in order (services first). Were it in our group, it would die first and
    // every connection would retry against a dead server while we stop.
    // stdout too: with `logfile ""` the server logs there, startup errors (a corrupt AOF) included.
    const child = spawn('redis-server', [this.confPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.exitPlanned = false;
    live.add(child);
    if (child.pid !== undefined) onSpawn?.(child.pid, this.port);
    this.output = '';
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-OUTPUT_KEPT_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let started = false;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        if (started && !this.exitPlanned) {
          const reason = `redis-server on port ${this.port} (pid ${child.pid}) exited unexpectedly with ${signal ?? code}${this.output.trim() ? `: ${this.lastLines(20)}` : ''}`;
          for (const l of this.unplannedExitListeners) l(reason);
        }
        resolve();
      }),
    );
    const deadline = Date.now() + this.startTimeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        // Its last output is in once the pipes close (bounded: a forked child may hold them).
        await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000))]);
        const message = `redis-server on port ${this.port} exited with ${child.signalCode ?? child.exitCode}: ${this.lastLines(20)}`;
        throw /address already in use/i.test(this.output)
          ? new PortTakenError(message)
          : new Error(message);
      }
      const answer = await this.probe(child);
      if (answer === 'ours') {
        started = true;
        return;
      }
      if (answer === 'foreign') {
        // Another server holds the port: ours cannot listen on it (and exits, or is about to).
        this.exitPlanned = true;
        child.kill('SIGKILL');
        await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2_000))]);
        throw new PortTakenError(
          `port ${this.port} is held by another server, not the redis-server started here (pid ${child.pid})`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    this.exitPlanned = true;
    child.kill('SIGKILL');
    throw new Error(
      `redis-server on port ${this.port} did not answer within ${this.startTimeoutMs} ms${this.output.trim() ? `: ${this.lastLines(20)}` : ''}`,
    );
  }

  /**
   * Who answers on the port: 'ours' (PONG from the child started here, still running),
   * 'foreign' (PONG from another process), or undefined (no PONG yet: not listening, or
   * loading its AOF). A PONG alone proves nothing: when another server holds the port, ours
   * fails to bind and exits, and the probe reaches the other one.
   */
  private async probe(child: ChildProcess): Promise<'ours' | 'foreign' | undefined> {
    const c = probeClient(this.host, this.port, PROBE_TIMEOUT_MS);
    try {
      await c.connect();
      // While loading the AOF the server answers PING with -LOADING; wait for it to finish.
      if ((await c.ping()) !== 'PONG') return undefined;
      let pid: number | undefined;
      try {
        const info = (await c.call('INFO', 'server')) as string;
        const m = /^process_id:(\d+)/m.exec(info);
        if (m) pid = Number(m[1]);
      } catch (err) {
        // A default user locked by the config (ACLs) may not run INFO: ask the kernel instead.
        if (!(err instanceof ReplyError)) return undefined;
      }
      const alive = child.exitCode === null && child.signalCode === null;
      // Our pid from a child that has just exited: the loop reports its exit.
      if (pid !== undefined) return pid !== child.pid ? 'foreign' : alive ? 'ours' : undefined;
      const holds = child.pid === undefined ? undefined : listensOn(child.pid, this.port);
      if (holds === undefined) return alive ? 'ours' : undefined; // no /proc: the best we know
      return holds && alive ? 'ours' : 'foreign';
    } catch {
      return undefined;
    } finally {
      c.disconnect();
    }
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** SIGKILL: the process dies at once, losing whatever it had not written. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.exitPlanned = true;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP/SIGCONT: the process stops answering without closing its sockets. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts the same node again: same port, same folder, same AOF. */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`redis-server on port ${this.port} is still running`);
    await this.launch();
  }

  /** Clean shutdown; removes the data folder when it was a temporary one. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && this.running) {
      this.exitPlanned = true;
      // A paused server (pause()) answers nothing, SHUTDOWN included: wake it first. The kill
      // timer runs from the start, so a server that never answers cannot hold stop() up.
      child.kill('SIGCONT');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_KILL_AFTER_MS);
      try {
        if (!(await shutdownAt(this.host, this.port))) child.kill('SIGTERM');
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function serverConfig(port: number, dir: string, opts: RedisServerOptions): string[] {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    'protected-mode yes',
    `dir ${dir}`,
    'save ""',
    'daemonize no',
    // A cluster node logs its failure detection and elections (notice): a failover that does
    // not happen is explained by them.
    `loglevel ${opts.cluster ? 'notice' : 'warning'}`,
    'logfile ""',
    // A replica's first sync starts at once (the default waits 5 s for more replicas to join).
    'repl-diskless-sync-delay 0',
    opts.appendfsync ? 'appendonly yes' : 'appendonly no',
    ...(opts.appendfsync ? [`appendfsync ${opts.appendfsync}`] : []),
    ...(opts.cluster
      ? [
          'cluster-enabled yes',
          `cluster-config-file nodes-${port}.conf`,
          `cluster-node-timeout ${opts.clusterNodeTimeoutMs ?? 5_000}`,
          // A lone node learns its own address only from a peer; until then CLUSTER SLOTS
          // names it "" and cluster clients cannot reach a 1-primary cluster.
          'cluster-announce-ip 127.0.0.1',
        ]
      : []),
    ...(opts.extraConfig ?? []),
  ];
}

/**
 * Whether process `pid` holds the listening TCP socket of `port` (Linux: /proc); undefined
 * where that cannot be read.
 */
function listensOn(pid: number, port: number): boolean | undefined {
  try {
    if (!existsSync(`/proc/${pid}/net/tcp`)) return undefined;
    const inodes = new Set<string>();
    for (const table of ['tcp', 'tcp6']) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        const local = f[1]?.split(':')[1];
        // State 0A: LISTEN.
        if (local && f[3] === '0A' && parseInt(local, 16) === port && f[9]) inodes.add(f[9]);
      }
    }
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m !== null && inodes.has(m[1] as string);
      } catch {
        return false;
      }
    });
  } catch {
    return undefined;
  }
}

/**
 * A one-shot connection that fails at once instead of retrying (probes, shutdown), and gives
 * up on a server that accepts the connection but does not answer (paused, hung).
 */
function probeClient(host: string, port: number, timeoutMs: number): Redis {
  const c = new Redis({
    port,
    host,
    lazyConnect: true,
    // The embedded server's default user may be locked to PING/SHUTDOWN (ACLs on): no INFO.
    enableReadyCheck: false,
    // No CLIENT SETINFO before the first command: connect() would wait on its reply too.
    disableClientInfo: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  c.on('error', () => {});
  return c;
}

/**
 * SHUTDOWN NOSAVE through a one-shot connection (the AOF is fsynced on SHUTDOWN; NOSAVE only
 * skips an RDB). True when the server took it (it closes the connection as it exits); false
 * when it could not be reached, refused (an error reply: NOPERM, a failed AOF write) or did
 * not answer in time.
 */
export async function shutdownAt(host: string, port: number): Promise<boolean> {
  const c = probeClient(host, port, SHUTDOWN_TIMEOUT_MS);
  try {
    await c.connect();
  } catch {
    c.disconnect();
    return false;
  }
  try {
    await c.call('SHUTDOWN', 'NOSAVE');
    return true;
  } catch (err) {
    // The connection closing under the command is the server exiting: success.
    return !(err instanceof ReplyError) && !/timed out/i.test((err as Error).message);
  } finally {
    c.disconnect();
  }
}
