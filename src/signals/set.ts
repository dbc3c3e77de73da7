/**
 * Security Event Tokens (RFC 8417) from one SSF transmitter, verified through the one compact-JWS
 * verifier (src/jose/verify.ts) with this profile: `typ` secevent+jwt (RFC 8417 §2.3, and SSF 1.0's
 * SET profile), the transmitter's algorithms and key set, `iss` exactly the transmitter, `aud` this
 * receiver, then `jti`, `iat` within `maxSetAge` and not ahead, `exp` only when present (RFC 8417
 * §2.2 does not require it), exactly one event (SSF 1.0's SET profile), and the subject (`sub_id`, SSF 1.0; the event's own `subject` member of earlier CAEP/RISC drafts is read when `sub_id` is
 * absent). A `jti` is accepted once (RFC 8417 §2.2), remembered in the one bounded replay memory.
 *
 * Each refusal has its code; `ssfError` gives the RFC 8935 §2.3 `err` value a push answer or a
 * poll's `setErrs` (RFC 8936 §2.4) carries.
 */
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { explicitTyp, notNumericDate, verifyCompactJws, type JwsFailures, type JwsProfile, type KeySource } from '../jose/verify.ts';
import { ReplayCache } from '../credentials/replay-cache.ts';

/** RFC 8935 §2.3 / RFC 8936 §2.4 error codes (IANA "Security Event Token Error Codes"). */
export type SsfError = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied';

const SSF_ERRORS: Partial<Record<ErrorCode, SsfError>> = {
  ERR_SET_ALGORITHM: 'invalid_key',
  ERR_SET_KEY_UNKNOWN: 'invalid_key',
  ERR_SET_SIGNATURE: 'invalid_key',
  ERR_SET_ISSUER: 'invalid_issuer',
  ERR_SET_AUDIENCE: 'invalid_audience',
  ERR_SET_UNAUTHORIZED: 'authentication_failed',
};

/** The `err` value for a refused SET; everything not about keys, issuer or audience is invalid_request. */
export function ssfError(code: ErrorCode): SsfError {
  return SSF_ERRORS[code] ?? 'invalid_request';
}

/** A SET whose signature, claims and freshness hold; not yet recorded against replay. */
export interface VerifiedSet {
  jti: string;
  iat: number;
  /** The event type URI and its payload (exactly one, SSF 1.0). */
  type: string;
  payload: Record<string, unknown>;
  /** `sub_id`, or the event's `subject` member (earlier drafts); undefined when it has neither. */
  subject: unknown;
  /**
   * Records the `jti`; throws ERR_SET_REPLAYED when a concurrent delivery of the same SET got
   * there first. Call it synchronously just before acting on the SET.
   */
  commit(): void;
}

export interface SetVerifierOptions {
  issuer: string;
  audience: string;
  algorithms: readonly string[];
  keys: KeySource;
  maxAgeSeconds: number;
  clockSkewSeconds: number;
  /** SET ids remembered at most. */
  replayCacheSize: number;
  now: () => number;
}

const FAILURES: JwsFailures = {
  malformed: { code: 'ERR_SET_MALFORMED', detail: 'The SET must be a compact JWS with three parts (RFC 8417 section 2).' },
  encrypted: { code: 'ERR_SET_MALFORMED', detail: 'Encrypted SETs are not accepted.' },
  algorithm: 'ERR_SET_ALGORITHM',
  keyUnknown: 'ERR_SET_KEY_UNKNOWN',
  signature: 'ERR_SET_SIGNATURE',
  unverifiable: 'ERR_SET_MALFORMED',
};

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

export class SetVerifier {
  private readonly options: SetVerifierOptions;
  private readonly profile: JwsProfile<undefined>;
  private readonly replays: ReplayCache;

  constructor(options: SetVerifierOptions) {
    this.options = options;
    this.replays = new ReplayCache({ max: options.replayCacheSize, ttlMs: (options.maxAgeSeconds + options.clockSkewSeconds) * 1000, now: options.now });
    this.profile = {
      noun: 'The SET',
      form: 'signed',
      claimsFirst: true,
      typ: explicitTyp({ accepted: ['secevent+jwt'], wrong: { code: 'ERR_SET_TYPE', detail: 'The SET must have typ secevent+jwt (RFC 8417 section 2.3).' } }),
      algorithms: options.algorithms,
      keys: options.keys,
      failures: FAILURES,
      // Before the signature: a SET of another transmitter or for another receiver is refused as
      // such, without costing a signature check (as RFC 9068 §4 orders it for access tokens).
      route: (jws) => {
        const claims = jws.unverifiedClaims();
        if (claims.iss !== options.issuer) throw new AgentwardError('ERR_SET_ISSUER', 'The SET iss is not this transmitter (compared exactly).');
        const aud = claims.aud;
        const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
        if (!audiences.includes(options.audience)) throw new AgentwardError('ERR_SET_AUDIENCE', 'The SET aud does not name this receiver.');
        return {};
      },
      time: {
        skew: options.clockSkewSeconds,
        now: options.now,
        invalid: (name) => notNumericDate('ERR_SET_CLAIMS', name),
        exp: { expired: { code: 'ERR_SET_TIME', detail: 'The SET has expired.' } },
        iat: { future: { code: 'ERR_SET_TIME', detail: 'The SET was issued in the future (iat).' } },
      },
    };
  }

  /** Verifies one SET; throws AgentwardError (ERR_SET_*, or the key set's ERR_KEYS_UNAVAILABLE). */
  async verify(token: string): Promise<VerifiedSet> {
    const { claims, iat } = await verifyCompactJws(token, this.profile, undefined);
    const { jti, events } = claims;
    if (typeof jti !== 'string' || jti === '') throw new AgentwardError('ERR_SET_CLAIMS', 'The SET has no jti (RFC 8417 section 2.2).');
    if (iat === undefined) throw new AgentwardError('ERR_SET_CLAIMS', 'The SET has no iat (RFC 8417 section 2.2).');
    const now = this.options.now() / 1000;
    if (iat < now - this.options.maxAgeSeconds - this.options.clockSkewSeconds) throw new AgentwardError('ERR_SET_TIME', 'The SET is older than signals.maxSetAge.');
    if (!isObject(events)) throw new AgentwardError('ERR_SET_CLAIMS', 'The SET has no events object (RFC 8417 section 2.2).');
    const types = Object.keys(events);
    if (types.length !== 1) throw new AgentwardError('ERR_SET_CLAIMS', 'The SET must carry exactly one event (SSF 1.0).');
    const type = types[0]!;
    const payload = events[type];
    if (!isObject(payload)) throw new AgentwardError('ERR_SET_CLAIMS', 'The event payload must be a JSON object (RFC 8417 section 2.2).');
    const key = `${this.options.issuer}\0${jti}`;
    // RFC 8417 §2.2: jti is unique per SET; one already seen is a replay (or a retry of one we took).
    if (this.replays.has(key) || this.replays.forgotten(iat)) throw new AgentwardError('ERR_SET_REPLAYED', 'This SET (jti) was already received.');
    return {
      jti,
      iat,
      type,
      payload,
      subject: claims.sub_id ?? payload.subject,
      commit: () => {
        if (this.replays.has(key)) throw new AgentwardError('ERR_SET_REPLAYED', 'This SET (jti) was already received.');
        this.replays.add(key, iat);
      },
    };
  }

  get remembered(): number {
    return this.replays.size;
  }
}
