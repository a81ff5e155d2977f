// The messaging service's Lua scripts (scripts/*.lua, one per atomic step).
import { join } from 'node:path';
import { ScriptSet } from '../store/scripts.ts';

export const messagingScripts = new ScriptSet<'publish' | 'commit' | 'claim' | 'forgetConsumers'>(
  join(import.meta.dirname, 'scripts'),
  'knobosMessaging',
);
