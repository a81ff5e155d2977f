// A deep copy of a simulator's object graph, so an env can be forked at a decision and the fork
// run on without touching the original (counterfactual rollouts). Classes keep their
// prototypes, an object reached twice is copied once (shared references and cycles survive),
// and own properties keep their descriptors, so non-enumerable back-references are copied too.
// The walk uses its own stack: a long chain of references cannot overflow the call stack.
//
// Shared, not copied: functions (so a closure's state is shared with the original: state a fork
// must own belongs in objects, not closures) and deeply frozen objects. Refused, rather than
// copied wrongly: objects with internal slots other than plain arrays, typed arrays, Map, Set and
// Date (ArrayBuffer, RegExp, WeakMap, Promise, ...), subclasses of Array, Map and Set, typed
// arrays that view part of a buffer (another view could share it), extra properties on Map,
// Set, Date or typed arrays, and symbol keys. `#private` fields cannot be seen, so a class that
// has them must not be cloned (a copy's methods would throw on them).

type Filler = () => void;

const PLAIN_PROTOS = new Set<unknown>([Object.prototype, Array.prototype, null]);

function refuse(what: string): never {
  throw new TypeError(`cloneGraph: ${what} is not supported`);
}

/** Frozen all the way down (primitives and functions count as frozen). */
function deeplyFrozen(v: unknown, seen = new Set<object>()): boolean {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return true;
  if (typeof v === 'function' || seen.has(v)) return true;
  // Freezing a Map, Set or Date leaves its contents mutable (set, add, setTime still work).
  if (!Object.isFrozen(v) || ArrayBuffer.isView(v)) return false;
  if (v instanceof Map || v instanceof Set || v instanceof Date) return false;
  seen.add(v);
  return Object.getOwnPropertyNames(v).every((k) => {
    const d = Object.getOwnPropertyDescriptor(v, k) as PropertyDescriptor;
    return !('value' in d) || deeplyFrozen(d.value, seen);
  });
}

function checkNoExtras(v: object, what: string): void {
  if (Object.getOwnPropertyNames(v).length > 0) refuse(`${what} with own properties`);
}

export function cloneGraph<T>(root: T): T {
  const copies = new Map<object, unknown>();
  const pending: Filler[] = [];

  const ref = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    return copies.get(v) ?? shell(v);
  };

  // An empty copy of `v`, registered before its contents are filled (cycles point at it).
  const shell = (v: object): unknown => {
    if (Object.isFrozen(v) && deeplyFrozen(v)) {
      copies.set(v, v);
      return v;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) refuse('DataView');
      const ta = v as unknown as { slice(): object; byteOffset: number; buffer: ArrayBufferLike };
      if (ta.byteOffset !== 0 || v.byteLength !== ta.buffer.byteLength) {
        refuse('a typed array viewing part of a buffer');
      }
      const own = Object.getOwnPropertyNames(v).filter((k) => !/^\d+$/.test(k));
      if (own.length > 0) refuse('a typed array with own properties');
      const c = ta.slice();
      copies.set(v, c);
      return c;
    }
    if (v instanceof Map || v instanceof Set || v instanceof Date) {
      if (proto !== Map.prototype && proto !== Set.prototype && proto !== Date.prototype) {
        refuse(`a subclass of ${v.constructor.name}`);
      }
      checkNoExtras(v, v.constructor.name);
      if (v instanceof Date) {
        const c = new Date(v.getTime());
        copies.set(v, c);
        return c;
      }
      const c = v instanceof Map ? new Map() : new Set();
      copies.set(v, c);
      pending.push(() => {
        if (v instanceof Map)
          for (const [k, x] of v) (c as Map<unknown, unknown>).set(ref(k), ref(x));
        else for (const x of v) (c as Set<unknown>).add(ref(x));
      });
      return c;
    }
    if (Array.isArray(v) && proto !== Array.prototype) refuse('a subclass of Array');
    if (!Array.isArray(v) && hasInternalSlots(v)) refuse(Object.prototype.toString.call(v));
    const c: object = Array.isArray(v) ? new Array<unknown>(v.length) : Object.create(proto);
    copies.set(v, c);
    pending.push(() => fillProperties(v, c, ref));
    return c;
  };

  const out = ref(root) as T;
  while (pending.length > 0) (pending.pop() as Filler)();
  return out;
}

/** Built-ins whose state lives in internal slots, which copying properties cannot carry. */
function hasInternalSlots(v: object): boolean {
  if (PLAIN_PROTOS.has(Object.getPrototypeOf(v))) return false;
  return (
    v instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer) ||
    v instanceof RegExp ||
    v instanceof WeakMap ||
    v instanceof WeakSet ||
    v instanceof WeakRef ||
    v instanceof Promise ||
    v instanceof Error
  );
}

function fillProperties(src: object, dst: object, ref: (v: unknown) => unknown): void {
  if (Object.getOwnPropertySymbols(src).length > 0) refuse('a symbol-keyed property');
  for (const key of Object.getOwnPropertyNames(src)) {
    if (Array.isArray(src) && key === 'length') continue;
    const desc = Object.getOwnPropertyDescriptor(src, key) as PropertyDescriptor;
    // defineProperty, not assignment: an inherited setter or an own `__proto__` key must not
    // run or vanish. An accessor's functions are shared.
    Object.defineProperty(dst, key, 'value' in desc ? { ...desc, value: ref(desc.value) } : desc);
  }
}
