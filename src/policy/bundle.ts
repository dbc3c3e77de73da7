/**
 * Reads an OPA bundle (a gzipped tar with `/policy.wasm`, `/data.json` and `/.manifest`; OPA
 * docs, management-bundles "Bundle File Format") in memory. Bundles are read at load time only,
 * so a bounded in-memory ustar reader is simpler and safer than extracting to disk: no paths are
 * ever written, and sizes are capped.
 *
 * `openBundle` is the one entry for bundles from outside (a file or a bundle server): it applies
 * OPA's signature rules (management-bundles "Signature Verification") before anything is parsed.
 * `readBundle` reads a bundle we built ourselves (`opa build` of a policy folder) or a tool's.
 */
import { gunzipSync } from 'node:zlib';
import type { BundleVerifier } from './bundle-signature.ts';
import { gzipSync } from 'node:zlib';
import { BundleError, PLAN_FILE, SIGNATURES_FILE } from './bundle-format.ts';

export interface PolicyBundle {
  wasm: Buffer;
  data: Record<string, unknown>;
  /** `.manifest` revision, or undefined when the bundle has none. */
  revision: string | undefined;
  /** The embedded plan file (PLAN_FILE), when `agentward policy build` made the bundle. */
  plan: Buffer | undefined;
}

const MAX_BUNDLE_BYTES = 256 << 20;

/**
 * Opens a bundle from outside. With a verifier, its signature and every file's hash are checked
 * first; without one, a signed bundle is refused, as OPA does (a signature nobody checks would
 * give a false sense of safety). Throws BundleError.
 */
export async function openBundle(gz: Buffer, verifier: BundleVerifier | undefined): Promise<PolicyBundle> {
  const files = unpackBundle(gz);
  if (verifier) await verifier.verify(files);
  else if (files.has(SIGNATURES_FILE)) {
    throw new BundleError(`the bundle is signed (/${SIGNATURES_FILE}) but policy.verification is not configured; add policy.verification with the signer's public key`);
  }
  return bundleFromFiles(files);
}

/** Parses a .tar.gz OPA bundle without looking at signatures (see openBundle). Throws BundleError. */
export function readBundle(gz: Buffer): PolicyBundle {
  return bundleFromFiles(unpackBundle(gz));
}

/** The regular files of a .tar.gz bundle by name (no leading "/" or "./"). Throws BundleError. */
export function unpackBundle(gz: Buffer): Map<string, Buffer> {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: MAX_BUNDLE_BYTES });
  } catch (err) {
    throw new BundleError('the bundle is not a gzip file (or is larger than 256 MiB unpacked)', err);
  }
  return readTar(tar);
}

function bundleFromFiles(files: ReadonlyMap<string, Buffer>): PolicyBundle {
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new BundleError('the bundle has no /policy.wasm; build it with `opa build -t wasm`');
  if (files.has('patch.json')) throw new BundleError('delta bundles (/patch.json) are not supported; serve a snapshot bundle built with `opa build -t wasm`');
  // OPA loads every data.json at the path of its folder (management-bundles "Bundle File Format");
  // `opa build` writes one /data.json, but a bundle packed by other tools may have several.
  let data: Record<string, unknown> = {};
  for (const [name, content] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    const base = name.slice(name.lastIndexOf('/') + 1);
    if (base === 'data.yaml' || base === 'data.yml') throw new BundleError(`${name}: YAML data files are not supported; convert it to data.json`);
    if (base !== 'data.json') continue;
    const dirs = name.split('/').slice(0, -1);
    data = mergeData(data, dirs.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), parseJsonObject(content, name)), name);
  }
  let revision: string | undefined;
  const manifest = files.get('.manifest');
  if (manifest) {
    const m = parseJsonObject(manifest, '.manifest');
    if (m.revision !== undefined && typeof m.revision !== 'string') throw new BundleError('the .manifest revision is not a string');
    if (typeof m.revision === 'string' && m.revision !== '') revision = m.revision;
  }
  return { wasm, data, revision, plan: files.get(PLAN_FILE) };
}

/** Deep merge of two data trees; two values for one path is an error, as in OPA. */
function mergeData(a: Record<string, unknown>, b: Record<string, unknown>, name: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else if (isObject(existing) && isObject(value)) out[key] = mergeData(existing, value, name);
    else throw new BundleError(`${name} sets data that another data file in the bundle sets too`);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseJsonObject(buf: Buffer, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new BundleError(`${name} in the bundle is not JSON`, err);
  }
  if (!isObject(value)) throw new BundleError(`${name} in the bundle is not a JSON object`);
  return value;
}

/**
 * A .tar.gz bundle of `files`, in the order given, named "/name" as opa writes them. The bytes
 * depend on the files only (mode 0600, owner 0, time 0, no gzip time), so a bundle built twice
 * from the same files is the same. Names must fit the 100 bytes of a ustar name.
 */
export function packBundle(files: Iterable<readonly [string, Buffer]>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, body] of files) {
    if (Buffer.byteLength(`/${name}`) > 100) throw new BundleError(`/${name}: the name is longer than a tar header holds`);
    const header = Buffer.alloc(512);
    header.write(`/${name}`, 0, 100, 'utf8');
    header.write('0000600\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/**
 * ustar/pax/GNU reader: regular files only, names normalized without a leading "/" or "./". A
 * name seen twice is refused: which copy counts would otherwise depend on the reader (and a
 * signature check must see exactly the files that are loaded).
 */
function readTar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseOctal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156]!);
    const prefix = cString(header.subarray(345, 500));
    const name = longName ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
    const start = offset + 512;
    if (start + size > tar.length) throw new BundleError('the bundle tar is truncated');
    const body = tar.subarray(start, start + size);
    longName = undefined;
    if (type === 'x') {
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
    } else if (type === 'L') {
      longName = cString(body);
    } else if (type === '0' || type === '\0') {
      const normalized = name.replace(/^(?:\.?\/+)+/, '');
      if (files.has(normalized)) throw new BundleError(`the bundle has two entries named /${normalized}`);
      files.set(normalized, Buffer.from(body));
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
