/**
 * The process logger: one pino instance writing JSON to stderr (stdout carries the audit
 * stream), with credential headers redacted by paths compiled once at startup (conventions §13).
 * Request code logs through a child carrying the request id.
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';
import { CREDENTIAL_HEADERS } from '../identity/credential-headers.ts';

export type { Logger };

const REDACT_PATHS = CREDENTIAL_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`]);

export function createLogger(level: LevelWithSilent, destination: pino.DestinationStream = pino.destination({ dest: 2, sync: false })): Logger {
  return pino(
    {
      level,
      base: { service: 'agentward' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
