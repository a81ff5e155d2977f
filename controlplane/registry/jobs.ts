// A simulation job as it crosses into the evaluator's worker thread and back: plain data in,
// a report or a serialised typed error out. The same function runs jobs inline.
import { KnobosError } from '../store/errors.ts';
import {
  ArtifactInvalidError,
  RegistryBusyError,
  RegistryInputError,
  RegistryUnsupportedError,
} from './errors.ts';
import type { EvalSpec, NamedArtifact, SchedulingSims, ShadowReport, SimReport } from './sim.ts';

export interface SimJob {
  type: 'evaluate' | 'shadow';
  candidate: NamedArtifact;
  incumbent: NamedArtifact;
  spec: EvalSpec;
}

export type SimResult = SimReport | ShadowReport;

export interface WireError {
  code?: string;
  name: string;
  message: string;
  details?: Record<string, unknown>;
}

export function runJob(sims: SchedulingSims, job: SimJob): SimResult {
  return job.type === 'evaluate'
    ? sims.evaluate(job.candidate, job.incumbent, job.spec)
    : sims.shadow(job.candidate, job.incumbent, job.spec);
}

export function toWire(err: unknown): WireError {
  if (err instanceof KnobosError)
    return { code: err.code, name: err.name, message: err.message, details: err.details };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}

/** The typed error a wire error stands for (a plain Error for anything untyped: a bug). */
export function fromWire(w: WireError): Error {
  const d = w.details ?? {};
  const field = String(d['field'] ?? '');
  const rule = String(d['rule'] ?? '');
  switch (w.code) {
    case 'KNOBOS_REGISTRY_INVALID':
      return new RegistryInputError(w.message, field, rule, d);
    case 'KNOBOS_REGISTRY_INVALID_ARTIFACT':
      return new ArtifactInvalidError(w.message, field, rule, d);
    case 'KNOBOS_REGISTRY_UNSUPPORTED':
      return new RegistryUnsupportedError(w.message, d);
    case 'KNOBOS_REGISTRY_BUSY':
      return new RegistryBusyError(w.message, d);
    default: {
      const e = new Error(`simulation failed: ${w.message}`);
      e.name = w.name;
      return e;
    }
  }
}
