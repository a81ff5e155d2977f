// The live file service: a file system as tables in Redis (inodes, directory entries, chunks,
// indexes; see README.md). Stateless over the tables: every operation is one Lua step that
// resolves the path, checks owner and mode, and changes everything it touches at once, so any
// instance can die between calls and another carries on. Each instance keeps a read cache
// sized and ruled by the files.cache_* knobs (live, through a KnobClient) and writes telemetry
// and sampled access traces.
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../knobs/clock.ts';
import type { KnobChangeEvent, KnobClient } from '../knobs/client.ts';
import { requestHash, requestRecord } from '../store/request-id.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import { Telemetry } from '../telemetry/metrics.ts';
import { TraceWriter } from '../telemetry/traces.ts';
import type { CacheStats } from './cache.ts';
import {
  FileInputError,
  FileLimitError,
  FileNotFoundError,
  FilePermissionError,
  NotADirectoryError,
  fileErrorFromReply,
} from './errors.ts';
import { FileKeys } from './keys.ts';
import {
  callerArg,
  checkCount,
  checkMode,
  DEPTH_MAX,
  filePath,
  namesDir,
  normalizePath,
  PATH_CHARS_MAX,
} from './paths.ts';
import {
  findAllFiles,
  findFiles,
  importFiles,
  largestDirs,
  type ImportFile,
  type ScriptCall,
} from './query.ts';
import { ACCESS_TRACE_KIND } from './traces.ts';
import { chunkSpan } from './read.ts';
import { Reader } from './reader.ts';
import {
  runFileScript,
  runFileScriptBuffer,
  type FileScriptName,
  type ScriptArg,
} from './scripts.ts';
import {
  DEFAULT_LIMITS,
  type Caller,
  type DirEntry,
  type DirSize,
  type FileLimits,
  type FileQuery,
  type FileQueryResult,
  type FileStat,
  type FoundFile,
} from './types.ts';

/** The knobs the service follows; start its KnobClient with at least these. */
export const FILE_KNOBS = ['files.chunk_bytes', 'files.cache_bytes', 'files.cache_policy'] as const;

export interface FileServiceOptions {
  redis: RedisClient;
  keys: Keys;
  knobs: KnobClient;
  /** The volume (shard): its own hash-tag family. Default 'default'. */
  volume?: string;
  clock?: Clock;
  instance?: string;
  /** Owner and mode of '/' when this call creates the volume. */
  root?: { uid: number; gid: number; mode: number };
  limits?: Partial<FileLimits>;
  telemetryIntervalMs?: number;
  /** Fraction of chunk accesses written to the access trace. Default 0.01. */
  traceSampleRate?: number;
  rand?: () => number;
}

export class FileService {
  readonly fileKeys: FileKeys;
  readonly limits: FileLimits;
  readonly telemetry: Telemetry;
  readonly trace: TraceWriter;
  private readonly reader: Reader;
  private readonly layout: string[];
  private readonly clock: Clock;
  private readonly onKnob = (e: KnobChangeEvent) => this.knobChanged(e);
  private readonly call: ScriptCall = (op, name, caller, args) =>
    this.run(op, name, caller, args, false);

  private constructor(private readonly opts: FileServiceOptions) {
    this.fileKeys = new FileKeys(opts.keys, opts.volume);
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.layout = this.fileKeys.layoutArgs();
    this.clock = opts.clock ?? systemClock;
    const instance = opts.instance ?? `files-${process.pid}-${randomBytes(3).toString('hex')}`;
    const common = { redis: opts.redis, keys: opts.keys, service: 'files' };
    this.telemetry = new Telemetry({
      ...common,
      instance,
      ...(opts.telemetryIntervalMs ? { intervalMs: opts.telemetryIntervalMs } : {}),
      ...(opts.rand ? { rand: opts.rand } : {}),
    });
    // The cache's hit ratio per interval: what the files-cache tuning target's SLO guard
    // watches after a promotion (registered here, so every file service reports it).
    this.telemetry.ratio('cache_interval_hit_ratio', 'cache_hits', ['cache_misses']);
    this.trace = new TraceWriter({
      ...common,
      kind: ACCESS_TRACE_KIND,
      sampleRate: opts.traceSampleRate ?? 0.01,
      ...(opts.rand ? { rand: opts.rand } : {}),
    });
    this.reader = new Reader({
      call: (op, name, caller, args) => this.run(op, name, caller, args, true),
      limits: this.limits,
      telemetry: this.telemetry,
      trace: this.trace,
      clock: this.clock,
      volume: this.volume,
      cache: {
        policy: opts.knobs.get<string>('files.cache_policy'),
        capacityBytes: opts.knobs.get<number>('files.cache_bytes'),
      },
    });
  }

