// Redis's own access control as knobos's one security system: each service, the control loop,
// the learners and the API connect as their own ACL user, and Redis refuses (NOPERM) any key,
// channel or command outside that user's grant. The users are data (ACL_USERS); applyAcl()
// writes them to every node of a server or cluster with ACL SETUSER; passwords come from the
// environment (KNOBOS_REDIS_PASSWORD_<USER>) or, for the embedded default, are generated at
// random per run. Passwords are never logged and never written to the repo.
//
// Grants are over key families, the hash tags keys.ts builds (`<prefix>:{<family>}:...`), with
// Redis 7 selectors: `%RW~` read and write, `%R~` read only. Lua scripts run with the caller's
// permissions: every key a script touches, declared or not, is checked, and EVAL/EVALSHA count
// their declared KEYS as written, so a script over a family needs `%RW~` on it.
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { ValidationError } from '../store/errors.ts';
import type { Keys } from '../store/keys.ts';
import type { ConnectOptions, RedisClient } from './connect.ts';

export const ACL_USER_NAMES = [
  'admin',
  'scheduler',
  'messaging',
  'files',
  'loop',
  'learner',
  'api',
] as const;
export type AclUserName = (typeof ACL_USER_NAMES)[number];

export interface AclUserSpec {
  /** Families read and written (a hash tag, `*` as a glob: 'sched:*'). */
  write: readonly string[];
  /** Families only read. */
  read: readonly string[];
  /** Pub/sub channels, as [family, channel name glob] (knobs changes: ['knobs', 'changes']). */
  channels: readonly (readonly [string, string])[];
  /** Command rules after the key and channel grants (ACL SETUSER syntax). */
  commands: readonly string[];
  /** Exact key-name globs below a family, when a whole family is too much (see learner). */
  writeKeys?: readonly (readonly [string, string])[];
}

/**
 * What a service process needs and nothing it does not: data commands, scripts, blocking pops,
 * transactions, pub/sub on its granted channels. Dangerous and admin commands (FLUSHALL,
 * CONFIG, KEYS, DEBUG, ACL, MONITOR, SCRIPT DEBUG, ...) are off; SCAN, RANDOMKEY and CLIENT
 * TRACKING are off too, since Redis does not filter them by key grant (they would list every
 * service's key names). INFO stays
 * (ioredis's ready check), WAIT (durable writes, @connection), and the CLUSTER subcommands a
 * cluster client asks for its topology (slots are computed client-side, redis/slots.ts).
 */
export const SERVICE_COMMANDS: readonly string[] = [
  '-@all',
  '+@read',
  '+@write',
  '+@scripting',
  '+@pubsub',
  '+@connection',
  '+@transaction',
  '+@blocking',
  '-@dangerous',
  '-@admin',
  '-scan',
  '-randomkey',
  '-pubsub',
  '-function',
  '-fcall',
  '-fcall_ro',
  '-script|flush',
  '-script|kill',
  // A synchronous debug session blocks the whole server until its client leaves.
  '-script|debug',
  // BCAST tracking is not checked against key grants: it would report every service's key
  // names as they change (the reason SCAN is off).
  '-client|tracking',
  '-client|caching',
  '+info',
  '+cluster|slots',
  '+cluster|shards',
  '+cluster|nodes',
  '+cluster|info',
  '+cluster|myid',
  '+readonly',
  '+readwrite',
  // Redis's clock: messaging's publish script times its dedup records on it (publish-3.lua).
  '+time',
];

/**
 * A service follows the knob channel but never announces on it: only the knob scripts the loop
 * and the API run publish there (a channel grant covers both directions, so publishing is
 * taken away by command).
 */
const FOLLOWER_COMMANDS: readonly string[] = [...SERVICE_COMMANDS, '-publish', '-spublish'];

const KNOB_CHANGES = ['knobs', 'changes'] as const;

/**
 * The users. A service owns its tables' families and its own telemetry and traces, reads the
 * knobs (and the scheduler the policy registry, for the live policy's artifact) and follows
 * the knob change channel. The loop reads every service's telemetry and traces and writes the
 * knobs family (proposals, promotions, rollbacks, the shadow knob). A learner outside the loop
 * may only read and write proposals: promotion is the loop's. The API serves operators and
 * tenants over every table; see docs/security.md for why it may write the files family.
 */
