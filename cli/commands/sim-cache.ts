// `knobos sim cache`: replay a cache trace under one eviction policy and report hit and miss
// ratios. With --json the last stdout line is one JSON object (experiments/report.ts).
import { SIM_POLICIES, simulateCache } from '../../envs/cache/index.ts';
import {
  CACHE_TRACE_FORMATS,
  loadCacheTrace,
  type CacheTraceFormat,
} from '../../envs/loaders/cache-load.ts';
import { CacheTraceError } from '../../envs/loaders/cache-trace.ts';
import { commandFailed, emitResult } from '../../experiments/report.ts';
import { parseFlagNumber, parseFlags, UsageError } from '../args.ts';

const USAGE = `usage: knobos sim cache --trace FILE [--format csv|keys] [--key-column NAME]
         [--size-column NAME] --policy NAME --size N [--bytes] [--json]

  --trace FILE        cache trace: CSV with a header, or one key per line
  --format csv|keys   trace format (default: from the first line: csv when it has a comma or names a key column, else keys)
  --key-column NAME   CSV key column (default: the first named obj_id, key or lbn)
  --size-column NAME  CSV size column in bytes (default: the first named obj_size or size)
  --policy NAME       ${SIM_POLICIES.join(', ')}
  --size N            cache size in objects, or in bytes with --bytes
  --bytes             count object sizes against the cache size
  --json              print the result as one JSON object on the last line
`;

interface SimCacheArgs {
  trace: string;
  format: CacheTraceFormat | undefined;
  keyColumn: string | undefined;
  sizeColumn: string | undefined;
  policy: string;
  size: number;
  bytes: boolean;
  json: boolean;
}

function parse(argv: string[]): SimCacheArgs | 'help' {
  const { values } = parseFlags({
    args: argv,
    options: {
      trace: { type: 'string' },
      format: { type: 'string' },
      'key-column': { type: 'string' },
      'size-column': { type: 'string' },
      policy: { type: 'string' },
      size: { type: 'string' },
      bytes: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  if (!values.trace) throw new UsageError('--trace is required');
  if (!values.policy) throw new UsageError('--policy is required');
  if (!(SIM_POLICIES as readonly string[]).includes(values.policy)) {
    throw new UsageError(
      `--policy must be one of ${SIM_POLICIES.join(', ')}, got ${values.policy}`,
    );
  }
  const format = values.format;
  if (format !== undefined && !(CACHE_TRACE_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      `--format must be one of ${CACHE_TRACE_FORMATS.join(', ')}, got ${format}`,
    );
  }
  if (values.size === undefined) throw new UsageError('--size is required');
  const size = parseFlagNumber('size', values.size, { integer: true, min: 0 });
  return {
    trace: values.trace,
    format: format as CacheTraceFormat | undefined,
    keyColumn: values['key-column'],
    sizeColumn: values['size-column'],
    policy: values.policy,
    size,
    bytes: values.bytes,
    json: values.json,
  };
}

export async function run(argv: string[]): Promise<number> {
  let args: SimCacheArgs | 'help';
  try {
    args = parse(argv);
  } catch (err) {
    return commandFailed(`knobos sim cache: ${(err as Error).message}`, err, argv, USAGE);
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let trace;
  try {
    trace = loadCacheTrace(args.trace, {
      format: args.format,
      keyColumn: args.keyColumn,
      sizeColumn: args.sizeColumn,
    });
  } catch (err) {
    if (err instanceof CacheTraceError || (err as NodeJS.ErrnoException).code === 'ENOENT')
      return commandFailed(`knobos sim cache: ${(err as Error).message}`, err, argv);
    throw err;
  }
  const unit = args.bytes ? 'bytes' : 'objects';
  if (unit === 'bytes' && !trace.sizes) {
    const err = new Error(`--bytes needs a size column, and ${args.trace} has none`);
    return commandFailed(`knobos sim cache: ${err.message}`, err, argv, USAGE);
  }
  const startMs = performance.now();
  const r = simulateCache(trace, args.policy, args.size, { unit });
  const elapsedMs = performance.now() - startMs;
  const result = {
    policy: r.policy,
    size: args.size,
    unit,
    trace: args.trace,
    distinct_keys: trace.keyCount,
    requests: r.requests,
    hits: r.hits,
    hit_ratio: r.hit_ratio,
    miss_ratio: r.miss_ratio,
    byte_hit_ratio: r.byte_hit_ratio,
    elapsed_ms: Math.round(elapsedMs * 10) / 10,
  };
  const human =
    `${r.policy} cache of ${args.size} ${unit} on ${args.trace} ` +
    `(${r.requests} requests, ${trace.keyCount} distinct keys)\n` +
    `  hits ${r.hits}  hit ratio ${r.hit_ratio.toFixed(4)}  miss ratio ${r.miss_ratio.toFixed(4)}` +
    `  byte hit ratio ${r.byte_hit_ratio.toFixed(4)}\n`;
  emitResult(human, result, args.json);
  return 0;
}
