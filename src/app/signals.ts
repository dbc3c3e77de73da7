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
 * With `state.backend: redis` (docs/operations.md "Shared state and replicas") the marks of each
 * remediation are then published and kept in Redis (`replication`): every other replica applies
 * them the same way (mark, purge, close its own streams) with an audit record of its own marked
 * `replicated`, and a replica that starts or reconnects later loads those still in force.
 *
 * The decision memo is cleared whole: its keys are input values, not subjects, and nothing short
 * of reading every key tells which entries came from the subject; the memo refills from the next
 * requests (and a revoked token never reaches the policy anyway).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { RevocationList, type RevocationMark, type RevocationMatch } from '../credentials/revocation.ts';
import type { AccessTokens } from '../credentials/tokens.ts';
import type { WorkloadAuthenticator } from '../credentials/workload.ts';
import { durationMs } from '../duration.ts';
import type { AuditSink } from '../observability/audit.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import { OpenStreams } from '../proxy/streams.ts';
import type { Services } from '../services.ts';
import type { RedisState } from '../state/redis.ts';
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

export function buildSignals(loaded: LoadedConfig, services: Services, parts: RevocationParts, targets: RemediationTargets, redis?: RedisState): SignalParts {
  const { config } = loaded;
  const signals = config.signals!;
  const shared = redis && replication(redis, durationMs(signals.maxTokenLifetime), services.logger);
  const built = remediation(parts, targets, services, shared?.replicate);
  shared?.attach(built);
  const { remediate } = built;
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

/** What one mark did here: entries purged per cache, open streams closed. */
interface Applied {
  purged: Record<string, number>;
  streamsClosed: number;
}

/**
 * The one remediation (see the top of this file): each mark on its own, each with its audit
 * record. With shared state, the marks then go to every other replica (`replicate`).
 */
function remediation(parts: RevocationParts, targets: RemediationTargets, services: Services, replicate: ((signal: Signal, marks: RevocationMark[]) => void) | undefined): Remediation {
  const { revocations, streams } = parts;
  const { logger, now } = services;
  const record = (signal: Signal, mark: RevocationMark | null, applied: Applied, replicated: boolean) => {
    const { purged, streamsClosed } = applied;
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
          ...(replicated ? { replicated: true as const } : {}),
        },
      })
      .catch((err: unknown) => logger.error({ err }, 'remediation audit record could not be put on disk'));
    const message = replicated
      ? 'remediation replicated from another replica: tokens issued before the event are refused here too'
      : mark
        ? 'remediation: tokens issued before the event are refused from now on'
        : 'security event accepted; it marks nothing';
    logger.warn({ source: signal.source, event: signal.event, transmitter: signal.transmitter, setId: signal.setId, mark, purged, streamsClosed, notes: signal.notes, ...(replicated ? { replicated } : {}) }, message);
  };
  const apply = (mark: RevocationMark): Applied => {
    const revoked = RevocationList.matcher([mark]);
    // JWT-SVIDs carry a SPIFFE ID as sub, and no session, client or email.
    const svid = mark.match.sub !== undefined && Object.keys(mark.match).every((k) => k === 'sub' || k === 'iss') ? mark.match.sub : undefined;
    const purged = {
      ...targets.tokens.purge(revoked),
      jwtSvid: svid === undefined ? 0 : (targets.workload?.purgeJwtSvids((id) => id === svid) ?? 0),
      policyMemo: targets.policy.forgetDecisions(),
    };
    return { purged, streamsClosed: streams.close(revoked) };
  };
  const remediate = (signal: Signal): RemediationOutcome => {
    const outcome: RemediationOutcome = { marks: [], purged: {}, streamsClosed: 0 };
    if (signal.matches.length === 0) {
      record(signal, null, { purged: {}, streamsClosed: 0 }, false);
      return outcome;
    }
    for (const match of signal.matches) {
      const mark = revocations.add(match, signal.before);
      const applied = apply(mark);
      record(signal, mark, applied, false);
      outcome.marks.push(mark);
      for (const [cache, n] of Object.entries(applied.purged)) outcome.purged[cache] = (outcome.purged[cache] ?? 0) + n;
      outcome.streamsClosed += applied.streamsClosed;
    }
    replicate?.(signal, outcome.marks);
    return outcome;
  };
  /** A mark another replica made: applied (mark, purge, close streams) and recorded, unless already held. */
  const applyReplicated = (signal: Signal, match: RevocationMatch, before: number): void => {
    if (revocations.holds(match, before)) return;
    const mark = revocations.add(match, before);
    record(signal, mark, apply(mark), true);
  };
  return { remediate, applyReplicated };
}

