// API tokens: `knobos_<id>_<secret>`, shown once at creation. Only the SHA-256 of a token is
// stored (a row of the tokens table, keyed by its id); a presented token is hashed and
// compared with the stored hash in constant time. Creating and revoking a token is one atomic
// step with its audit entry. The admin token from the environment is never stored.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../knobs/clock.ts';
import type { RedisClient } from '../../redis/connect.ts';
import { NotFoundError } from '../../store/errors.ts';
import type { Keys } from '../../store/keys.ts';
import { Table } from '../../store/table.ts';
import type { Role } from './roles.ts';
import { TOKENS_FAMILY, tokenAuditKey } from '../keys.ts';

const TOKEN_RE = /^knobos_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const AUDIT_MAX_LEN = 10_000;
/** Listing returns at most this many tokens (a bound, not a page size) ... */
export const MAX_TOKENS_LISTED = 1_000;
/** ... reading at most this many rows, in chunks. */
const TOKENS_SCANNED_MAX = 100_000;
const LIST_CHUNK = 500;

const tokenFields = {
  id: { type: 'string' },
  name: { type: 'string' },
  role: { type: 'string' },
  tenant: { type: 'string', optional: true },
  hash: { type: 'string' },
  created_at: { type: 'number' },
  created_by: { type: 'string' },
} as const;

export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
  tenant: string | null;
  createdAt: number;
  createdBy: string;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Constant-time equality of two secrets (compared as digests, so lengths never leak). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export class TokenStore {
  private readonly table: Table<typeof tokenFields>;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly clock: Clock,
  ) {
    this.table = new Table(redis, keys, {
      name: 'tokens',
      fields: tokenFields,
      id: (r) => r.id,
      family: () => TOKENS_FAMILY,
      indexes: { created: (r) => r.created_at },
    });
  }

  /** Creates a token; the plain token is returned once and never stored. */
  async create(opts: {
    name: string;
    role: Role;
    tenant: string | null;
    actor: string;
  }): Promise<{ token: string; info: TokenInfo }> {
    const id = randomBytes(8).toString('hex');
    const token = `knobos_${id}_${randomBytes(32).toString('base64url')}`;
    const row = {
      id,
      name: opts.name,
      role: opts.role,
      hash: sha256(token).toString('hex'),
      created_at: this.clock.now(),
      created_by: opts.actor,
      ...(opts.tenant ? { tenant: opts.tenant } : {}),
    };
    await this.table.write(
      [{ row, expect: 0 }],
      [
        this.auditEntry(opts.actor, 'token.create', id, opts.tenant, {
          name: opts.name,
          role: opts.role,
        }),
      ],
    );
    return { token, info: toInfo(row) };
  }

  /** The token's row when `token` is a live token, else null. */
  async verify(token: string): Promise<TokenInfo | null> {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const got = await this.table.get(TOKENS_FAMILY, m[1] as string);
    if (!got) return null;
    const stored = Buffer.from(got.row.hash, 'hex');
    const given = sha256(token);
    if (stored.length !== given.length || !timingSafeEqual(stored, given)) return null;
    return toInfo(got.row);
  }

  /** true while the token with this id exists (not revoked); streams re-check it by id. */
  async isLive(id: string): Promise<boolean> {
    return (await this.table.get(TOKENS_FAMILY, id)) !== null;
  }

  /**
   * Newest first, at most MAX_TOKENS_LISTED; only `tenant`'s tokens when given. Read in chunks
   * until enough match, so a tenant's tokens behind many newer ones of other tenants are found
   * (up to TOKENS_SCANNED_MAX rows read).
   */
  async list(tenant: string | null): Promise<TokenInfo[]> {
    const out: TokenInfo[] = [];
    const seen = new Set<string>();
    for (let offset = 0; offset < TOKENS_SCANNED_MAX; offset += LIST_CHUNK) {
      const ids = await this.table.range(TOKENS_FAMILY, 'created', {
        rev: true,
        offset,
        limit: LIST_CHUNK,
      });
      for (const r of await this.table.getMany(TOKENS_FAMILY, ids)) {
        // A token created meanwhile shifts the offsets by one: a row may come twice.
        if (!r || seen.has(r.row.id)) continue;
        seen.add(r.row.id);
        if (tenant !== null && r.row.tenant !== tenant) continue;
        out.push(toInfo(r.row));
        if (out.length >= MAX_TOKENS_LISTED) return out;
      }
      if (ids.length < LIST_CHUNK) break;
    }
    return out;
  }

  /** Revokes a token; another tenant's token is reported missing, not forbidden. */
  async revoke(id: string, opts: { actor: string; tenant: string | null }): Promise<TokenInfo> {
    const got = await this.table.get(TOKENS_FAMILY, id);
    const visible = got && (opts.tenant === null || got.row.tenant === opts.tenant);
    if (!got || !visible)
      throw new NotFoundError(`token ${id} does not exist`, { field: 'id', rule: 'exists' });
    await this.table.write(
      [],
      [
        this.auditEntry(opts.actor, 'token.revoke', id, got.row.tenant ?? null, {
          name: got.row.name,
        }),
      ],
      [{ row: got.row, expect: got.version }],
    );
    return toInfo(got.row);
  }

  private auditEntry(
    actor: string,
    action: string,
    id: string,
    tenant: string | null,
    detail: Record<string, unknown>,
  ) {
    return {
      key: tokenAuditKey(this.keys),
      maxLen: AUDIT_MAX_LEN,
      fields: {
        at: String(this.clock.now()),
        actor,
        action,
        target: `token:${id}`,
        outcome: 'ok',
        detail: JSON.stringify({ ...detail, ...(tenant ? { tenant } : {}) }),
      },
    };
  }
}

function toInfo(r: {
  id: string;
  name: string;
  role: string;
  tenant?: string;
  created_at: number;
  created_by: string;
}): TokenInfo {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    tenant: r.tenant ?? null,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}
