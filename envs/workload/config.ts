// Typed errors and checks for generator configurations, shared by every generator here.

export class WorkloadConfigError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`workload config: ${field} ${rule}`);
    this.name = 'WorkloadConfigError';
  }
}

export function requirePositive(field: string, x: number): void {
  if (!Number.isFinite(x) || x <= 0) throw new WorkloadConfigError(field, `must be > 0, got ${x}`);
}

export function requireNonNegative(field: string, x: number): void {
  if (!Number.isFinite(x) || x < 0) throw new WorkloadConfigError(field, `must be >= 0, got ${x}`);
}

export function requireInteger(field: string, x: number, min: number): number {
  if (!Number.isInteger(x) || x < min)
    throw new WorkloadConfigError(field, `must be an integer >= ${min}, got ${x}`);
  return x;
}
