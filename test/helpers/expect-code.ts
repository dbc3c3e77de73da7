/**
 * Asserts that a promise rejects with an AgentwardError of `code`; with `token`, also that no
 * part of the token (its dot-separated segments) appears in the error, its detail or its causes.
 */
import { expect } from 'vitest';
import { AgentwardError, type ErrorCode } from '../../src/errors.ts';

export async function expectCode(promise: Promise<unknown>, code: ErrorCode, token?: string): Promise<AgentwardError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(AgentwardError);
  const error = caught as AgentwardError;
  expect(error.code).toBe(code);
  if (token !== undefined) {
    const parts = token.split('.').filter((p) => p.length > 0);
    for (let e: unknown = error; e instanceof Error; e = e.cause) {
      const text = `${e.message} ${String((e as { detail?: unknown }).detail ?? '')}`;
      for (const part of parts) expect(text).not.toContain(part);
    }
  }
  return error;
}
