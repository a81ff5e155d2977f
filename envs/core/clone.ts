// A deep copy of a simulator's object graph, so an env can be forked at a decision and the fork
// run on without touching the original (counterfactual rollouts). Classes keep their
// prototypes, an object reached twice is copied once (shared references and cycles survive),
// and own properties keep their descriptors, so non-enumerable back-references are copied too.
// Functions are shared, and so are frozen objects, which are taken to be immutable. The walk
// uses its own stack: a long chain of references cannot overflow the call stack.

type Filler = () => void;

export function cloneGraph<T>(root: T): T {
  const copies = new Map<object, unknown>();
  const pending: Filler[] = [];

  const ref = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v;
    return copies.get(v) ?? shell(v);
  };

  // An empty copy of `v`, registered before its contents are filled (cycles point at it).
  const shell = (v: object): unknown => {
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) throw new TypeError('cloneGraph: DataView is not supported');
      const c = (v as unknown as { slice(): object }).slice();
      copies.set(v, c);
      return c;
    }
    if (v instanceof Map) {
      const c = new Map();
      copies.set(v, c);
      pending.push(() => {
        for (const [k, x] of v) c.set(ref(k), ref(x));
      });
      return c;
    }
    if (v instanceof Set) {
      const c = new Set();
      copies.set(v, c);
      pending.push(() => {
        for (const x of v) c.add(ref(x));
      });
      return c;
    }
    if (v instanceof Date) {
      const c = new Date(v.getTime());
      copies.set(v, c);
      return c;
    }
    const c: object = Array.isArray(v)
      ? new Array<unknown>(v.length)
      : Object.create(Object.getPrototypeOf(v) as object | null);
    copies.set(v, c);
    pending.push(() => fillProperties(v, c, ref));
    return c;
  };

  const out = ref(root) as T;
  while (pending.length > 0) (pending.pop() as Filler)();
  return out;
}

function fillProperties(src: object, dst: object, ref: (v: unknown) => unknown): void {
  const s = src as Record<string, unknown>;
  const d = dst as Record<string, unknown>;
  for (const key of Object.getOwnPropertyNames(src)) {
    const desc = Object.getOwnPropertyDescriptor(src, key) as PropertyDescriptor;
    if (Array.isArray(src) && key === 'length') continue;
    if ('value' in desc && desc.enumerable && desc.writable && desc.configurable) {
      d[key] = ref(s[key]); // the common case, kept on the fast path
    } else if ('value' in desc) {
      Object.defineProperty(dst, key, { ...desc, value: ref(desc.value) });
    } else {
      Object.defineProperty(dst, key, desc); // an accessor: its functions are shared
    }
  }
  if (Object.getOwnPropertySymbols(src).length > 0) {
    throw new TypeError('cloneGraph: symbol-keyed properties are not supported');
  }
}
