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

/**
 * A worker's logger (docs/operations.md "Workers"): its number on every line, and each line one
 * write(2) of its own. The workers share the primary's stderr, and a write to a pipe is whole only
 * up to PIPE_BUF (4096 bytes on Linux, POSIX write(2)): an asynchronous destination gathers lines
 * into longer writes, which two workers could tear into each other.
 */
export function createWorkerLogger(level: LevelWithSilent, worker: number): Logger {
  return createLogger(level, pino.destination({ dest: 2, sync: true })).child({ worker });
}
