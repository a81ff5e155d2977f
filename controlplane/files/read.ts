// Assembling a read from the read script's reply: chunks Redis sent are offered to the cache,
// chunks it confirmed unchanged come from the cache, holes and the unwritten tails of chunks
// are zeros. Kept apart from the service so the byte arithmetic reads on one screen.
import { ChunkCache } from './cache.ts';

export interface ReadReply {
  ino: number;
  sizeBytes: number;
  chunkBytes: number;
  version: number;
  mtimeMs: number;
  firstChunk: number;
  /** Per chunk of the range: version (0 = hole) and bytes (null = held by the cache or hole). */
  chunks: { version: number; bytes: Buffer | null }[];
}

export function decodeReadReply(reply: readonly unknown[]): ReadReply {
  const chunks: ReadReply['chunks'] = [];
  for (let i = 7; i + 1 < reply.length; i += 2) {
    const bytes = reply[i + 1];
    chunks.push({ version: Number(reply[i]), bytes: Buffer.isBuffer(bytes) ? bytes : null });
  }
  return {
    ino: Number(reply[1]),
    sizeBytes: Number(reply[2]),
    chunkBytes: Number(reply[3]),
    version: Number(reply[4]),
    mtimeMs: Number(reply[5]),
    firstChunk: Number(reply[6]),
    chunks,
  };
}

/** The chunk indexes a range covers, clipped to a size; empty when nothing is left. */
export function chunkSpan(
  offset: number,
  length: number,
  sizeBytes: number,
  chunkBytes: number,
): { first: number; last: number; start: number; stop: number } | undefined {
  const start = Math.min(offset, sizeBytes);
  const stop = length < 0 ? sizeBytes : Math.min(sizeBytes, start + length);
  if (stop <= start) return undefined;
  return {
    first: Math.floor(start / chunkBytes),
    last: Math.floor((stop - 1) / chunkBytes),
    start,
    stop,
  };
}

export interface Assembled {
  bytes: Buffer;
  hits: number;
  misses: number;
}

/**
 * The bytes of [offset, offset + length) from a reply, or undefined when a chunk Redis said
 * was unchanged is no longer in the cache (the caller then reads again without hints).
 */
export function assemble(
  reply: ReadReply,
  offset: number,
  length: number,
  cache: ChunkCache,
): Assembled | undefined {
  const span = chunkSpan(offset, length, reply.sizeBytes, reply.chunkBytes);
  if (!span) return { bytes: Buffer.alloc(0), hits: 0, misses: 0 };
  const out = Buffer.alloc(span.stop - span.start); // zeros: holes stay zeros
  let hits = 0;
  let misses = 0;
  let lost = false;
  reply.chunks.forEach((c, i) => {
    if (c.version === 0) return;
    const index = reply.firstChunk + i;
    const key = ChunkCache.key(reply.ino, index);
    let bytes: Buffer | undefined;
    if (c.bytes) {
      cache.miss(key, c.version, c.bytes);
      bytes = c.bytes;
      misses++;
    } else {
      const got = cache.hit(key, c.version);
      bytes = got?.bytes;
      if (got?.policyHit) hits++;
      else if (got) misses++;
    }
    if (!bytes) {
      lost = true;
      return;
    }
    const base = index * reply.chunkBytes;
    const from = Math.max(span.start, base);
    const to = Math.min(span.stop, base + bytes.length);
    if (to > from) bytes.copy(out, from - span.start, from - base, to - base);
  });
  return lost ? undefined : { bytes: out, hits, misses };
}
