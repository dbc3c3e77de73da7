/**
 * What reading a bundle (./bundle.ts) and checking its signature (./bundle-signature.ts) share:
 * the name of the signatures file and the error both throw. It sits below both so that neither
 * imports the other for it (bundle.ts calls the verifier; the verifier needs only these names).
 */

/** The signatures file of a signed bundle (OPA docs, management-bundles "Signature Format"), at the bundle root. */
export const SIGNATURES_FILE = '.signatures.json';

/** A bundle that cannot be used: unreadable, malformed, or not matching its signature. */
export class BundleError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BundleError';
  }
}
