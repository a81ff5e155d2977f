// What a run tells the person watching: a progress bar per study on stderr (cli-progress, drawn
// only on a terminal) and structured logs (pino, JSON lines) on stderr too, routed through the
// bar so a log line does not tear it. stdout stays for the result (and the --json line).
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { pino, type Logger } from 'pino';

export type { Logger };

export interface Progress {
  /** Starts a bar for one study with `total` steps. */
  start(label: string, total: number): void;
  /** Advances the current bar by `n` steps, showing `detail` (the entry being run). */
  tick(n: number, detail: string): void;
  /** Finishes the current bar. */
  done(): void;
  stop(): void;
}

export interface Reporter {
  log: Logger;
  progress: Progress;
}

/** A logger and bar that write nothing: tests and library callers. */
export function silentReporter(): Reporter {
  const progress: Progress = { start() {}, tick() {}, done() {}, stop() {} };
  return { log: pino({ level: 'silent' }), progress };
}

/** The bar (when stderr is a terminal) and the logger of a command-line run. */
export function terminalReporter(level = process.env['KNOBOS_LOG_LEVEL'] ?? 'info'): Reporter {
  const multi = new MultiBar(
    {
      stream: process.stderr,
      format: ' {study} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted} | {detail}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  let bar: SingleBar | undefined;
  let study = '';
  let value = 0;
  let total = 1;
  /** Without a terminal, a log line each tenth of a study stands in for the bar. */
  let nextTenth = 1;
  // Bars only on a terminal; a log or a pipe gets the JSON log lines alone.
  const tty = process.stderr.isTTY === true;
  // While a bar is drawn, log lines go through it so it redraws below them.
  const sink = {
    write(line: string): void {
      if (bar) multi.log(line);
      else process.stderr.write(line);
    },
  };
  const log = pino({ name: 'knobos-exp', level }, sink);
  const progress: Progress = {
    start(label, steps) {
      progress.done();
      value = 0;
      nextTenth = 1;
      total = Math.max(1, steps);
      study = label;
      if (tty) bar = multi.create(total, 0, { study, detail: '' });
    },
    tick(n, detail) {
      value += n;
      if (bar) bar.update(value, { study, detail });
      else if (value >= (nextTenth * total) / 10) {
        log.info({ study, done: value, total, detail }, 'progress');
        nextTenth = Math.floor((value * 10) / total) + 1;
      }
    },
    done() {
      if (bar) bar.update(bar.getTotal(), { study, detail: 'done' });
      bar = undefined;
    },
    stop() {
      progress.done();
      multi.stop();
    },
  };
  return { log, progress };
}