interface Remediation {
  remediate: (signal: Signal) => RemediationOutcome;
  applyReplicated: (signal: Signal, match: RevocationMatch, before: number) => void;
}

/** A replicated remediation as stored and published: the signal as received, and its marks. */
interface ReplicatedMarks {
  signal: Pick<Signal, 'source' | 'event' | 'transmitter' | 'setId' | 'subject'>;
  marks: { match: RevocationMatch; before: number }[];
}

/**
 * Revocation marks shared by every replica (`state.backend: redis`, docs/operations.md "Shared
 * state"): each remediation's marks are published (pub/sub) and kept in Redis until they expire
 * (`signals.maxTokenLifetime` after the event), so every replica applies them at once, and one
 * that starts, or reconnects after missing some, loads them. A mark made while Redis is
 * unreachable is applied here at once and published when the connection is back.
 */
function replication(redis: RedisState, retentionMs: number, logger: Services['logger']): { replicate: (signal: Signal, marks: RevocationMark[]) => void; attach: (remediation: Remediation) => void } {
  let target: Remediation | undefined;
  const pending: { body: string; expiresAt: number }[] = [];
  const receive = (body: string): void => {
    const doc = parseReplicated(body);
    if (!doc) {
      logger.error('shared state: an unreadable revocation message was ignored');
      return;
    }
    const signal: Signal = { ...doc.signal, matches: [], notes: [], before: 0 };
    for (const { match, before } of doc.marks) target?.applyReplicated(signal, match, before);
  };
  const log = redis.sharedLog('revocations', receive);
  const publish = (item: { body: string; expiresAt: number }): Promise<void> =>
    log.publish(item.body, item.expiresAt).catch((err: unknown) => {
      pending.push(item);
      logger.error({ err: (err as Error).message }, 'revocation marks could not be shared (Redis unreachable): applied here, published to the other replicas when Redis is back');
    });
  redis.onReady(async () => {
    for (const item of pending.splice(0)) await publish(item);
    for (const body of await log.load()) receive(body);
  });
  return {
    attach: (remediation) => {
      target = remediation;
    },
    replicate: (signal, marks) => {
      if (marks.length === 0) return;
      const doc: ReplicatedMarks = {
        signal: { source: signal.source, event: signal.event, transmitter: signal.transmitter, setId: signal.setId, subject: signal.subject },
        marks: marks.map((m) => ({ match: { ...m.match }, before: m.before })),
      };
      const expiresAt = Math.max(...marks.map((m) => m.before)) * 1000 + retentionMs;
      void publish({ body: JSON.stringify(doc), expiresAt });
    },
  };
}

/** A stored or published message, checked before use (it comes from Redis, trusted but shared). */
function parseReplicated(body: string): ReplicatedMarks | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  const d = doc as Partial<ReplicatedMarks>;
  if (typeof d !== 'object' || d === null || typeof d.signal !== 'object' || d.signal === null || !Array.isArray(d.marks)) return undefined;
  const { source, event, transmitter, setId, subject } = d.signal;
  if (!['ssf-push', 'ssf-poll', 'admin'].includes(source as string) || typeof event !== 'string' || typeof subject !== 'object' || subject === null) return undefined;
  const marks = d.marks.filter(
    (m): m is ReplicatedMarks['marks'][number] =>
      typeof m === 'object' && m !== null && typeof m.before === 'number' && Number.isFinite(m.before) && typeof m.match === 'object' && m.match !== null && Object.values(m.match).every((v) => typeof v === 'string'),
  );
  return { signal: { source, event, transmitter: typeof transmitter === 'string' ? transmitter : null, setId: typeof setId === 'string' ? setId : null, subject }, marks };
}
