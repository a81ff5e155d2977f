// The server's settings from the environment (secrets come from there, never from the repo):
// PORT (default 8080), HOST (default 127.0.0.1), KNOBOS_ADMIN_TOKEN (an admin token, sent as
// `Authorization: Bearer <token>`), KNOBOS_AUTH=off (no tokens; loopback only),
// KNOBOS_METRICS_PUBLIC=1 (/metrics without a token).
import { randomBytes } from 'node:crypto';
import type { AuthOptions } from './auth/hook.ts';

/** An admin token shorter than this is refused: it would be guessable. */
export const MIN_ADMIN_TOKEN_CHARS = 16;

export interface ServerEnv {
  port: number;
  host: string;
  auth: AuthOptions;
  publicMetrics: boolean;
  /** Set when no admin token was given and one was generated: print it for the operator. */
  generatedAdminToken?: string;
}

export function serverEnv(
  env: NodeJS.ProcessEnv = process.env,
  opts: { generateAdminToken?: boolean } = {},
): ServerEnv {
  const portText = env['PORT'] ?? '8080';
  // Number('') and Number(' ') are 0: an empty PORT would listen on a random port.
  const port = /^\d+$/.test(portText.trim()) ? Number(portText) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be an integer 0-65535, got '${env['PORT']}'`);
  const host = env['HOST'] ?? '127.0.0.1';
  const publicMetrics = env['KNOBOS_METRICS_PUBLIC'] === '1';
  const authMode = env['KNOBOS_AUTH'] ?? 'tokens';
  if (authMode === 'off') return { port, host, auth: { mode: 'off' }, publicMetrics };
  if (authMode !== 'tokens')
    throw new Error(`KNOBOS_AUTH must be 'off' or unset, got '${authMode}'`);
  const given = env['KNOBOS_ADMIN_TOKEN'];
  if (given !== undefined) {
    if (given.length < MIN_ADMIN_TOKEN_CHARS || !/^[\x21-\x7e]+$/.test(given))
      throw new Error(
        `KNOBOS_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_CHARS} printable characters without spaces`,
      );
    return { port, host, auth: { mode: 'tokens', adminToken: given }, publicMetrics };
  }
  if (!opts.generateAdminToken) return { port, host, auth: { mode: 'tokens' }, publicMetrics };
  const generated = `knobos_admin_${randomBytes(24).toString('base64url')}`;
  return {
    port,
    host,
    auth: { mode: 'tokens', adminToken: generated },
    publicMetrics,
    generatedAdminToken: generated,
  };
}
