// The event queue: a binary min-heap on (time, insertion order), so events at the same time
// come out in the order they were scheduled and a run replays exactly.
export class EventQueue<T> {
  private times: number[] = [];
  private seqs: number[] = [];
  private items: T[] = [];
  private seq = 0;

  constructor(private readonly maxSize = 1 << 26) {}

  get size(): number {
    return this.items.length;
  }

  peekTime(): number {
    return this.items.length > 0 ? (this.times[0] as number) : Infinity;
  }

  push(time: number, item: T): void {
    if (this.items.length >= this.maxSize)
      throw new Error(`event queue: more than ${this.maxSize} events pending`);
    if (Number.isNaN(time)) throw new Error('event queue: NaN time');
    const s = this.seq++;
    let i = this.items.length;
    this.times.push(time);
    this.seqs.push(s);
    this.items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = this.times[p] as number;
      if (pt < time || (pt === time && (this.seqs[p] as number) < s)) break;
      this.move(p, i);
      i = p;
    }
    this.set(i, time, s, item);
  }

  /** Removes and returns the earliest item; undefined when empty. */
  pop(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const top = this.items[0] as T;
    const t = this.times.pop() as number;
    const s = this.seqs.pop() as number;
    const item = this.items.pop() as T;
    const m = n - 1;
    if (m === 0) return top;
    let i = 0;
    while (true) {
      let c = 2 * i + 1;
      if (c >= m) break;
      const r = c + 1;
      if (r < m && this.less(r, c)) c = r;
      const ct = this.times[c] as number;
      if (t < ct || (t === ct && s < (this.seqs[c] as number))) break;
      this.move(c, i);
      i = c;
    }
    this.set(i, t, s, item);
    return top;
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a] as number;
    const tb = this.times[b] as number;
    return ta < tb || (ta === tb && (this.seqs[a] as number) < (this.seqs[b] as number));
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from] as number;
    this.seqs[to] = this.seqs[from] as number;
    this.items[to] = this.items[from] as T;
  }

  private set(i: number, t: number, s: number, item: T): void {
    this.times[i] = t;
    this.seqs[i] = s;
    this.items[i] = item;
  }
}
