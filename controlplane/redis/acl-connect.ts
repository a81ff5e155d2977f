// One connection per knobos user when Redis ACLs are on (acl.ts), or the one shared connection
// when they are off. A node asks `as('scheduler')` for the scheduler's connection; with ACLs
// on, each user gets its own client logged in with its own password (from the environment or
// generated for the embedded server), so Redis checks every command against that user.
import type { Logger } from '../log.ts';
import type { Keys } from '../store/keys.ts';
import {
  aclLogin,
  aclModeFromEnv,
  aclPasswords,
  aclUserName,
  applyAcl,
  type AclMode,
  type AclPasswords,
  type AclUserName,
} from './acl.ts';
import { connect, type RedisClient, type RedisTarget } from './connect.ts';

export interface AclConnectionsOptions {
  target: RedisTarget;
  keys: Keys;
  env: NodeJS.ProcessEnv;
  /** The node started this server itself: ACLs default to applied, passwords may be generated. */
  embedded: boolean;
  log: Logger;
}

export class AclConnections {
  private readonly clients = new Map<AclUserName, RedisClient>();

  private constructor(
    private readonly opts: AclConnectionsOptions,
    readonly mode: AclMode,
    private readonly passwords: AclPasswords | undefined,
  ) {}

  /** Reads the mode and passwords; with 'apply' creates the users (locking default if embedded). */
  static async open(opts: AclConnectionsOptions): Promise<AclConnections> {
    const mode = aclModeFromEnv(opts.env, opts.embedded);
    const passwords =
      mode === 'off' ? undefined : aclPasswords(opts.env, { generate: opts.embedded });
    if (mode === 'apply' && passwords) {
      // The target's own login (default on the embedded server) must be allowed ACL SETUSER.
      const setup = connect(opts.target, { name: 'knobos-acl-setup', maxRetriesPerRequest: 3 });
      setup.on('error', () => {});
      try {
        await applyAcl(setup, opts.keys, passwords, { lockDefault: opts.embedded });
      } catch (err) {
        throw new Error(
          `applying the Redis ACL users failed (they need Redis 7 or newer, and a login allowed ACL SETUSER; KNOBOS_REDIS_ACL=off runs without them): ${(err as Error).message}`,
        );
      } finally {
        setup.disconnect();
      }
    }
    opts.log.info(
      {
        mode,
        users: passwords
          ? Object.keys(passwords).map((u) => aclUserName(opts.keys, u as AclUserName))
          : [],
      },
      mode === 'off'
        ? 'redis ACLs off: one connection for every service'
        : 'redis ACL users in use',
    );
    return new AclConnections(opts, mode, passwords);
  }

  /** The login of a user, or undefined with ACLs off (for a CLI that must reach the server). */
  login(user: AclUserName): { username: string; password: string } | undefined {
    if (!this.passwords) return undefined;
    const { username, password } = aclLogin(this.opts.keys, this.passwords, user);
    return { username: username as string, password: password as string };
  }

  /** The user's connection (one per user; with ACLs off, one for all). */
  as(user: AclUserName): RedisClient {
    const key = this.passwords ? user : 'admin';
    let c = this.clients.get(key);
    if (!c) {
      c = connect(
        this.opts.target,
        this.passwords ? aclLogin(this.opts.keys, this.passwords, user) : { name: 'knobos-node' },
      );
      c.on('error', (err: Error) =>
        this.opts.log.warn({ user: key, err: err.message }, 'redis connection error'),
      );
      this.clients.set(key, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.disconnect();
    this.clients.clear();
  }
}
