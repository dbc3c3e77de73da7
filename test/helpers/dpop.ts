/**
 * DPoP proofs for tests (RFC 9449 §4.2), signed with a real key, every field overridable so each
 * negative case DP-Nxx (docs/negative-cases.md) can be built.
 */
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { hash, randomUUID } from 'node:crypto';

export interface ProofKey {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint, the value of the token's cnf.jkt. */
  jkt: string;
}

export async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export function ath(accessToken: string): string {
  return hash('sha256', accessToken, 'base64url');
}

export interface ProofOptions {
  htm: string;
  htu: string;
  accessToken?: string;
  /** Claims to set or (with undefined) remove. */
  claims?: Record<string, unknown>;
  /** Header parameters to set or (with undefined) remove. */
  header?: Record<string, unknown>;
}

export async function proof(key: ProofKey, options: ProofOptions): Promise<string> {
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    htm: options.htm,
    htu: options.htu,
    iat: Math.floor(Date.now() / 1000),
    ...(options.accessToken !== undefined ? { ath: ath(options.accessToken) } : {}),
    ...options.claims,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  const header: Record<string, unknown> = { alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...options.header };
  for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
  return new SignJWT(claims).setProtectedHeader(header as never).sign(key.privateKey);
}
