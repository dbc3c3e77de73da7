/**
 * One evaluation of an OPA WebAssembly policy from input already encoded as JSON text, through
 * the module's single-call entry `opa_eval` (OPA docs, "WebAssembly" → "Evaluation", ABI 1.2).
 *
 * opa-wasm's LoadedPolicy.evaluate does the same call, but stringifies the input itself, encodes
 * it into a fresh array, copies that into the module's memory, and scans the result byte by byte
 * in JavaScript. Here the caller hands the JSON text (so a list filter encodes the shared part of
 * its inputs once), it is encoded straight into the module's memory at the heap start that
 * LoadedPolicy keeps after the data (`dataHeapPtr`), and the result is found with a native scan.
 * Every evaluation starts its heap right after the input, as opa-wasm does, so nothing
 * accumulates between calls. Modules older than ABI 1.2 go through LoadedPolicy.evaluate.
 */
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';

const PAGE = 65536;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface OpaExports {
  opa_eval(reserved: number, entrypoint: number, data: number, input: number, inputLength: number, heap: number, format: number): number;
}

export class WasmEvaluator {
  private readonly policy: LoadedPolicy;
  private readonly entrypointName: string;
  private readonly entrypoint: number;
  private readonly exports: OpaExports | undefined;
  private bytes: Uint8Array;

  /** `entrypoint` must be one of the policy's (checked by the engine before). */
  constructor(policy: LoadedPolicy, entrypoint: string) {
    this.policy = policy;
    this.entrypointName = entrypoint;
    this.entrypoint = (policy.entrypoints as Record<string, number>)[entrypoint]!;
    // LoadedPolicy keeps the Instance itself here (it unwraps an instantiated source).
    const exports = (policy.wasmInstance as unknown as { exports: Partial<OpaExports> }).exports;
    this.exports = Number(policy.minorVersion) >= 2 && typeof exports.opa_eval === 'function' ? (exports as OpaExports) : undefined;
    this.bytes = new Uint8Array(policy.mem.buffer);
  }

  /** The raw result set (`[{"result": ...}]`) for one input's JSON text. Throws what the module throws. */
  evaluate(json: string): unknown {
    if (!this.exports) {
      const bytes = encoder.encode(json);
      return this.policy.evaluate(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), this.entrypointName);
    }
    const at = this.policy.dataHeapPtr as number;
    let { read, written } = encoder.encodeInto(json, this.memory().subarray(at));
    if (read < json.length) {
      // Grow by what is missing (bounded by the memory's maximum: past it, grow throws).
      const missing = at + Buffer.byteLength(json, 'utf8') - this.memory().length;
      if (missing > 0) this.policy.mem.grow(Math.ceil(missing / PAGE));
      ({ read, written } = encoder.encodeInto(json, this.memory().subarray(at)));
      if (read < json.length) throw new RangeError('the input does not fit in the policy memory');
    }
    const result = this.exports.opa_eval(0, this.entrypoint, this.policy.dataAddr, at, written, at + written, 0);
    const memory = this.memory();
    const end = memory.indexOf(0, result);
    if (end < 0) throw new Error('the policy result is not terminated');
    return JSON.parse(decoder.decode(memory.subarray(result, end)));
  }

  /** A view of the module memory, made again after it grew (growing detaches the old buffer). */
  private memory(): Uint8Array {
    if (this.bytes.buffer !== this.policy.mem.buffer) this.bytes = new Uint8Array(this.policy.mem.buffer);
    return this.bytes;
  }
}
