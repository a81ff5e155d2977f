// A FIFO over an array with a moving head: taking a batch from the front costs the batch, not
// the queue (Array.prototype.shift/splice would move every remaining element).
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  take(n: number): T[] {
    const out = this.items.slice(this.head, this.head + n) as T[];
    if (this.head + out.length === this.items.length) {
      // Drained (the usual case): start over, keeping nothing taken alive.
      this.items = [];
      this.head = 0;
      return out;
    }
    // Taken slots are cleared: the dead prefix must not keep payloads (and their promises'
    // callbacks) alive until the next compaction.
    this.items.fill(undefined, this.head, this.head + out.length);
    this.head += out.length;
    // Compact once the dead prefix dominates, so the array stays bounded by the live items.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }
}
