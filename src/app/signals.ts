/**
 * The signals side of the composition root (docs/signals.md): the revocation list the access-token
 * verifier consults, the registry of open streams the pipeline fills, the SSF transmitters, the
 * push and revocation endpoints, and the one remediation every accepted event and every purge by
 * hand runs:
 *
 *   mark (credentials/revocation.ts) → purge the caches that may hold what it names (verified
 *   JWTs, introspection answers, JWT-SVIDs, the policy's decision memo) → close the open streams
 *   of the tokens it names → one audit record (RemediationRecord) and one log line.
 *
 * The decision memo is cleared whole: its keys are input values, not subjects, and nothing short
 * of reading every key tells which entries came from the subject; the memo refills from the next
 * requests (and a revoked token never reaches the policy anyway).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { RevocationList, type RevocationMark } from '../credentials/revocation.ts';
import type { AccessTokens } from '../credentials/tokens.ts';
import type { WorkloadAuthenticator } from '../credentials/workload.ts';
import { durationMs } from '../duration.ts';
import type { AuditSink } from '../observability/audit.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import { OpenStreams } from '../proxy/streams.ts';
import type { Services } from '../services.ts';
import { revokeEndpoint } from '../signals/admin.ts';
import { Transmitter, type RemediationOutcome, type Signal, type TransmitterSettings } from '../signals/receiver.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Built before the verifiers, which consult the list. */
export interface RevocationParts {
  revocations: RevocationList;
  streams: OpenStreams;
  maxMarks: number;
}

export function buildRevocations(config: Readonly<Config>, services: Services): RevocationParts | undefined {
  const signals = config.signals;
  if (signals === undefined) return undefined;
  const revocations = new RevocationList({
    maxMarks: signals.maxMarks,
    retentionMs: durationMs(signals.maxTokenLifetime),
    now: services.now,
    onForget: (mark) =>
      services.logger.error(
        { mark, maxMarks: signals.maxMarks },
        'revocation list full: the oldest mark was forgotten, and every token issued at or before it is refused until it would have expired (raise signals.maxMarks)',
      ),
  });
  return { revocations, streams: new OpenStreams(), maxMarks: signals.maxMarks };
}

/** What a remediation reaches. */
export interface RemediationTargets {
  tokens: AccessTokens;
  workload: WorkloadAuthenticator | undefined;
  policy: PolicyEngine;
  audit: AuditSink;
}

export interface SignalParts {
  transmitters: Transmitter[];
  /** Handlers by exact path, on the admin and the agent listener. */
  adminRoutes: Map<string, RouteHandler>;
  mainRoutes: Map<string, RouteHandler>;
  status(): Record<string, unknown>;
  /** Starts the transmitters (after the listeners: a verification event is pushed at once). */
  start(): Promise<void>;
  close(): void;
}

export function buildSignals(loaded: LoadedConfig, services: Services, parts: RevocationParts, targets: RemediationTargets): SignalParts {
  const { config } = loaded;
  const signals = config.signals!;
  const remediate = remediation(parts, targets, services);
  const context = { maxSetAgeSeconds: durationMs(signals.maxSetAge) / 1000, replayCacheSize: signals.replayCacheSize, remediate };
  const audience = signals.audience ?? config.resource.id;
  const transmitters = signals.transmitters.map((t, i) => {
    const secret = (name: string) => loaded.secrets.get(`signals.transmitters[${i}].${name}`);
    const d = t.delivery;
    const settings: TransmitterSettings = {
      issuer: t.issuer,
      jwksUri: t.jwksUri,
      audience: t.audience ?? audience,
      algorithms: t.algorithms,
      streamId: t.streamId,
      transmitterAuthorization: secret('transmitterAuthorization'),
      delivery:
        d.method === 'push'
          ? { method: 'push', path: d.path!, listener: d.listener, authorization: secret('delivery.authorization')! }
          : { method: 'poll', endpoint: d.endpoint, intervalMs: durationMs(d.interval), maxEvents: d.maxEvents, timeoutMs: durationMs(d.timeout) },
    };
    return new Transmitter(settings, context, services);
  });
  const adminRoutes = new Map<string, RouteHandler>();
  const mainRoutes = new Map<string, RouteHandler>();
  for (const t of transmitters) {
    const d = t.settings.delivery;
    if (d.method === 'push') (d.listener === 'main' ? mainRoutes : adminRoutes).set(d.path, t.handlePush);
  }
  const revoke = config.admin.revoke;
  if (revoke) adminRoutes.set(revoke.path, revokeEndpoint({ token: loaded.secrets.get('admin.revoke.token')!, remediate, now: services.now, logger: services.logger }));
  return {
    transmitters,
    adminRoutes,
    mainRoutes,
    status: () => ({ ...parts.revocations.status(), maxMarks: parts.maxMarks, openStreams: parts.streams.size, transmitters: transmitters.map((t) => t.status()) }),
    start: async () => {
      await Promise.all(transmitters.map((t) => t.start()));
    },
    close: () => {
      for (const t of transmitters) t.close();
    },
  };
}

/** The one remediation (see the top of this file): each mark on its own, each with its audit record. */
function remediation(parts: RevocationParts, targets: RemediationTargets, services: Services): (signal: Signal) => RemediationOutcome {
  const { revocations, streams } = parts;
  const { logger, now } = services;
  return (signal) => {
    const outcome: RemediationOutcome = { marks: [], purged: {}, streamsClosed: 0 };
    const record = (mark: RevocationMark | null, purged: Record<string, number>, streamsClosed: number) => {
      // Written at once (not with the turn's batch), as a refusal's record is: the transmitter's
      // acknowledgement and the admin's 200 come after it.
      void targets.audit
        .writeNow({
          time: new Date(now()).toISOString(),
          remediation: {
            source: signal.source,
            event: signal.event,
            transmitter: signal.transmitter,
            setId: signal.setId,
            subject: signal.subject,
            mark: mark && { match: { ...mark.match } as Record<string, string>, before: mark.before },
            purged,
            streamsClosed,
          },
        })
        .catch((err: unknown) => logger.error({ err }, 'remediation audit record could not be put on disk'));
      logger.warn({ source: signal.source, event: signal.event, transmitter: signal.transmitter, setId: signal.setId, mark, purged, streamsClosed, notes: signal.notes }, mark ? 'remediation: tokens issued before the event are refused from now on' : 'security event accepted; it marks nothing');
    };
    if (signal.matches.length === 0) {
      record(null, {}, 0);
      return outcome;
    }
    for (const match of signal.matches) {
      const mark = revocations.add(match, signal.before);
      const revoked = RevocationList.matcher([mark]);
      // JWT-SVIDs carry a SPIFFE ID as sub, and no session, client or email.
      const svid = mark.match.sub !== undefined && Object.keys(mark.match).every((k) => k === 'sub' || k === 'iss') ? mark.match.sub : undefined;
      const purged = {
        ...targets.tokens.purge(revoked),
        jwtSvid: svid === undefined ? 0 : (targets.workload?.purgeJwtSvids((id) => id === svid) ?? 0),
        policyMemo: targets.policy.forgetDecisions(),
      };
      const streamsClosed = streams.close(revoked);
      record(mark, purged, streamsClosed);
      outcome.marks.push(mark);
      for (const [cache, n] of Object.entries(purged)) outcome.purged[cache] = (outcome.purged[cache] ?? 0) + n;
      outcome.streamsClosed += streamsClosed;
    }
    return outcome;
  };
}
