// Does a single deviation from SRPT pay in the moving world? On a 60-job TPC-H workload at 85%
// load, SRPT decides; at each decision where SRPT's job has no free worker on it while another
// job in the window has one (the decisions where SRPT and its move-aware one-liner differ),
// every job's task is tried in a fork of the env and SRPT decides from there (cost-to-go.ts).
// If the one-liner's gain came from single decisions, the least cost-to-go would mostly be a
// warm job. It is not, which is why PPO (whose advantages measure single decisions) did not
// find it and the training searches whole policies instead.
//
//   npx tsx learners/scheduling/deviations.ts [--seed 100003] [--decisions 40] [--json]
//        [--results experiments/results/learned-scheduler/deviations-moving]
//
// Progress goes to stderr; with --json the last stdout line is one JSON object.
import { parseArgs } from 'node:util';
import { SchedulerEnv } from '../../envs/scheduler/index.ts';
import { elapsedLog, emitTrainResult, intArg, runScript } from '../core/script.ts';
import { warmDeviations } from './cost-to-go.ts';
import { chooserActor } from './episode.ts';
import { MOVE_DELAY_MS, worldConfig } from './evaluate.ts';
import { EVAL_SCENARIO, sharedTpchDags, tpchScenario } from './scenario.ts';
import { teacherChooser } from './teacher.ts';

const args = parseArgs({
  options: {
    seed: { type: 'string', default: '100003' },
    decisions: { type: 'string', default: '40' },
    json: { type: 'boolean', default: false },
    results: { type: 'string', default: 'experiments/results/learned-scheduler/deviations-moving' },
  },
}).values;

/** Simulated time SRPT decides for after the deviation (null: to the end of the episode). */
const HORIZONS_MS = [15_000, 60_000, 180_000, null] as const;
/** Costs within this many job-seconds of the least count as tied with it. */
const TOLERANCE_S = 0.5;
const WINDOW = 32;

async function main(): Promise<void> {
  const started = Date.now();
  const log = elapsedLog(started);
  const seed = intArg('seed', args.seed, 0);
  const maxDecisions = intArg('decisions', args.decisions, 1);
  const env = new SchedulerEnv({
    window: WINDOW,
    scenario: tpchScenario(sharedTpchDags(), EVAL_SCENARIO),
    config: worldConfig('moving', 0), // the env sets the episode's seed
  });
  const srpt = chooserActor(teacherChooser('srpt', WINDOW));
  const r = warmDeviations(env, seed, srpt, HORIZONS_MS, {
    decisions: maxDecisions,
    toleranceS: TOLERANCE_S,
  });
  const rows = HORIZONS_MS.map((h, k) => ({
    horizonS: h === null ? null : h / 1000,
    ...r.byHorizon[k]!,
  }));
  const result = {
    name: 'learned-scheduler-deviations',
    world: 'moving',
    moveDelayMs: MOVE_DELAY_MS,
    scenario: EVAL_SCENARIO,
    workloadSeed: seed,
    window: WINDOW,
    toleranceS: TOLERANCE_S,
    coldDecisions: r.cold,
    horizons: rows,
    seconds: (Date.now() - started) / 1000,
  };
  const d = rows[0]?.decisions ?? 0;
  const md = [
    '# Single deviations from SRPT towards a job a free worker is on (moving world)',
    '',
    `Produced by \`npx tsx learners/scheduling/deviations.ts --seed ${seed} --decisions ${maxDecisions}\`. ` +
      `TPC-H, ${EVAL_SCENARIO.jobs} jobs, ${EVAL_SCENARIO.workers} workers, load ${EVAL_SCENARIO.load}, ` +
      `workload seed ${seed}; window ${WINDOW}. In ${r.cold} of SRPT's decisions its job had no ` +
      `free worker on it while another job did; ${d} of them, evenly spaced, were examined.`,
    '',
    `| SRPT decides for | decisions | least cost-to-go on a warm job | ... and SRPT's more than ${TOLERANCE_S} job-s above it | SRPT's above the least, mean (job-s) |`,
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (x) =>
        `| ${x.horizonS === null ? 'the rest of the episode' : `${x.horizonS} s`} | ${x.decisions} | ` +
        `${x.warmBest} | ${x.warmBetter} | ${x.meanGapS.toFixed(2)} |`,
    ),
    '',
  ].join('\n');
  emitTrainResult({ folder: args.results, json: args.json, log }, result, md);
}

runScript(main);
