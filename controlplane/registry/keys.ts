// Every key of the policy registry, built on Keys (the store's one key builder). The registry is
// one hash-tag family `{policies}`: rows, their index, the per-name version counters, the name
// index and the audit log share one Redis Cluster slot, so registering a version (counter, row,
// indexes, audit) and moving a status (row, audit) are each one atomic step.
import type { Keys } from '../store/keys.ts';

export const POLICIES_FAMILY = 'policies';
export const POLICIES_TABLE = 'policies';

const PLACEHOLDER = 'x';

export class RegistryKeys {
  constructor(readonly keys: Keys) {}

  /** A version's row: `<name>@<version>` is its id. */
  row(id: string): string {
    return this.keys.row(POLICIES_FAMILY, POLICIES_TABLE, id);
  }

  /**
   * The row key without its id: the register script appends the id it assigns (the version
   * is only known inside the script). A test checks prefix + id equals row(id).
   */
  rowPrefix(): string {
    return this.row(PLACEHOLDER).slice(0, -PLACEHOLDER.length);
  }

  /** Hash: policy name -> its latest version (the counter versions are assigned from). */
  versions(): string {
    return this.keys.key(POLICIES_FAMILY, 'versions');
  }

  /** Sorted set: policy name -> when its latest version was registered. */
  names(): string {
    return this.keys.key(POLICIES_FAMILY, 'names');
  }

  /** What one register request made ('<version> <seq>'), so a repeat of it registers nothing. */
  registerRequest(requestId: string): string {
    return this.keys.key(POLICIES_FAMILY, 'register_request', requestId);
  }

  /** The registry's audit stream (who registered, evaluated, promoted, retired what). */
  audit(): string {
    return this.keys.key(POLICIES_FAMILY, 'audit');
  }
}