  /** Creates the volume's root if missing, follows the knobs and starts telemetry. */
  static async start(opts: FileServiceOptions): Promise<FileService> {
    const s = new FileService(opts);
    const root = opts.root ?? { uid: 0, gid: 0, mode: 0o755 };
    // Following the knobs before the first await: a change while the volume is set up applies.
    opts.knobs.on('change', s.onKnob);
    try {
      await runFileScript(opts.redis, 'init', s.fileKeys.volumeRow(), [
        ...s.layout,
        '0:0',
        s.clock.now(),
        checkCount(root.uid, 'root.uid', 2 ** 31 - 1),
        checkCount(root.gid, 'root.gid', 2 ** 31 - 1),
        checkMode(root.mode, 'root.mode'),
      ]);
    } catch (err) {
      opts.knobs.off('change', s.onKnob);
      throw err;
    }
    s.telemetry.start();
    return s;
  }

  get volume(): string {
    return this.fileKeys.volume;
  }

  private async run(
    op: string,
    name: FileScriptName,
    caller: Caller,
    args: ScriptArg[],
    buffer: boolean,
  ): Promise<unknown[]> {
    const argv = [...this.layout, callerArg(caller), this.clock.now(), ...args];
    const t0 = performance.now();
    const reply = await (buffer ? runFileScriptBuffer : runFileScript)(
      this.opts.redis,
      name,
      this.fileKeys.volumeRow(),
      argv,
    );
    this.telemetry.observe(`latency_${op}_ms`, performance.now() - t0);
    const err = fileErrorFromReply(reply, { op, uid: caller.uid, volume: this.volume });
    if (err) {
      this.telemetry.inc(`errors_${op}`);
      throw err;
    }
    this.telemetry.inc(`ops_${op}`);
    return reply;
  }

  /**
   * A directory (with `parents`, every missing one above it too). `requestId` makes it
   * once-only, as create's (a resend answers the first outcome, not "exists").
   */
  async mkdir(
    caller: Caller,
    path: string,
    opts: { mode?: number; parents?: boolean; requestId?: string } = {},
  ): Promise<{ ino: number; created: number }> {
    const p = normalizePath(path);
    const mode = checkMode(opts.mode ?? 0o755);
    const parents = opts.parents ? '1' : '0';
    const r = await this.call('mkdir', 'mkdir', caller, [
      p,
      mode,
      parents,
      ...this.once(p, opts.requestId, ['mkdir', callerArg(caller), p, mode, parents]),
    ]);
    return { ino: Number(r[1]), created: Number(r[2]) };
  }

  /**
   * An empty file; its chunk size is the files.chunk_bytes knob now, kept for its life.
   * `requestId` makes it once-only (see store/request-id.ts); default: a fresh id per call.
   */
  async create(
    caller: Caller,
    path: string,
    opts: { mode?: number; requestId?: string } = {},
  ): Promise<{ ino: number; chunkBytes: number }> {
    const p = filePath(path, 'create');
    const mode = checkMode(opts.mode ?? 0o644);
    const r = await this.call('create', 'create', caller, [
      p,
      mode,
      this.opts.knobs.get<number>('files.chunk_bytes'),
      ...this.once(p, opts.requestId, ['create', callerArg(caller), p, mode]),
    ]);
    // The file's own chunk size: a repeat answers the one its first run used.
    return { ino: Number(r[1]), chunkBytes: Number(r[2]) };
  }

  async write(
    caller: Caller,
    path: string,
    offset: number,
    data: Uint8Array | string,
  ): Promise<{ sizeBytes: number; version: number }> {
    const p = filePath(path, 'write');
    // Buffer.from would take an array of numbers and throw a bare TypeError on the rest.
    if (typeof data !== 'string' && !(data instanceof Uint8Array))
      throw new FileInputError(
        `data must be a string or bytes, got ${typeof data}`,
        p,
        'data',
        'type',
      );
    const buf = Buffer.from(data);
    checkCount(buf.length, 'data.length', this.limits.ioBytesMax, p);
    checkCount(offset, 'offset', this.limits.fileBytesMax - buf.length, p);
    const r = await this.call('write', 'write', caller, [p, offset, buf]);
    const [sizeBytes, version, ino, chunkBytes] = [1, 2, 3, 4].map((i) => Number(r[i]));
    this.telemetry.inc('bytes_written', buf.length);
    const span = chunkSpan(offset, buf.length, sizeBytes as number, chunkBytes as number);
    if (span) this.reader.wrote(p, ino as number, chunkBytes as number, span.first, span.last);
    return { sizeBytes: sizeBytes as number, version: version as number };
  }

