import { createRequire } from 'node:module';
import type { Logger, DestinationStream } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Paths pino blanks out wherever they appear, as a second line of defence: secrets are never logged on purpose. */
const REDACT = [
  'secret', '*.secret', '*.*.secret', 'password', '*.password', 'masterKey', '*.masterKey',
  'headers["x-signature"]', 'req.headers["x-signature"]', 'req.headers.authorization',
];

// pino is required on the first logger, not imported: most commands never log, and loading it costs every
// command's start-up (npm run bench:cli).
const require = createRequire(import.meta.url);
type Pino = typeof import('pino');
let pinoModule: Pino | undefined;
const loadPino = (): Pino => (pinoModule ??= require('pino') as Pino);

/** JSON logs on stderr (stdout stays free for command results). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const { pino } = loadPino();
  return pino({ level, base: { name: 'guardctl' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination ?? pino.destination(2));
}
