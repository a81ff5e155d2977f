// The simplest cache trace: one key per line, nothing else. Blank lines are skipped; a line
// with more than one field is rejected rather than guessed at, and so is a line holding a `,`:
// that is a CSV row (a CSV read as keys would make its header a request and each whole row a
// key), which loadCacheTrace reads as CSV when its first line says so.
import {
  CacheTraceBuilder,
  checkMaxRequests,
  type CacheLoadOptions,
  type CacheTrace,
} from './cache-trace.ts';
import { forEachLine } from './csv.ts';
import { TraceFormatError } from './errors.ts';

export function loadCacheKeys(file: string, opts: CacheLoadOptions = {}): CacheTrace {
  const maxRequests = checkMaxRequests(opts.maxRequests);
  const builder = new CacheTraceBuilder(file, false);
  const lastLine = forEachLine({ file }, (line, lineNo) => {
    const key = line.trim();
    if (key === '') return true;
    if (key.includes(',')) {
      throw new TraceFormatError(
        file,
        lineNo,
        "expected one key per line, got a ',': a CSV trace needs a header naming its key column",
      );
    }
    if (/\s/.test(key)) {
      const n = key.split(/\s+/).length;
      throw new TraceFormatError(file, lineNo, `expected one key per line, got ${n} fields`);
    }
    builder.push(key);
    return builder.length < maxRequests;
  });
  return builder.build(lastLine);
}
