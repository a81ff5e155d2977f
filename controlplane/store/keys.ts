// Every Redis key name is built here and nowhere else. Keys look like
// `<prefix>:{<family>}:<table>:<id>`; the hash tag `{family}` keeps the rows one atomic step
// touches in one Redis Cluster slot, so the same scripts run on one node and on a cluster.

/** Characters that would break the key grammar or a hash tag. */
const BAD_ID = /[{}\s]/;

export function assertKeyPart(what: string, part: string): void {
  if (part.length === 0 || part.length > 200 || BAD_ID.test(part)) {
    throw new Error(`${what} '${part}' must be 1-200 characters without braces or white space`);
  }
}

export class Keys {
  constructor(readonly prefix = 'knobos') {
    assertKeyPart('key prefix', prefix);
  }

  /** A key in a table family; the family is the hash tag. */
  key(family: string, ...parts: string[]): string {
    for (const p of parts) assertKeyPart('key part', p);
    return [`${this.prefix}:{${family}}`, ...parts].join(':');
  }

  /** A pub/sub channel of a family (channels are not slotted, but keep the same naming). */
  channel(family: string, name: string): string {
    return this.key(family, 'channel', name);
  }

  // The knobs family: rows, per-knob history, one audit log, the freeze switch, an epoch
  // counter bumped on every value change, and an index of knobs by last update.
  knobRow(name: string): string {
    return this.key('knobs', 'knob', name);
  }
  knobHistory(name: string): string {
    return this.key('knobs', 'history', name);
  }
  knobIndex(): string {
    return this.key('knobs', 'index', 'updated_at');
  }
  knobAudit(): string {
    return this.key('knobs', 'audit');
  }
  knobFreeze(): string {
    return this.key('knobs', 'freeze');
  }
  knobEpoch(): string {
    return this.key('knobs', 'epoch');
  }
  knobChanges(): string {
    return this.channel('knobs', 'changes');
  }
  /** Proposals live in the knobs family, so a promotion can mark its proposal in the same step. */
  proposalRow(id: string): string {
    return this.row('knobs', 'proposals', id);
  }
  proposalIndex(index: 'created' | 'open'): string {
    return this.index('knobs', 'proposals', index);
  }
  /** Per loop target: the change sets its SLO guard rolled back, and when (refuted live). */
  loopRefuted(target: string): string {
    return this.key('knobs', 'refuted', target);
  }

  // Telemetry (metrics per interval) and sampled traces, one family per service so a busy
  // service's logs do not crowd another's slot.
  telemetry(service: string): string {
    return this.log(`telemetry:${service}`, 'metrics');
  }
  trace(service: string, kind: string): string {
    return this.log(`traces:${service}`, kind);
  }

  // Generic tables (tasks, proposals, policies, ...): a row, its indexes, its logs.
  row(family: string, table: string, id: string): string {
    return this.key(family, table, 'row', id);
  }
  index(family: string, table: string, index: string): string {
    return this.key(family, table, 'index', index);
  }
  /** The highest version a removed row of the table had (writeRows.lua): creates start above. */
  tableRemovedVersion(family: string, table: string): string {
    return this.key(family, table, 'meta', 'removed_v');
  }
  log(family: string, name: string): string {
    return this.key(family, 'log', name);
  }
}
