import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Paths pino blanks out wherever they appear, as a second line of defence: secrets are never logged on purpose. */
const REDACT = [
  'secret', '*.secret', '*.*.secret', 'password', '*.password', 'masterKey', '*.masterKey',
  'headers["x-signature"]', 'req.headers["x-signature"]', 'req.headers.authorization',
];

/** JSON logs on stderr (stdout stays free for command results). */
export function createLogger(level: string, destination: DestinationStream = pino.destination(2)): Logger {
  return pino({ level, base: { name: 'guardctl' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}
