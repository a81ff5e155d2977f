// The one TensorFlow.js backend loader (DESIGN.md: "one loader picks and reports which").
// Order: the native `tensorflow` backend of @tensorflow/tfjs-node when that optional package
// imports (it downloads a native library at install time, so it is usually absent), else the
// WebAssembly backend, else the plain JS `cpu` backend. `KNOBOS_TF_BACKEND=node|wasm|cpu`
// forces one; a forced backend that fails to load is an error, not a silent fallback, because
// the operator asked for it by name.
//
// Measured on the 2-core shared dev box (Node 20, tfjs 4.22, wasm single-threaded; median of
// 200 calls after 20 warm-up calls; the clipped Adam step of learners/tf/optimize.ts; run
// twice each, load average ~2 from other users):
//   forward, batch 1, 8-64-64-4 relu:            cpu 0.08-0.13 ms   wasm 0.09 ms
//   Huber + Adam step, batch 64, same net:        cpu 5.7 ms         wasm 1.6-2.2 ms
//   Huber + Adam step, batch 256, same net:       cpu 16 ms          wasm 3.6 ms
//   forward, batch 1024, 32-256-256-8 tanh:       cpu 235 ms         wasm 15 ms
// Acting on one observation costs the same on both (per-op overhead dominates); wasm wins every
// batched case by 3-15x, so the specified order (node, wasm, cpu) stands. The override exists
// for debugging and for comparing backends.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';

export type TfBackendName = 'node' | 'wasm' | 'cpu';

export const TF_BACKEND_ENV = 'KNOBOS_TF_BACKEND';

export interface TfBackendInfo {
  /** Which backend runs the tensors. */
  name: TfBackendName;
  /** The TF.js engine's own name for it (`tensorflow`, `wasm`, `cpu`). */
  engineName: string;
  /** Why this one: forced by the env var, or the first of the order that loaded. */
  reason: string;
}

/** Bad value of KNOBOS_TF_BACKEND, or a forced backend that does not load. */
export class TfBackendError extends Error {
  override readonly name = 'TfBackendError';
}

const ENGINE_NAMES: Record<TfBackendName, string> = {
  node: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

// The package name sits in a variable so TypeScript does not demand its types: the package is
// optional and usually not installed.
const TFJS_NODE = '@tensorflow/tfjs-node';

async function tryNode(): Promise<boolean> {
  try {
    await import(TFJS_NODE);
  } catch {
    return false;
  }
  return tf.setBackend(ENGINE_NAMES.node);
}

async function tryWasm(): Promise<boolean> {
  // In Node the wasm binaries are read from disk; point the backend at the package's dist
  // folder (where its main file lives) rather than at the working directory.
  const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  setWasmPaths(dirname(main) + sep);
  try {
    return await tf.setBackend(ENGINE_NAMES.wasm);
  } catch {
    return false;
  }
}

async function tryCpu(): Promise<boolean> {
  return tf.setBackend(ENGINE_NAMES.cpu);
}

const LOADERS: Record<TfBackendName, () => Promise<boolean>> = {
  node: tryNode,
  wasm: tryWasm,
  cpu: tryCpu,
};

const ORDER: readonly TfBackendName[] = ['node', 'wasm', 'cpu'];

/** The backend named by KNOBOS_TF_BACKEND, undefined when unset; throws on any other value. */
export function parseBackendOverride(raw: string | undefined): TfBackendName | undefined {
  if (raw === undefined || raw === '') return undefined;
  if ((ORDER as readonly string[]).includes(raw)) return raw as TfBackendName;
  throw new TfBackendError(`${TF_BACKEND_ENV} must be one of ${ORDER.join(', ')}, got '${raw}'`);
}

async function pick(forcedRaw: string | undefined): Promise<TfBackendInfo> {
  const forced = parseBackendOverride(forcedRaw);
  if (forced !== undefined) {
    if (!(await LOADERS[forced]())) {
      throw new TfBackendError(`${TF_BACKEND_ENV}=${forced} but that backend did not load`);
    }
    return { name: forced, engineName: tf.getBackend(), reason: `forced by ${TF_BACKEND_ENV}` };
  }
  const skipped: TfBackendName[] = [];
  for (const name of ORDER) {
    if (await LOADERS[name]()) {
      const reason = skipped.length === 0 ? 'first choice' : `${skipped.join(', ')} unavailable`;
      return { name, engineName: tf.getBackend(), reason };
    }
    skipped.push(name);
  }
  throw new TfBackendError('no TensorFlow.js backend loaded (not even cpu)');
}

let loading: Promise<TfBackendInfo> | undefined;

/**
 * Picks and initialises the backend once per process; later calls return the same answer
 * without touching the engine again. Logs one line on stderr the first time.
 */
export function loadTfBackend(): Promise<TfBackendInfo> {
  loading ??= pick(process.env[TF_BACKEND_ENV]).then(
    (info) => {
      process.stderr.write(`[knobos] tfjs backend: ${info.name} (${info.reason})\n`);
      return info;
    },
    (err: unknown) => {
      loading = undefined; // let a fixed environment retry
      throw err;
    },
  );
  return loading;
}

export { tf };
