// The event queue: a binary min-heap on (time, insertion order), so events at the same time
// come out in the order they were scheduled and a run replays exactly. Keys live in typed arrays
// with a size counter (no array push/pop per event), and both sifts move a hole rather than
// swapping.
export class EventQueue<T> {
  private times = new Float64Array(64);
  /** Insertion numbers; a double holds every count up to 2^53 exactly. */
  private seqs = new Float64Array(64);
  private items: (T | undefined)[] = [];
  private n = 0;
  private seq = 0;

  constructor(private readonly maxSize = 1 << 26) {}

  get size(): number {
    return this.n;
  }

  peekTime(): number {
    return this.n > 0 ? (this.times[0] as number) : Infinity;
  }

  /** The earliest item, left in the queue; undefined when empty. */
  peek(): T | undefined {
    return this.n > 0 ? this.items[0] : undefined;
  }

  push(time: number, item: T): void {
    const n = this.n;
    if (n >= this.maxSize) throw new Error(`event queue: more than ${this.maxSize} events pending`);
    if (Number.isNaN(time)) throw new Error('event queue: NaN time');
    if (n === this.times.length) this.grow();
    const times = this.times;
    const seqs = this.seqs;
    const items = this.items;
    const s = this.seq++;
    this.n = n + 1;
    let i = n;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = times[p] as number;
      if (pt < time || (pt === time && (seqs[p] as number) < s)) break;
      times[i] = pt;
      seqs[i] = seqs[p] as number;
      items[i] = items[p];
      i = p;
    }
    times[i] = time;
    seqs[i] = s;
    items[i] = item;
  }

  /** Removes and returns the earliest item; undefined when empty. */
  pop(): T | undefined {
    const n = this.n;
    if (n === 0) return undefined;
    const times = this.times;
    const seqs = this.seqs;
    const items = this.items;
    const top = items[0];
    const m = n - 1;
    this.n = m;
    const t = times[m] as number;
    const s = seqs[m] as number;
    const item = items[m];
    items[m] = undefined; // no reference kept past the end
    if (m === 0) return top;
    let i = 0;
    while (true) {
      let c = 2 * i + 1;
      if (c >= m) break;
      let ct = times[c] as number;
      const r = c + 1;
      if (r < m) {
        const rt = times[r] as number;
        if (rt < ct || (rt === ct && (seqs[r] as number) < (seqs[c] as number))) {
          c = r;
          ct = rt;
        }
      }
      if (t < ct || (t === ct && s < (seqs[c] as number))) break;
      times[i] = ct;
      seqs[i] = seqs[c] as number;
      items[i] = items[c];
      i = c;
    }
    times[i] = t;
    seqs[i] = s;
    items[i] = item;
    return top;
  }

  private grow(): void {
    const size = Math.min(this.maxSize, 2 * this.times.length);
    const times = new Float64Array(size);
    const seqs = new Float64Array(size);
    times.set(this.times);
    seqs.set(this.seqs);
    this.times = times;
    this.seqs = seqs;
  }
}
