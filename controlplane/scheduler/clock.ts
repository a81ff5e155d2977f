// The scheduler takes its clock injected (tests control time); the knobs table's clock type is
// the one the whole control plane shares.
export { systemClock, ManualClock, type Clock } from '../knobs/clock.ts';