  /** Bytes [offset, offset + length) of a file (to the end when length is omitted). */
  async read(
    caller: Caller,
    path: string,
    opts: { offset?: number; length?: number } = {},
  ): Promise<Buffer> {
    return this.reader.read(caller, filePath(path, 'read'), opts);
  }

  async stat(caller: Caller, path: string): Promise<FileStat> {
    const p = normalizePath(path);
    const r = (await this.call('stat', 'stat', caller, [p])).map((v, i) =>
      i === 2 ? v : Number(v),
    );
    const n = (i: number) => r[i] as number;
    if (namesDir(path) && r[2] !== 'd')
      throw new NotADirectoryError(`stat ${p}/: not a directory`, p);
    return {
      path: p,
      ino: n(1),
      type: r[2] === 'd' ? 'dir' : 'file',
      uid: n(3),
      gid: n(4),
      mode: n(5),
      sizeBytes: n(6),
      subtreeBytes: n(7),
      mtimeMs: n(8),
      ctimeMs: n(9),
      chunkBytes: n(10),
      version: n(11),
      entries: n(12),
    };
  }

  /** One page of entries; pass the returned cursor back for the next (none = done). */
  async readdir(
    caller: Caller,
    path: string,
    opts: { cursor?: string; count?: number } = {},
  ): Promise<{ entries: DirEntry[]; cursor?: string }> {
    const p = normalizePath(path);
    const count = checkCount(opts.count ?? 100, 'count', this.limits.readdirPageMax, p, 1);
    // HSCAN's cursor, as a previous page returned it: decimal digits.
    const cursor = opts.cursor ?? '0';
    if (typeof cursor !== 'string' || !/^\d{1,20}$/.test(cursor)) {
      throw new FileInputError(
        `readdir ${p}: cursor must be one a previous page returned`,
        p,
        'cursor',
        'format',
      );
    }
    const r = await this.call('readdir', 'readdir', caller, [p, cursor, count]);
    const entries: DirEntry[] = [];
    for (let i = 2; i + 2 < r.length; i += 3) {
      entries.push({
        name: String(r[i]),
        ino: Number(r[i + 1]),
        type: r[i + 2] === 'd' ? 'dir' : 'file',
      });
    }
    const next = String(r[1]);
    return next === '0' ? { entries } : { entries, cursor: next };
  }

