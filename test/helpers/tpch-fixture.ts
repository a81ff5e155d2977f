// A small TPC-H stages file and its task durations, in the shared traces' formats: two DAGs
// (1g query 7: stages 0 and 1 feed 2; 2g query 9: one stage), for loader and simulator tests.
export const TPCH_STAGES = [
  'scale,query,stage,num_tasks,parents,children,mean_first_wave_ms',
  '1g,7,0,2,,2,10',
  '1g,7,1,1,,2,10',
  '1g,7,2,3,0;1,,10',
  '2g,9,0,1,,,10',
].join('\n');

export const TPCH_DURATIONS = [
  'scale,query,stage,num_executors,wave,duration_ms',
  '1g,7,0,2,first_wave,100',
  '1g,7,0,2,rest_wave,300',
  '1g,7,1,2,first_wave,50',
  '1g,7,2,2,first_wave,70',
  '2g,9,0,5,fresh_durations,1000',
].join('\n');
