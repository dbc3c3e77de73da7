/**
 * Memoized decisions (issue 12): a policy that calls only pure builtins decides as a function of
 * the input values it reads (src/policy/input-reads.ts), of `data` and of its code. One memo
 * belongs to one loaded policy with its data (src/policy/engine.ts builds a new one with every
 * load), so a reload or a data change starts empty.
 *
 * The key is what the policy can learn of the input, path by path, from the input's JSON view
 * (what JSON.stringify hands the engine, and so what the WebAssembly parses): for a `value` read
 * the JSON text there (`~` when absent), for a `type` read its JSON type, for `presence` 0 or 1.
 * Parts are joined with "\n", which JSON.stringify never writes outside a string (it escapes it
 * inside one), so two different inputs never share a key unless they agree on every read. A
 * member lookup follows OPA's rules (v1 wasm/src/value.c opa_value_get): a string key on an
 * object, an integer index on an array, anything else is absent. Input that is not plain JSON
 * data (a class instance, a toJSON method) is not memoized: it is evaluated every time.
 */
import { LRUCache } from 'lru-cache';
import { deepFreeze } from '../jose/segments.ts';
import type { Decision } from './decision.ts';
import type { InputRead, PathSegment, ReadKind } from './input-reads.ts';

export interface MemoOptions {
  /** Most decisions kept (least recently used go first). Default 5,000. */
  maxEntries?: number;
  /**
   * Most characters of keys kept, counting 256 more per entry for its decision: bounds the memory
   * whatever the inputs (long paths make long keys). Default 2 Mi.
   */
  maxChars?: number;
  /** Longest key kept, in characters; an input with a longer key is evaluated every time. Default 2,048. */
  maxKeyLength?: number;
}

/** What one entry costs besides its key, in key characters (a decision and the cache's own slots). */
const ENTRY_OVERHEAD = 256;
/** Distinct keys remembered as missed once before the memory of them starts again. */
const DOORKEEPER = 1024;
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_SCOPES: string[] = Object.freeze([]) as unknown as string[];

/** A read path as a tree, so that shared prefixes are walked once; children in path order. */
interface Node {
  readonly segment: PathSegment;
  readonly kind: ReadKind | undefined;
  readonly children: Node[];
}

/** The walk left plain JSON data: this input is not memoized. */
const BAIL = Symbol('bail');
/** Absent in the JSON view (no such member, index or value). */
const ABSENT = Symbol('absent');
type View = unknown;

/** Keys for inputs that differ from one base input only at one top-level field. */
export interface PreparedKeys {
  /** The key for the base input with `field` set to `value`; undefined when it cannot be memoized. */
  key(value: unknown): string | undefined;
}

/** Decisions by the input values a policy reads; bounded, least recently used first out. */
export class DecisionMemo {
  private readonly roots: Node[];
  private readonly cache: LRUCache<string, Decision>;
  private readonly maxKeyLength: number;
  /** Keys that missed once, lately (the doorkeeper of TinyLFU, Einziger et al. 2017, in its simplest form). */
  private readonly seen = new Set<string>();
  hits = 0;
  misses = 0;

  constructor(reads: readonly InputRead[], options: MemoOptions = {}) {
    this.roots = tree(reads);
    this.maxKeyLength = options.maxKeyLength ?? 2048;
    this.cache = new LRUCache({ max: options.maxEntries ?? 5000, maxSize: options.maxChars ?? 2 * 1024 * 1024, sizeCalculation: (_value, key) => key.length + ENTRY_OVERHEAD });
  }

  /** The key of an input, or undefined when this input cannot be memoized. */
  key(input: unknown): string | undefined {
    let key = '';
    for (const node of this.roots) {
      const part = emit(node, step(input, node.segment));
      if (part === undefined) return undefined;
      key += part;
    }
    return key.length <= this.maxKeyLength ? key : undefined;
  }

  /**
   * Keys for `base` with `field` replaced, the parts from the rest of `base` computed once. Reads
   * are in path order, so those under `field` form one run between the others: the key is the
   * same string key() gives for the whole input.
   */
  prepare(base: unknown, field: string): PreparedKeys | undefined {
    let before = '';
    let after = '';
    let own: Node | undefined;
    for (const node of this.roots) {
      if (node.segment === field) {
        own = node;
        continue;
      }
      const part = emit(node, step(base, node.segment));
      if (part === undefined) return undefined;
      if (own) after += part;
      else before += part;
    }
    const max = this.maxKeyLength;
    return {
      key(value: unknown): string | undefined {
        const mid = own ? emit(own, memberView(value)) : '';
        if (mid === undefined) return undefined;
        const key = before + mid + after;
        return key.length <= max ? key : undefined;
      },
    };
  }

  get(key: string): Decision | undefined {
    const hit = this.cache.get(key);
    if (hit) this.hits++;
    else this.misses++;
    return hit;
  }

