/**
 * Method override fields: `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` and the
 * `_method` query parameter ask a framework behind the proxy (Express method-override, Symfony,
 * Rails, Laravel, ASP.NET, ...) to act as if the request had another method. The policy decides on
 * the method of the request line (RFC 9110 §9.1); an upstream that honours an override would act
 * on a method the policy never saw: a `GET` allowed as a read becomes a `DELETE`.
 *
 * `forward.methodOverride` decides what happens, once, before credentials are read:
 *   - `reject` (default): the request is refused, 400 `ERR_METHOD_OVERRIDE` (fail closed);
 *   - `strip`: the fields are removed before the policy and the upstream see the request, and
 *     `input.request.methodOverride` says what was removed;
 *   - `pass`: they are forwarded as sent, and `input.request.methodOverride` carries them so the
 *     policy can decide on them (a relaxation, named at startup).
 * Header names are case-insensitive (Node lower-cases them). An override in a request body (a
 * `_method` form field) is not looked for: see docs/architecture.md, "Threat model, in short".
 */
import { AgentwardError } from '../errors.ts';
import type { MethodOverrideField, MethodOverrideInput } from '../policy/input.ts';

export type MethodOverrideMode = 'reject' | 'strip' | 'pass';

/** Header fields that carry a method override, lower case. */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** The query parameter that carries a method override (Express method-override `getter: '_method'`, Symfony). */
export const METHOD_OVERRIDE_PARAM = '_method';

/**
 * Finds the method override fields of a request and applies `mode`: throws `ERR_METHOD_OVERRIDE`
 * for `reject`; otherwise returns what the policy is told and the target to decide and forward
 * (without `_method` for `strip`). Undefined when the request carries none (the common case: no
 * allocation).
 */
export function screenMethodOverride(headers: Readonly<NodeJS.Dict<string[]>>, target: URL, mode: MethodOverrideMode): { override: MethodOverrideInput; target: URL } | undefined {
  let fields: MethodOverrideField[] | undefined;
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const values = headers[name];
    if (values !== undefined) for (const value of values) (fields ??= []).push({ source: 'header', name, value });
  }
  if (target.search.length > 1 && target.searchParams.has(METHOD_OVERRIDE_PARAM)) {
    for (const value of target.searchParams.getAll(METHOD_OVERRIDE_PARAM)) (fields ??= []).push({ source: 'query', name: METHOD_OVERRIDE_PARAM, value });
  }
  if (fields === undefined) return undefined;
  if (mode === 'reject') throw refusal(fields);
  if (mode === 'pass') return { override: { action: 'forwarded', fields }, target };
  return { override: { action: 'stripped', fields }, target: fields.some((f) => f.source === 'query') ? withoutOverrideParam(target) : target };
}

/** The message names the fields (never their values: caller-controlled) and the setting. */
function refusal(fields: readonly MethodOverrideField[]): AgentwardError {
  const names = [...new Set(fields.map((f) => (f.source === 'header' ? `the ${f.name} header` : `the ${f.name} query parameter`)))];
  return new AgentwardError(
    'ERR_METHOD_OVERRIDE',
    `The request carries ${names.join(' and ')}, which asks the upstream to act as another method than the one sent; this resource refuses method overrides (forward.methodOverride: reject). Send the method itself.`,
  );
}

/**
 * The target without its `_method` parameters. Only those pairs are removed; the others keep their
 * bytes and order, so the policy and the upstream still see the same query (the pairs come from
 * the already serialized `search`, which setting `search` leaves as is).
 */
function withoutOverrideParam(target: URL): URL {
  const kept = target.search
    .slice(1)
    .split('&')
    .filter((pair) => new URLSearchParams(pair).keys().next().value !== METHOD_OVERRIDE_PARAM);
  const out = new URL(target.href);
  out.search = kept.length > 0 ? `?${kept.join('&')}` : '';
  return out;
}
