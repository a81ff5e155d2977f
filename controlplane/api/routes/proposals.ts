// The proposals table (controlplane/loop/proposals.ts): knob-change proposals of the learners
// and of registry promotions, with their simulation, shadow and SLO-guard reports. Newest
// first, filtered by status and learner; counts by status for the pipeline view. Proposals
// change shared configuration (knobs), so they have no tenant: every token may read them.
import { PROPOSAL_STATUSES, type Proposal, type ProposalStatus } from '../../loop/proposal.ts';
import { ProposalTable } from '../../loop/proposals.ts';
import { errors, headers } from '../schemas.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['proposals'];
/** Proposals examined at most per list call (a status filter may skip most) and per count. */
export const PROPOSALS_SCAN_MAX = 2_000;
const CHUNK = 200;

const proposalSchema = {
  type: 'object',
  required: ['id', 'learner', 'changes', 'status', 'reason', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    learner: { type: 'string' },
    changes: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, value: {}, baseVersion: { type: 'integer' } },
      },
    },
    status: { type: 'string', enum: [...PROPOSAL_STATUSES] },
    evidence: {},
    simReport: { description: 'the simulation gate: outcome, improvement, pairs, reasons' },
    shadowReport: { description: 'shadow mode: verdict and what it measured' },
    guardReport: { description: 'the SLO guard after promotion' },
    reason: { type: 'string', description: 'why it is in its current status' },
    createdAt: { type: 'number' },
    updatedAt: { type: 'number' },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.:-]+$' },
  },
} as const;

interface ListQuery {
  status?: ProposalStatus;
  learner?: string;
  limit: number;
  cursor?: string;
}

/** A place in the created index: `<created at>:<id>` of the last proposal a page returned. */
const CURSOR_RE = /^(\d{1,16}):([A-Za-z0-9_.:-]{1,200})$/;
interface Place {
  score: number;
  id: string;
}

/**
 * Newest first, after the place `cursor` names; `next` names the last proposal returned (null
 * at the end). A place, not an offset: proposals created meanwhile do not shift the pages.
 */
async function listProposals(
  proposals: ProposalTable,
  q: ListQuery,
): Promise<{ proposals: Proposal[]; next: string | null }> {
  const key = proposals.table.indexKey('knobs', 'created');
  const m = q.cursor === undefined ? null : CURSOR_RE.exec(q.cursor);
  let at: Place | undefined = m ? { score: Number(m[1]), id: m[2] as string } : undefined;
  const out: Proposal[] = [];
  // Entries at `at`'s score with an id not below its own come first (equal scores go in
  // descending id order) and were returned already: skipped, by an offset when a whole chunk
  // of them comes back.
  let skip = 0;
  for (let scanned = 0; scanned < PROPOSALS_SCAN_MAX;) {
    const raw = await proposals.knobs.redis.zrevrangebyscore(
      key,
      at ? at.score : '+inf',
      '-inf',
      'WITHSCORES',
      'LIMIT',
      skip,
      CHUNK,
    );
    const page: Place[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2)
      page.push({ id: raw[i] as string, score: Number(raw[i + 1]) });
    const from = at;
    const fresh = from ? page.filter((e) => e.score < from.score || e.id < from.id) : page;
    scanned += page.length - fresh.length;
    const rows = await proposals.table.getMany(
      'knobs',
      fresh.map((e) => e.id),
    );
    for (let i = 0; i < fresh.length; i++) {
      scanned++;
      at = fresh[i] as Place;
      const r = rows[i]?.row as unknown as Proposal | undefined;
      if (!r) continue;
      if (q.status !== undefined && r.status !== q.status) continue;
      if (q.learner !== undefined && r.learner !== q.learner) continue;
      out.push(r);
      if (out.length >= q.limit) return { proposals: out, next: `${at.score}:${at.id}` };
    }
    if (page.length < CHUNK) return { proposals: out, next: null };
    skip = fresh.length > 0 ? 0 : skip + page.length;
  }
  return { proposals: out, next: at ? `${at.score}:${at.id}` : null };
}

/** Proposals per status among the newest PROPOSALS_SCAN_MAX (one pipelined read of statuses). */
async function countByStatus(
  proposals: ProposalTable,
): Promise<{ counts: Record<ProposalStatus, number>; countedOver: number }> {
  const ids = await proposals.table.range('knobs', 'created', {
    rev: true,
    limit: PROPOSALS_SCAN_MAX,
  });
  const counts = Object.fromEntries(PROPOSAL_STATUSES.map((s) => [s, 0])) as Record<
    ProposalStatus,
    number
  >;
  if (ids.length === 0) return { counts, countedOver: 0 };
  const { redis, keys } = proposals.knobs;
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hget(keys.proposalRow(id), 'status');
  for (const [err, status] of (await pipe.exec()) ?? []) {
    if (err) throw err;
    if (typeof status === 'string' && status in counts) counts[status as ProposalStatus]++;
  }
  return { counts, countedOver: ids.length };
}

export const proposalRoutes: RouteModule = (app, { knobs }) => {
  const proposals = new ProposalTable(knobs);

  app.get<{ Querystring: ListQuery }>(
    '/api/proposals',
    {
      schema: {
        tags: TAGS,
        summary: 'Knob-change proposals and their reports (sim, shadow, guard), newest first',
        description: `At most ${PROPOSALS_SCAN_MAX} proposals are examined per call; pass \`next\` as \`cursor\` to continue. \`counts\` are by status over the newest ${PROPOSALS_SCAN_MAX}.`,
        headers,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: [...PROPOSAL_STATUSES] },
            learner: { type: 'string', minLength: 1, maxLength: 200 },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
            cursor: {
              type: 'string',
              pattern: CURSOR_RE.source,
              description: '`next` of the previous page',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['proposals', 'next', 'available', 'counts', 'countedOver'],
            properties: {
              proposals: { type: 'array', items: proposalSchema },
              next: { type: ['string', 'null'] },
              available: { type: 'boolean', description: 'always true: the table exists' },
              counts: {
                type: 'object',
                properties: Object.fromEntries(
                  PROPOSAL_STATUSES.map((s) => [s, { type: 'integer' }]),
                ),
              },
              countedOver: { type: 'integer' },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const [page, counts] = await Promise.all([
        listProposals(proposals, request.query),
        countByStatus(proposals),
      ]);
      return { ...page, available: true, ...counts };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/proposals/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'One proposal with its simulation, shadow and SLO-guard reports',
        headers,
        params: idParams,
        response: { 200: proposalSchema, ...errors(404) },
      },
    },
    async (request) => (await proposals.get(request.params.id)).proposal,
  );
};
