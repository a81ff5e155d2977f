// The heuristics as choosers inside the env's window of candidates, read from the same feature
// rows the network sees: the teachers of behaviour cloning. Each is the in-window version of
// the policy of the same name in policies/scheduling (the window lists tasks oldest first, so
// "ties go to the lowest index" is that policy's FIFO tie-break).
import { TASK_FEATURES, TASK_FEATURE_NAMES } from '../../policies/scheduling/index.ts';

/** Picks a candidate from `count` feature rows of TASK_FEATURES numbers each. */
export type WindowChooser = (rows: ArrayLike<number>, count: number) => number;

/**
 * Marks in `out` every candidate the heuristic ranks first (its ties). The policy itself
 * takes the first of them (its FIFO tie-break); cloning accepts any, so the learner copies
 * the heuristic's criterion and is free to break its ties better.
 */
export type WindowTeacher = (rows: ArrayLike<number>, count: number, out: Uint8Array) => void;

export const TEACHER_NAMES = ['fifo', 'sjf', 'srpt', 'critical_path'] as const;
export type TeacherName = (typeof TEACHER_NAMES)[number];

const column = (name: (typeof TASK_FEATURE_NAMES)[number]): number =>
  TASK_FEATURE_NAMES.indexOf(name);

/** The candidates with the highest `sign * feature`. */
function byFeature(col: number, sign: 1 | -1): WindowTeacher {
  return (rows, count, out) => {
    let best = -Infinity;
    for (let i = 0; i < count; i++)
      best = Math.max(best, sign * (rows[i * TASK_FEATURES + col] as number));
    for (let i = 0; i < count; i++)
      out[i] = sign * (rows[i * TASK_FEATURES + col] as number) === best ? 1 : 0;
  };
}

/** The feature column each heuristic ranks by, and the direction (+1: larger first). */
const CRITERIA: Record<TeacherName, { column: number; sign: 1 | -1 }> = {
  fifo: { column: column('job_age_log_s'), sign: 1 },
  sjf: { column: column('estimate_log_s'), sign: -1 },
  srpt: { column: column('job_remaining_work_log_s'), sign: -1 },
  critical_path: { column: column('critical_path_log_s'), sign: 1 },
};

/**
 * The heuristic's ranking as weights on the feature row: `weight` on its column, with its
 * sign (the starting point of the scorer's linear path when config.priorWeight > 0).
 */
export function criterionWeights(name: string, weight: number): number[] {
  teacher(name); // checks the name
  const { column: col, sign } = CRITERIA[name as TeacherName];
  return Array.from({ length: TASK_FEATURES }, (_, i) => (i === col ? sign * weight : 0));
}

const TEACHERS: Record<TeacherName, WindowTeacher> = {
  // The window is in FIFO order, so the oldest candidate is FIFO's only first choice.
  fifo: (_rows, count, out) => {
    out.fill(0, 0, count);
    out[0] = 1;
  },
  // TPC-H stages all carry estimates; a task without one reads 0 here, unlike sjf's "last".
  sjf: byFeature(column('estimate_log_s'), -1),
  srpt: byFeature(column('job_remaining_work_log_s'), -1),
  critical_path: byFeature(column('critical_path_log_s'), 1),
};

export function teacher(name: string): WindowTeacher {
  const t = (TEACHERS as Record<string, WindowTeacher | undefined>)[name];
  if (!t) {
    throw new RangeError(
      `teacher must be one of ${TEACHER_NAMES.join(', ')}, got ${JSON.stringify(name)}`,
    );
  }
  return t;
}

/** The heuristic's exact choice: the first of its top-ranked candidates (FIFO tie-break). */
export function exactTeacher(name: string): WindowTeacher {
  const t = teacher(name);
  return (rows, count, out) => {
    t(rows, count, out);
    const first = out.indexOf(1);
    out.fill(0, 0, count);
    out[first >= 0 && first < count ? first : 0] = 1;
  };
}

/** The heuristic as a chooser: the first of its top-ranked candidates (its FIFO tie-break). */
export function teacherChooser(name: string, width: number): WindowChooser {
  const t = teacher(name);
  const marks = new Uint8Array(width);
  return (rows, count) => {
    t(rows, count, marks);
    const i = marks.indexOf(1);
    return i >= 0 && i < count ? i : 0;
  };
}