export const ACL_USERS: Readonly<Record<AclUserName, AclUserSpec>> = {
  admin: { write: ['*'], read: [], channels: [['*', '*']], commands: ['+@all'] },
  scheduler: {
    // `placement`: the tenant migrations a placement change runs (scheduler/migration.ts).
    write: ['sched:*', 'placement', 'telemetry:scheduler', 'traces:scheduler'],
    read: ['knobs', 'policies'],
    channels: [KNOB_CHANGES],
    // A migration pages through the moved tenant's rows with SCAN; Redis shows SCAN every key
    // name of the node (names, not values): the one user allowed it.
    commands: [...FOLLOWER_COMMANDS, '+scan'],
  },
  messaging: {
    write: ['msg:*', 'telemetry:messaging', 'traces:messaging'],
    read: ['knobs'],
    channels: [KNOB_CHANGES],
    commands: FOLLOWER_COMMANDS,
  },
  files: {
    write: ['files:*', 'telemetry:files', 'traces:files'],
    read: ['knobs'],
    channels: [KNOB_CHANGES],
    commands: FOLLOWER_COMMANDS,
  },
  loop: {
    write: ['knobs'],
    // The placement target calibrates from the scheduler shards' usage tables.
    read: ['telemetry:*', 'traces:*', 'policies', 'sched:*', 'placement'],
    channels: [KNOB_CHANGES],
    commands: SERVICE_COMMANDS,
  },
  learner: {
    write: [],
    // createProposal.lua names the knob rows and the freeze switch as keys (EVAL counts them
    // written), so the learner's grant covers them by key; it never runs a write on them.
    writeKeys: [
      ['knobs', 'proposals:*'],
      ['knobs', 'audit'],
      ['knobs', 'freeze'],
      ['knobs', 'knob:*'],
    ],
    read: ['knobs', 'telemetry:*', 'traces:*'],
    channels: [KNOB_CHANGES],
    commands: FOLLOWER_COMMANDS,
  },
  api: {
    write: ['knobs', 'tokens', 'policies', 'files:*', 'telemetry:files', 'traces:files'],
    read: ['sched:*', 'msg:*', 'placement', 'telemetry:*', 'traces:*'],
    channels: [KNOB_CHANGES],
    commands: SERVICE_COMMANDS,
  },
};

