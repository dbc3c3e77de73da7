/**
 * Reading the parts of a compact JWS before (or after) its signature is checked (RFC 7515 §7.1):
 * a segment is base64url of a UTF-8 JSON object, nothing else. Every credential verifier reads its
 * header and claims through these, each with its own error code, so all refuse the same inputs.
 */
import { AgentwardError, type ErrorCode } from '../errors.ts';

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * JSON text that must be an object. `label` names the part in the client-safe detail, e.g.
 * "The Txn-Token header"; it never holds the text itself.
 */
export function parseJsonObject(text: string, code: ErrorCode, label: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AgentwardError(code, `${label} is not base64url-encoded JSON.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new AgentwardError(code, `${label} is not a JSON object.`);
  return value as Record<string, unknown>;
}

/** One base64url segment of a compact JWS, decoded as a JSON object. */
export function decodeJsonSegment(segment: string, code: ErrorCode, label: string): Record<string, unknown> {
  if (!BASE64URL.test(segment)) throw new AgentwardError(code, `${label} is not base64url-encoded JSON.`);
  return parseJsonObject(Buffer.from(segment, 'base64url').toString('utf8'), code, label);
}

/** RFC 7515 §4.1.9: `typ` is a media type; compare case-insensitively, `application/` optional. */
export function normalizeTyp(typ: unknown): string | undefined {
  if (typeof typ !== 'string') return undefined;
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/** Freezes a verified result and everything in it, so a cached result cannot be changed by a caller. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
