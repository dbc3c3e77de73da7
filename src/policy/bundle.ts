/**
 * Reads an OPA bundle (a gzipped tar with `/policy.wasm`, `/data.json` and `/.manifest`) in
 * memory. Bundles are small and read at load time only, so a bounded in-memory ustar reader is
 * simpler and safer than extracting to disk: no paths are ever written, and sizes are capped.
 */
import { gunzipSync } from 'node:zlib';

export interface PolicyBundle {
  wasm: Buffer;
  data: Record<string, unknown>;
  /** `.manifest` revision, or undefined when the bundle has none. */
  revision: string | undefined;
}

const MAX_BUNDLE_BYTES = 256 << 20;

export class BundleError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BundleError';
  }
}

/** Parses a .tar.gz OPA bundle. Throws BundleError when it is not one. */
export function readBundle(gz: Buffer): PolicyBundle {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: MAX_BUNDLE_BYTES });
  } catch (err) {
    throw new BundleError('the bundle is not a gzip file (or is larger than 256 MiB unpacked)', err);
  }
  const files = readTar(tar);
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new BundleError('the bundle has no /policy.wasm; build it with `opa build -t wasm`');
  let data: Record<string, unknown> = {};
  const dataFile = files.get('data.json');
  if (dataFile) data = parseJsonObject(dataFile, 'data.json');
  let revision: string | undefined;
  const manifest = files.get('.manifest');
  if (manifest) {
    const m = parseJsonObject(manifest, '.manifest');
    if (typeof m.revision === 'string' && m.revision !== '') revision = m.revision;
  }
  return { wasm, data, revision };
}

function parseJsonObject(buf: Buffer, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new BundleError(`${name} in the bundle is not JSON`, err);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BundleError(`${name} in the bundle is not a JSON object`);
  return value as Record<string, unknown>;
}

/** ustar/pax reader: regular files only, names normalized without a leading "/" or "./". */
function readTar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseOctal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156]!);
    const prefix = cString(header.subarray(345, 500));
    const name = paxPath ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
    const start = offset + 512;
    if (start + size > tar.length) throw new BundleError('the bundle tar is truncated');
    const body = tar.subarray(start, start + size);
    paxPath = undefined;
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
    } else if (type === '0' || type === '\0') {
      files.set(name.replace(/^\.?\/+/, ''), Buffer.from(body));
    }
    offset = start + Math.ceil(size / 512) * 512;
  }
  return files;
}

function parseOctal(field: Buffer): number {
  const text = cString(field).trim();
  if (!/^[0-7]*$/.test(text)) throw new BundleError('the bundle tar has a corrupt header');
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}
