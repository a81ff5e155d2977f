// The scheduler's Lua scripts (controlplane/scheduler/scripts), one per state transition.
import { join } from 'node:path';
import { ScriptSet } from '../store/scripts.ts';

export type SchedulerScript =
  | 'submit'
  | 'dispatch'
  | 'settle'
  | 'heartbeat'
  | 'deregister'
  | 'reap'
  | 'speculate'
  | 'prune'
  | 'cancel';

export const schedulerScripts = new ScriptSet<SchedulerScript>(
  join(import.meta.dirname, 'scripts'),
  'knobos_sched',
);
