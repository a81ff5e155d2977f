// CPU a redis-server has used so far (INFO's used_cpu_user + used_cpu_sys, seconds): the
// benchmarks read it before and after a phase to charge Redis its share per operation.
import type { RedisClient } from '../../controlplane/redis/connect.ts';

/** The text of `field` in an INFO reply ('' when absent). */
export function infoValue(info: string, field: string): string {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
}

/** The number `field` holds in an INFO reply (NaN when absent). */
function infoField(info: string, field: string): number {
  const v = infoValue(info, field);
  return v === '' ? Number.NaN : Number(v);
}

/** CPU seconds (user + sys) in an INFO reply that has the cpu section. */
export function cpuSeconds(info: string): number {
  return infoField(info, 'used_cpu_user') + infoField(info, 'used_cpu_sys');
}

/** CPU seconds (user + sys) the server behind `client` has used so far. */
export async function redisCpuS(client: RedisClient): Promise<number> {
  return cpuSeconds((await client.info('cpu')) as string);
}
