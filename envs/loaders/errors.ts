// The one error every trace loader throws for bad input, so a caller (the CLI, the experiments)
// catches one type and prints one shape of message whichever format failed.

/**
 * A trace file that cannot be read or does not follow its format: `${file}:${line}: ${reason}`.
 * Lines count from 1; line 0 means the file as a whole (missing, unreadable, too large).
 */
export class TraceFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'TraceFormatError';
  }
}