/** Escapes Redis glob characters in a literal part (a key prefix may contain them). */
function globLiteral(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The glob of every key of a family: `<prefix>:{<family>}:*` (`*` in family stays a glob). */
export function familyPattern(keys: Keys, family: string, rest = '*'): string {
  return family === '*' && rest === '*'
    ? `${globLiteral(keys.prefix)}:*`
    : `${globLiteral(keys.prefix)}:{${family}}:${rest}`;
}

/** The Redis user name of a knobos user under a key prefix, e.g. `knobos-scheduler`. */
export function aclUserName(keys: Keys, user: AclUserName): string {
  return `${keys.prefix}-${user}`;
}

/** The ACL SETUSER arguments (without the user name) of a user with a password. */
export function aclRules(keys: Keys, user: AclUserName, password: string): string[] {
  const spec = ACL_USERS[user];
  const channel = ([family, name]: readonly [string, string]) =>
    family === '*'
      ? `&${globLiteral(keys.prefix)}:*`
      : `&${familyPattern(keys, family, `channel:${name}`)}`;
  return [
    // reset: no keys, channels, commands or passwords left from an earlier grant.
    'reset',
    'on',
    `>${password}`,
    ...spec.write.map((f) => `%RW~${familyPattern(keys, f)}`),
    ...(spec.writeKeys ?? []).map(([f, rest]) => `%RW~${familyPattern(keys, f, rest)}`),
    ...spec.read.map((f) => `%R~${familyPattern(keys, f)}`),
    ...spec.channels.map(channel),
    ...spec.commands,
  ];
}

/** What the embedded server's passwordless `default` user keeps: a probe and a clean stop. */
export const LOCKED_DEFAULT_RULES = ['resetkeys', 'resetchannels', '-@all', '+ping', '+shutdown'];

export type AclPasswords = Readonly<Record<AclUserName, string>>;

/** The environment variable holding a user's password: KNOBOS_REDIS_PASSWORD_SCHEDULER. */
export function passwordEnvName(user: AclUserName): string {
  return `KNOBOS_REDIS_PASSWORD_${user.toUpperCase()}`;
}

const MIN_PASSWORD_CHARS = 16;

/**
 * Every user's password from the environment. A missing one is generated at random when
 * `generate` (the embedded default: the node applies them itself, nothing else needs them);
 * otherwise it is an error naming the variable.
 */
export function aclPasswords(env: NodeJS.ProcessEnv, opts: { generate: boolean }): AclPasswords {
  const out = {} as Record<AclUserName, string>;
  for (const user of ACL_USER_NAMES) {
    const name = passwordEnvName(user);
    const value = env[name];
    if (value === undefined || value === '') {
      if (!opts.generate)
        throw new ValidationError(
          `${name} is not set: with Redis ACLs on, every knobos user's password comes from the environment`,
          name,
          'required',
        );
      out[user] = randomBytes(24).toString('base64url');
      continue;
    }
    if (value.length < MIN_PASSWORD_CHARS || !/^[\x21-\x7e]+$/.test(value))
      throw new ValidationError(
        `${name} must be at least ${MIN_PASSWORD_CHARS} characters of printable ASCII without spaces`,
        name,
        'password',
      );
    out[user] = value;
  }
  return out;
}

/** Connection options of a user (for connect()). */
export function aclLogin(
  keys: Keys,
  passwords: AclPasswords,
  user: AclUserName,
): Pick<ConnectOptions, 'username' | 'password' | 'name'> {
  return { username: aclUserName(keys, user), password: passwords[user], name: `knobos-${user}` };
}

/**
 * Runs `fn` on every node: the one server, or every node CLUSTER NODES lists (primaries and
 * replicas; a cluster client's own pool can miss a replica that is not serving slots yet).
 */
async function onEveryNode(redis: RedisClient, fn: (node: Redis) => Promise<void>): Promise<void> {
  if (!(redis instanceof Cluster)) return fn(redis);
  if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
  const listing = (await redis.call('CLUSTER', 'NODES')) as string;
  const addresses = listing
    .split('\n')
    .filter((l) => l.trim() && !/\b(fail|noaddr|handshake)\b/.test(l.split(' ')[2] ?? ''))
    .map((l) => (l.split(' ')[1] ?? '').split('@')[0] as string);
  const pool = new Map(redis.nodes('all').map((n) => [`${n.options.host}:${n.options.port}`, n]));
  for (const addr of addresses) {
    const known = pool.get(addr);
    if (known) {
      await fn(known);
      continue;
    }
    const [host, port] = [
      addr.slice(0, addr.lastIndexOf(':')),
      Number(addr.slice(addr.lastIndexOf(':') + 1)),
    ];
    const node = new Redis({ ...redis.options.redisOptions, host, port, lazyConnect: true });
    node.on('error', () => {});
    try {
      await fn(node);
    } finally {
      node.disconnect();
    }
  }
}

/**
 * Creates or replaces the users on every node (ACL state is per node; replicas get it too so a
 * failover keeps it). `lockDefault` takes the passwordless `default` user down to PING and
 * SHUTDOWN; do it only when nothing else connects as default (the embedded server). The
 * connection must be allowed ACL SETUSER (default before locking, or admin).
 */
export async function applyAcl(
  redis: RedisClient,
  keys: Keys,
  passwords: AclPasswords,
  opts: { users?: readonly AclUserName[]; lockDefault?: boolean } = {},
): Promise<void> {
  const users = opts.users ?? ACL_USER_NAMES;
  await onEveryNode(redis, async (node) => {
    for (const user of users)
      await node
        .call('ACL', 'SETUSER', aclUserName(keys, user), ...aclRules(keys, user, passwords[user]))
        .catch((err: Error) => {
          // Redis quotes the rule it refused; never let that be a password.
          throw new Error(err.message.split(passwords[user]).join('***'));
        });
    // Last: after this the connection, if it is default's, may do nothing else.
    if (opts.lockDefault) await node.call('ACL', 'SETUSER', 'default', ...LOCKED_DEFAULT_RULES);
  });
}

export type AclMode = 'apply' | 'on' | 'off';

/**
 * KNOBOS_REDIS_ACL: 'apply' (create the users, then connect as them), 'on' (they exist; just
 * connect as them), 'off' (one connection, no users). Default: 'apply' for the embedded server,
 * 'off' for an external one (its operator decides).
 */
export function aclModeFromEnv(env: NodeJS.ProcessEnv, embedded: boolean): AclMode {
  const v = env['KNOBOS_REDIS_ACL'];
  if (v === undefined || v === '') return embedded ? 'apply' : 'off';
  if (v === 'apply' || v === 'on' || v === 'off') return v;
  throw new ValidationError(
    `KNOBOS_REDIS_ACL must be apply, on or off, got '${v}'`,
    'KNOBOS_REDIS_ACL',
    'enum',
  );
}
