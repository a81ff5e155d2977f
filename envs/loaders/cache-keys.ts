// The simplest cache trace: one key per line, nothing else. Blank lines are skipped; a line
// with more than one field is rejected rather than guessed at.
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
    if (/\s/.test(key)) {
      const n = key.split(/\s+/).length;
      throw new TraceFormatError(file, lineNo, `expected one key per line, got ${n} fields`);
    }
    builder.push(key);
    return builder.length < maxRequests;
  });
  return builder.build(lastLine);
}
