// The read path of a file-service instance: the one round trip per read (permission check and
// chunk versions), the read cache, the path -> inode hints that let a read name the chunks it
// holds, and the read telemetry and access trace. The service owns one Reader.
import type { Clock } from '../knobs/clock.ts';
import type { Telemetry } from '../telemetry/metrics.ts';
import type { TraceWriter } from '../telemetry/traces.ts';
import { ChunkCache, type CacheStats } from './cache.ts';
import { checkCount } from './paths.ts';
import { assemble, chunkSpan, decodeReadReply, type ReadReply } from './read.ts';
import type { FileScriptName, ScriptArg } from './scripts.ts';
import type { Caller, FileLimits } from './types.ts';

/** How the reader runs the read script (the service's call, with Buffer replies). */
export type BufferCall = (
  op: string,
  name: FileScriptName,
  caller: Caller,
  args: ScriptArg[],
) => Promise<unknown[]>;

interface Hint {
  ino: number;
  chunkBytes: number;
  sizeBytes: number;
}

export interface ReaderDeps {
  call: BufferCall;
  limits: FileLimits;
  telemetry: Telemetry;
  trace: TraceWriter;
  clock: Clock;
  volume: string;
  cache: { policy: string; capacityBytes: number };
}

/**
 * The read cache, also noting the length of every chunk a read is served (fetched or held):
 * chunks are stored and cached at their real length, which is what the access trace records.
 */
class ServedChunkCache extends ChunkCache {
  /** Chunk key -> bytes served, for the read being assembled (assemble() is synchronous). */
  readonly served = new Map<string, number>();

  override hit(key: string, version: number): { bytes: Buffer; policyHit: boolean } | undefined {
    const got = super.hit(key, version);
    if (got) this.served.set(key, got.bytes.length);
    return got;
  }

  override miss(key: string, version: number, bytes: Buffer): void {
    this.served.set(key, bytes.length);
    super.miss(key, version, bytes);
  }
}

export class Reader {
  private readonly cache: ServedChunkCache;
  private readonly hints = new Map<string, Hint>();

  constructor(private readonly d: ReaderDeps) {
    this.cache = new ServedChunkCache(d.cache.policy, d.cache.capacityBytes);
  }

  /** Bytes [offset, offset + length) of a file at a normalised path (to the end by default). */
  async read(
    caller: Caller,
    p: string,
    opts: { offset?: number; length?: number } = {},
  ): Promise<Buffer> {
    const { limits } = this.d;
    const offset = checkCount(opts.offset ?? 0, 'offset', limits.fileBytesMax, p);
    const whole = opts.length === undefined;
    const length = whole
      ? limits.ioBytesMax
      : checkCount(opts.length, 'length', limits.ioBytesMax, p);
    // Two tries: a chunk Redis said was unchanged may have left the cache meanwhile.
    for (let attempt = 0; attempt < 2; attempt++) {
      const hint = attempt === 0 ? this.hints.get(p) : undefined;
      const held = this.held(hint, offset, length);
      const args = [p, offset, length, ...held, whole ? '1' : '0'];
      const reply = decodeReadReply(await this.d.call('read', 'read', caller, args));
      this.remember(p, reply);
      this.cache.served.clear();
      const got = assemble(reply, offset, length, this.cache);
      if (!got) continue;
      this.account(p, reply, got.hits, got.misses, got.bytes.length, this.cache.served);
      return got.bytes;
    }
    throw new Error(`read ${p}: the cache lost a chunk twice in a row`);
  }

  /**
   * This instance wrote these chunks: its copies are stale. Also traces the writes; a write
   * record's size is the chunk size, an upper bound (the writer does not know the lengths the
   * chunks now have); the loop's calibration and ghost caches use only its key (invalidation).
   */
  wrote(path: string, ino: number, chunkBytes: number, first: number, last: number): void {
    for (let i = first; i <= last; i++) {
      this.cache.invalidate(ChunkCache.key(ino, i));
      this.traceAccess('write', ino, i, chunkBytes, path);
    }
  }

  /** The path names another inode now, or none. */
  forget(path: string): void {
    this.hints.delete(path);
  }

  reconfigure(policy: string, capacityBytes: number): void {
    this.cache.reconfigure(policy, capacityBytes);
  }

  stats(): CacheStats {
    return this.cache.stats();
  }

  /** ARGV[13..14] of the read script: the inode the cache knows the path by and its versions. */
  private held(hint: Hint | undefined, offset: number, length: number): string[] {
    const span = hint && chunkSpan(offset, length, hint.sizeBytes, hint.chunkBytes);
    if (!hint || !span) return ['', ''];
    const versions: number[] = [];
    for (let i = span.first; i <= span.last; i++) {
      versions.push(this.cache.versionOf(ChunkCache.key(hint.ino, i)));
    }
    return [String(hint.ino), versions.join(',')];
  }

  private remember(path: string, r: ReadReply): void {
    this.hints.delete(path); // re-insert: Map order is the eviction order of the hints
    this.hints.set(path, { ino: r.ino, chunkBytes: r.chunkBytes, sizeBytes: r.sizeBytes });
    if (this.hints.size > this.d.limits.cacheHintsMax) {
      const oldest = this.hints.keys().next().value;
      if (oldest !== undefined) this.hints.delete(oldest);
    }
  }

  private account(
    path: string,
    r: ReadReply,
    hits: number,
    misses: number,
    bytes: number,
    served: ReadonlyMap<string, number>,
  ): void {
    const t = this.d.telemetry;
    t.inc('bytes_read', bytes);
    t.inc('cache_hits', hits);
    t.inc('cache_misses', misses);
    const s = this.cache.stats();
    t.gauge('cache_hit_ratio', s.hits / Math.max(1, s.hits + s.misses));
    t.gauge('cache_used_bytes', s.usedBytes);
    t.gauge('cache_capacity_bytes', s.capacityBytes);
    // Each chunk read at the length it is stored and cached at (a file's last chunk, or one
    // written only in part, is shorter than the file's chunk size): what the live cache was
    // charged, so the simulator and the ghost caches charge the same.
    r.chunks.forEach((c, i) => {
      if (c.version === 0) return;
      const index = r.firstChunk + i;
      const size = served.get(ChunkCache.key(r.ino, index)) ?? c.bytes?.length ?? r.chunkBytes;
      this.traceAccess('read', r.ino, index, size, path);
    });
  }

  /** One access-trace record in the simulator's shape: time, key, size (plus op and path). */
  private traceAccess(op: string, ino: number, index: number, size: number, path: string): void {
    this.d.trace.record({
      time: this.d.clock.now(),
      key: `${this.d.volume}:${ChunkCache.key(ino, index)}`,
      size,
      op,
      path,
    });
  }
}
