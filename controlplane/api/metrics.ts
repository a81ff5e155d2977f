// Prometheus text exposition (format 0.0.4) of the API's own request metrics and the knobs
// table's state. Request series are kept in memory with a bound on their number, so a client
// probing random URLs cannot grow the registry without limit (routes are route templates,
// and unmatched requests share one label).
import { isNumericKnob } from '../../knobs/index.ts';
import type { KnobRow } from '../knobs/row.ts';
import type { FreezeState } from '../knobs/table.ts';

/** Latency buckets, seconds. */
const BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Beyond this many (method, route, status) series, new ones are counted under route="other". */
const MAX_SERIES = 500;

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Family {
  readonly lines: string[];
  constructor(
    private readonly name: string,
    type: 'gauge' | 'counter' | 'histogram',
    help: string,
  ) {
    this.lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  }
  add(l: Record<string, string>, value: number, suffix = ''): this {
    this.lines.push(`${this.name}${suffix}${labels(l)} ${formatNumber(value)}`);
    return this;
  }
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export interface KnobsSnapshot {
  rows: readonly KnobRow[];
  frozen: FreezeState | null;
  epoch: number;
}

export class ApiMetrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();

  /** Records one finished request. */
  observe(method: string, route: string, status: number, seconds: number): void {
    let r = route;
    const reqKey = (x: string) => `${method}\u0000${x}\u0000${status}`;
    if (!this.requests.has(reqKey(r)) && this.requests.size >= MAX_SERIES) r = 'other';
    this.requests.set(reqKey(r), (this.requests.get(reqKey(r)) ?? 0) + 1);
    const latKey = `${method}\u0000${r}`;
    let h = this.latency.get(latKey);
    if (!h) this.latency.set(latKey, (h = { counts: BUCKETS_S.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS_S.length; i++)
      if (seconds <= (BUCKETS_S[i] as number)) h.counts[i] = (h.counts[i] as number) + 1;
    h.sum += seconds;
    h.count++;
  }

  /** How many requests were seen for a route (tests and the dashboard's sanity checks). */
  count(method: string, route: string, status: number): number {
    return this.requests.get(`${method}\u0000${route}\u0000${status}`) ?? 0;
  }

  render(knobs: KnobsSnapshot, extra: { sseClients: number }): string {
    return [
      ...knobFamilies(knobs),
      ...this.requestFamilies(),
      new Family('knobos_sse_clients', 'gauge', 'Open server-sent-event streams.').add(
        {},
        extra.sseClients,
      ).lines,
    ]
      .flat()
      .join('\n')
      .concat('\n');
  }

  private requestFamilies(): string[][] {
    const total = new Family(
      'knobos_http_requests_total',
      'counter',
      'HTTP requests served, by method, route template and status.',
    );
    for (const [k, n] of this.requests) {
      const [method, route, status] = k.split('\u0000') as [string, string, string];
      total.add({ method, route, status }, n);
    }
    const dur = new Family(
      'knobos_http_request_duration_seconds',
      'histogram',
      'Time to serve a request, by method and route template.',
    );
    for (const [k, h] of this.latency) {
      const [method, route] = k.split('\u0000') as [string, string];
      BUCKETS_S.forEach((le, i) =>
        dur.add({ method, route, le: String(le) }, h.counts[i] as number, '_bucket'),
      );
      dur.add({ method, route, le: '+Inf' }, h.count, '_bucket');
      dur.add({ method, route }, h.sum, '_sum');
      dur.add({ method, route }, h.count, '_count');
    }
    return [total.lines, dur.lines];
  }
}

function knobFamilies({ rows, frozen, epoch }: KnobsSnapshot): string[][] {
  const version = new Family('knobos_knob_version', 'gauge', "A knob's row version.");
  const value = new Family(
    'knobos_knob_value',
    'gauge',
    "A numeric or boolean knob's current value (booleans as 0/1).",
  );
  const enumValue = new Family(
    'knobos_knob_enum_value',
    'gauge',
    "1 for an enum knob's current value (the value is a label).",
  );
  const pinned = new Family('knobos_knob_pinned', 'gauge', '1 when the knob is pinned.');
  const changed = new Family(
    'knobos_knob_last_change_timestamp_seconds',
    'gauge',
    "When the knob's row last changed value.",
  );
  for (const r of rows) {
    const l = { knob: r.name, service: r.service };
    version.add(l, r.version);
    pinned.add(l, r.pinned ? 1 : 0);
    changed.add(l, r.updatedAt / 1000);
    if (isNumericKnob(r.spec) && typeof r.value === 'number') value.add(l, r.value);
    else if (typeof r.value === 'boolean') value.add(l, r.value ? 1 : 0);
    else if (typeof r.value === 'string') enumValue.add({ ...l, value: r.value }, 1);
  }
  return [
    version.lines,
    value.lines,
    enumValue.lines,
    pinned.lines,
    changed.lines,
    new Family('knobos_knobs_frozen', 'gauge', '1 while automation is frozen.').add(
      {},
      frozen ? 1 : 0,
    ).lines,
    new Family('knobos_knobs_epoch', 'gauge', 'The knobs change counter.').add({}, epoch).lines,
  ];
}
