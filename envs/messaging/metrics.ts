// Summaries of message latencies: the envs' one nearest-rank percentile and mean
// (envs/core/stats.ts), re-exported where the messaging env and objective have always found them.
export { mean, percentile } from '../core/stats.ts';
