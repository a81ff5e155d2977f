// Ctrl-C handling shared by the long-running commands (start, serve).

/**
 * Signals within this long of the first are the same Ctrl-C: a terminal signals the whole
 * process group, and `npm start` passes the signal on to this process too, so one Ctrl-C comes
 * twice. Before, the second copy exited at once, skipping the stop (the embedded Redis and the
 * pid file were left behind).
 */
const SAME_SIGNAL_MS = 1_000;

/** Calls `first` on the first signal, `again` on one that is not a copy of an earlier one. */
export function signals(first: () => void, again: () => void): () => void {
  let at: number | undefined;
  return () => {
    const now = Date.now();
    if (at === undefined) {
      at = now;
      first();
    } else if (now - at >= SAME_SIGNAL_MS) again();
  };
}
