/**
 * What reading a bundle (./bundle.ts) and checking its signature (./bundle-signature.ts) share:
 * the name of the signatures file and the error both throw. It sits below both so that neither
 * imports the other for it (bundle.ts calls the verifier; the verifier needs only these names).
 */

/** The signatures file of a signed bundle (OPA docs, management-bundles "Signature Format"), at the bundle root. */
export const SIGNATURES_FILE = '.signatures.json';

/**
 * The IR plan `agentward policy build` puts beside the module: `{ format, entrypoint, wasmSha256,
 * plan }`, where `plan` is `opa build -t plan`'s /plan.json of the same files. It is bound to the
 * module by the module's SHA-256, so a bundle whose policy.wasm was swapped afterwards is not
 * memoized on a plan of other code. Not `plan.json`, which OPA reads as a plan bundle's.
 */
export const PLAN_FILE = 'agentward.plan.json';

/** A bundle that cannot be used: unreadable, malformed, or not matching its signature. */
export class BundleError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BundleError';
  }
}
