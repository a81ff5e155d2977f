// Key names of the API's own tables, built only on Keys.key(): API tokens (rows and their
// audit log) live in the `tokens` family, so a token write and its audit entry are one
// atomic step in one cluster slot.
import type { Keys } from '../store/keys.ts';

export const TOKENS_FAMILY = 'tokens';

export function tokenAuditKey(keys: Keys): string {
  return keys.key(TOKENS_FAMILY, 'audit');
}