  /**
   * Every entry of a directory, sorted by name, at most `max`. HSCAN may return an entry twice
   * when the directory grows or shrinks between pages: each name is kept once.
   */
  async list(caller: Caller, path: string, max = 100_000): Promise<DirEntry[]> {
    const out = new Map<string, DirEntry>();
    let cursor: string | undefined;
    do {
      const page = await this.readdir(caller, path, {
        ...(cursor ? { cursor } : {}),
        count: this.limits.readdirPageMax,
      });
      for (const e of page.entries) out.set(e.name, e);
      cursor = page.cursor;
      if (out.size > max) {
        throw new FileLimitError(`list ${path}: more than ${max} entries`, path, 'max', max);
      }
    } while (cursor);
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * POSIX rename: atomic, replaces a file or an empty directory at `to`. `requestId` makes it
   * once-only, as for create().
   */
  async rename(
    caller: Caller,
    from: string,
    to: string,
    opts: { requestId?: string } = {},
  ): Promise<{ moved: number }> {
    const f = normalizePath(from, 'from');
    const t = normalizePath(to, 'to');
    // A trailing / on either side asks for a directory: the source must be one.
    if (namesDir(from) || namesDir(to)) await this.mustBeDir(caller, f, 'rename');
    const r = await this.call('rename', 'rename', caller, [
      f,
      t,
      this.limits.renameSubtreeMax,
      DEPTH_MAX,
      PATH_CHARS_MAX,
      ...this.once(f, opts.requestId, ['rename', callerArg(caller), f, t]),
    ]);
    this.reader.forget(f);
    this.reader.forget(t);
    return { moved: Number(r[1]) };
  }

  /** Removes a file; `requestId` makes it once-only (a resend answers done, not "not found"). */
  async unlink(caller: Caller, path: string, opts: { requestId?: string } = {}): Promise<void> {
    const p = filePath(path, 'unlink');
    await this.call('unlink', 'remove', caller, [
      p,
      'f',
      ...this.once(p, opts.requestId, ['unlink', callerArg(caller), p]),
    ]);
    this.reader.forget(p);
  }

  /** Removes an empty directory; `requestId` makes it once-only, as unlink's. */
  async rmdir(caller: Caller, path: string, opts: { requestId?: string } = {}): Promise<void> {
    const p = normalizePath(path);
    await this.call('rmdir', 'remove', caller, [
      p,
      'd',
      ...this.once(p, opts.requestId, ['rmdir', callerArg(caller), p]),
    ]);
  }

  async truncate(
    caller: Caller,
    path: string,
    sizeBytes: number,
  ): Promise<{ sizeBytes: number; version: number }> {
    const p = filePath(path, 'truncate');
    checkCount(sizeBytes, 'sizeBytes', this.limits.fileBytesMax, p);
    const r = await this.call('truncate', 'truncate', caller, [p, sizeBytes]);
    return { sizeBytes: Number(r[1]), version: Number(r[2]) };
  }

  async chmod(caller: Caller, path: string, mode: number): Promise<void> {
    const p = normalizePath(path);
    const m = checkMode(mode);
    if (namesDir(path)) await this.mustBeDir(caller, p, 'chmod');
    await this.call('chmod', 'setattr', caller, [p, m, '', '']);
  }

  async chown(caller: Caller, path: string, owner: { uid?: number; gid?: number }): Promise<void> {
    const id = (v: number | undefined, f: string) =>
      v === undefined ? '' : checkCount(v, f, 2 ** 31 - 1);
    const p = normalizePath(path);
    const args = [p, '', id(owner.uid, 'uid'), id(owner.gid, 'gid')];
    if (namesDir(path)) await this.mustBeDir(caller, p, 'chown');
    await this.call('chown', 'setattr', caller, args);
  }

  /** The record arguments of a once-only write (includes/once.lua): key, request hash, TTL. */
  private once(path: string, requestId: string | undefined, request: unknown[]): ScriptArg[] {
    const r = requestRecord(requestId, (m) => new FileInputError(m, path, 'requestId', 'format'));
    return [this.fileKeys.request(r.id), requestHash(r, () => request), r.ttlMs];
  }

  /** For a path given with a trailing /: refuses unless it is a directory (POSIX ENOTDIR). */
  private async mustBeDir(caller: Caller, p: string, op: string): Promise<void> {
    if ((await this.stat(caller, p)).type !== 'dir')
      throw new NotADirectoryError(`${op} ${p}/: not a directory`, p);
  }

  /** Files under a directory by size and mtime, from the indexes (see README.md). */
  findFiles(caller: Caller, q: FileQuery): Promise<FileQueryResult> {
    return findFiles(this.call, this.limits, caller, q);
  }

  /** findFiles, following cursors to the end (bounded by `max` files). */
  findAllFiles(caller: Caller, q: Omit<FileQuery, 'cursor'>, max?: number): Promise<FoundFile[]> {
    return findAllFiles(this.call, this.limits, caller, q, max);
  }

  /** The n directories of a user with the most bytes in their subtree. */
  largestDirs(caller: Caller, uid: number, n = 10): Promise<DirSize[]> {
    return largestDirs(this.opts.redis, this.fileKeys, caller, uid, n, (path) =>
      this.stat(caller, path).then(
        () => true,
        (err: unknown) => {
          // Unreachable (or gone since the index was read): not listed.
          if (err instanceof FilePermissionError || err instanceof FileNotFoundError) return false;
          throw err;
        },
      ),
    );
  }

  /** Many sparse files in few atomic steps (see query.ts importFiles). */
  importFiles(
    caller: Caller,
    files: readonly ImportFile[],
    opts: { mode?: number; dirMode?: number } = {},
  ): Promise<{ files: number; dirs: number }> {
    return importFiles(this.call, this.limits, caller, files, {
      mode: opts.mode ?? 0o644,
      dirMode: opts.dirMode ?? 0o755,
      chunkBytes: this.opts.knobs.get<number>('files.chunk_bytes'),
      // Each batch is once-only under a generated id: a resend answers its first run.
      once: (path) => this.once(path, undefined, []),
    });
  }

  cacheStats(): CacheStats {
    return this.reader.stats();
  }

  private knobChanged(e: KnobChangeEvent): void {
    if (e.name !== 'files.cache_bytes' && e.name !== 'files.cache_policy') return;
    this.reader.reconfigure(
      this.opts.knobs.get<string>('files.cache_policy'),
      this.opts.knobs.get<number>('files.cache_bytes'),
    );
    this.telemetry.inc('cache_reconfigured');
  }

  /** Writes pending telemetry and trace records now. */
  async flush(): Promise<void> {
    await Promise.all([this.telemetry.flush(), this.trace.flush()]);
  }

  async close(): Promise<void> {
    this.opts.knobs.off('change', this.onKnob);
    await this.trace.flush().catch(() => undefined);
    await this.telemetry.stop();
  }
}