  /**
   * Keeps a decision the second time its key misses (within the last DOORKEEPER distinct misses):
   * inputs seen once, such as a path with a fresh id in it, then cost a set entry, not a cache
   * entry and its eviction. A kept decision is frozen, since every later hit shares it.
   */
  set(key: string, decision: Decision): Decision {
    if (!this.seen.has(key)) {
      if (this.seen.size >= DOORKEEPER) this.seen.clear();
      this.seen.add(key);
      return decision;
    }
    this.seen.delete(key);
    const frozen = freezeDecision(decision);
    this.cache.set(key, frozen);
    return frozen;
  }

  /** Forgets every decision (and the doorkeeper); returns how many decisions were held. */
  clear(): number {
    const size = this.cache.size;
    this.cache.clear();
    this.seen.clear();
    return size;
  }

  get size(): number {
    return this.cache.size;
  }
}

function freezeDecision(d: Decision): Decision {
  // Most decisions have neither: share one frozen empty object and array.
  d.headers = Object.keys(d.headers).length === 0 ? NO_HEADERS : Object.freeze(d.headers);
  d.requiredScopes = d.requiredScopes.length === 0 ? NO_SCOPES : (Object.freeze(d.requiredScopes) as string[]);
  if (d.stepUp) Object.freeze(d.stepUp);
  if (d.scopes) Object.freeze(d.scopes);
  if (d.context) deepFreeze(d.context);
  return Object.freeze(d);
}

function tree(reads: readonly InputRead[]): Node[] {
  const roots: Node[] = [];
  for (const read of reads) {
    let level = roots;
    read.path.forEach((segment, i) => {
      const last = i === read.path.length - 1;
      let node = level.find((n) => n.segment === segment);
      if (!node) {
        node = { segment, kind: last ? read.kind : undefined, children: [] };
        level.push(node);
      } else if (last) {
        (node as { kind: ReadKind | undefined }).kind = read.kind;
      }
      level = node.children;
    });
  }
  return roots;
}

/** The parts of a subtree, each followed by "\n"; undefined when the input is not plain data. */
function emit(node: Node, view: View): string | undefined {
  if (view === BAIL) return undefined;
  let out = '';
  if (node.kind !== undefined) {
    const part = encode(view, node.kind);
    if (part === undefined) return undefined;
    out = part + '\n';
  }
  for (const child of node.children) {
    const part = emit(child, step(view, child.segment));
    if (part === undefined) return undefined;
    out += part;
  }
  return out;
}

function encode(view: View, kind: ReadKind): string | undefined {
  if (kind === 'presence') return view === ABSENT ? '0' : '1';
  if (kind === 'type') return typeLetter(view);
  if (view === ABSENT) return '~';
  try {
    // The same text the whole input's JSON.stringify writes for this value.
    return JSON.stringify(view);
  } catch {
    return undefined;
  }
}

/** The JSON type: u(ndefined), n(ull), b(oolean), d (number), s(tring), a(rray), o(bject). */
function typeLetter(view: View): string | undefined {
  if (view === ABSENT) return 'u';
  if (view === null) return 'n';
  switch (typeof view) {
    case 'boolean': return 'b';
    // JSON.stringify writes NaN and the infinities as null.
    case 'number': return Number.isFinite(view) ? 'd' : 'n';
    case 'string': return 's';
    case 'object': return plainKind(view as object) ?? undefined;
    default: return undefined;
  }
}

/** 'a' for an array, 'o' for a plain object, undefined for anything JSON.stringify would treat otherwise. */
function plainKind(v: object): 'a' | 'o' | undefined {
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return undefined;
  if (Array.isArray(v)) return 'a';
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null ? 'o' : undefined;
}

/** One lookup in the JSON view, as opa_value_get does it on the parsed input. */
function step(view: View, segment: PathSegment): View {
  if (view === ABSENT || view === BAIL || view === null || typeof view !== 'object') return view === BAIL ? BAIL : ABSENT;
  const kind = plainKind(view);
  if (kind === undefined) return BAIL;
  if (kind === 'a') {
    const arr = view as unknown[];
    if (typeof segment !== 'number' || segment >= arr.length) return ABSENT;
    const item = arr[segment];
    // JSON.stringify writes these array elements as null.
    return item === undefined || typeof item === 'function' || typeof item === 'symbol' ? null : checked(item);
  }
  if (typeof segment !== 'string' || !Object.prototype.propertyIsEnumerable.call(view, segment)) return ABSENT;
  return memberView((view as Record<string, unknown>)[segment]);
}

/** An object member's JSON view: members JSON.stringify leaves out are absent. */
function memberView(value: unknown): View {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol' ? ABSENT : checked(value);
}

/** Values JSON cannot carry as they are (a BigInt throws in JSON.stringify) are not memoized. */
function checked(value: unknown): View {
  return typeof value === 'bigint' ? BAIL : value;
}
