// Structured logs (pino) to stderr, so stdout stays for results and `--json`.
import { pino, destination, type Logger } from 'pino';

export type { Logger };

export function createLogger(
  name: string,
  level = process.env['KNOBOS_LOG_LEVEL'] ?? 'info',
): Logger {
  return pino({ name, level }, destination({ fd: 2, sync: false }));
}
