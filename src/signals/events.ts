/**
 * The security events agentward acts on, and what each does (docs/signals.md). Every one of them
 * marks the subject: tokens issued at or before the event are refused, caches holding them are
 * purged, and their open streams are closed.
 *
 * CAEP 1.0 §3: session-revoked, credential-change, token-claims-change (the claims in tokens
 * minted before are stale), assurance-level-change (only a decrease: tokens minted before an
 * increase carry a lower level, which the policy already judged). RISC 1.0 §2: account-disabled,
 * account-purged, credential-compromise, sessions-revoked. SSF 1.0 §8.1.4 verification events
 * are answered to the stream (state recorded); stream-updated is logged. Anything else is
 * acknowledged and logged, never an error: a transmitter may send
 * event types this receiver never asked for, and refusing them would only make it retry.
 */
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';

export const EVENTS = {
  sessionRevoked: `${CAEP}session-revoked`,
  credentialChange: `${CAEP}credential-change`,
  tokenClaimsChange: `${CAEP}token-claims-change`,
  assuranceLevelChange: `${CAEP}assurance-level-change`,
  accountDisabled: `${RISC}account-disabled`,
  accountPurged: `${RISC}account-purged`,
  credentialCompromise: `${RISC}credential-compromise`,
  sessionsRevoked: `${RISC}sessions-revoked`,
  verification: `${SSF}verification`,
  streamUpdated: `${SSF}stream-updated`,
} as const;

const REMEDIATING: ReadonlySet<string> = new Set([
  EVENTS.sessionRevoked,
  EVENTS.credentialChange,
  EVENTS.tokenClaimsChange,
  EVENTS.assuranceLevelChange,
  EVENTS.accountDisabled,
  EVENTS.accountPurged,
  EVENTS.credentialCompromise,
  EVENTS.sessionsRevoked,
]);

/** What one event asks of the receiver. */
export type EventAction =
  | { kind: 'remediate' }
  /** Known, but this occurrence marks nothing (an assurance level that went up). */
  | { kind: 'note'; why: string }
  | { kind: 'verification'; state: string | undefined }
  | { kind: 'stream-updated'; status: string | undefined }
  | { kind: 'unknown' };

export function actionOf(type: string, payload: Record<string, unknown>): EventAction {
  if (type === EVENTS.verification) return { kind: 'verification', state: typeof payload.state === 'string' ? payload.state : undefined };
  if (type === EVENTS.streamUpdated) return { kind: 'stream-updated', status: typeof payload.status === 'string' ? payload.status : undefined };
  if (!REMEDIATING.has(type)) return { kind: 'unknown' };
  // CAEP 1.0 §3.4: change_direction is optional; without it the change is taken as a decrease (fail closed).
  if (type === EVENTS.assuranceLevelChange && payload.change_direction === 'increase') return { kind: 'note', why: 'the assurance level went up: tokens issued before stay valid' };
  return { kind: 'remediate' };
}

/**
 * The event's time, epoch seconds: CAEP's `event_timestamp` (CAEP 1.0 §2), else the SET's `iat`;
 * never later than now, so a transmitter's clock cannot revoke tokens not yet minted.
 */
export function eventTime(payload: Record<string, unknown>, iat: number, nowSeconds: number): number {
  const stamp = payload.event_timestamp;
  const time = typeof stamp === 'number' && Number.isFinite(stamp) ? stamp : iat;
  return Math.floor(Math.min(time, nowSeconds));
}
