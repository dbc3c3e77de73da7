/**
 * Which parts of `input` a compiled policy can read, found in its IR plan (`opa build -t plan`,
 * OPA docs "IR" and v1/ir/ir.go). `opa build -t wasm` plans the policy with the same planner and
 * compiles exactly that plan to WebAssembly (v1/compile/compile.go: compileWasm calls compilePlan),
 * so the plan built from the same files by the same opa describes what the module does.
 *
 * The analysis is an abstract interpretation over the plan's locals, in program order (the
 * planner reuses local numbers from one rule body to the next): at each statement a local may
 * hold "input at path p" for some constant paths p (local 0 at the start, and `DotStmt` with a
 * constant key on such a local); any other value is a function of what was recorded, `data` and
 * constants. Where control may leave a block early (an undefined statement, `BreakStmt`), the
 * state after it joins every state seen inside it, and a loop body (`ScanStmt`) is iterated to a
 * fixpoint. Every use of an input-path local other than a constant-key lookup records that path:
 *   - `DotStmt` with a constant key records whether the child is present (the lookup failing
 *     ends the block) and follows the path;
 *   - a type test (`IsObjectStmt`, `is_string(x)`, `type_name(x)`, ...) records only its type;
 *   - `IsDefinedStmt` / `IsUndefinedStmt` record presence;
 *   - anything else (comparison, builtin argument, scan, assignment to a rule value, insertion
 *     into a collection, a dynamic key, a return) records the whole value there.
 * Function calls carry input paths into the callee's parameters (a context-insensitive fixpoint);
 * a callee's return value is recorded whole where it is returned, so call results carry none.
 *
 * Not memoizable (with the reason): a read of the whole input; `with` replacing part of the
 * input; calls by a dynamic path; any builtin outside PURE_BUILTINS (time, rand, uuid, http,
 * net lookups, and anything this file does not know); any statement or shape it does not know.
 * Those rules keep the analysis sound: when unsure, it reads more or gives up, never less.
 */

/** A step into the input: an object key, or an array index. */
export type PathSegment = string | number;

/** How much of the value at a path a policy may learn: present or not, its JSON type, or all of it. */
export type ReadKind = 'presence' | 'type' | 'value';

export interface InputRead {
  readonly path: readonly PathSegment[];
  readonly kind: ReadKind;
}

/** What the analysis found: the reads that determine every decision, or why there is no such set. */
export type InputReads =
  | { readonly memoizable: true; readonly reads: readonly InputRead[] }
  | { readonly memoizable: false; readonly reason: string };

/**
 * Builtins that are pure functions of their arguments, as the WebAssembly target runs them: the
 * builtins @open-policy-agent/opa-wasm 1.10.0 lists in its capabilities.json (compiled into the
 * module) and those its JavaScript host provides (src/builtins: sprintf, regex.split, json and
 * yaml), without rand.intn. A builtin outside this list (time.now_ns, uuid.rfc4122, http.send,
 * net.lookup_ip_addr, opa.runtime, or one added by a later release) turns memoization off.
 */
export const PURE_BUILTINS: ReadonlySet<string> = new Set([
  'abs', 'all', 'and', 'any', 'array.concat', 'array.slice', 'assign', 'base64.decode', 'base64.encode',
  'base64.is_valid', 'base64url.decode', 'base64url.encode', 'bits.and', 'bits.lsh', 'bits.negate', 'bits.or',
  'bits.rsh', 'bits.xor', 'ceil', 'concat', 'contains', 'count', 'div', 'endswith', 'eq', 'equal', 'floor',
  'format_int', 'glob.match', 'graph.reachable', 'gt', 'gte', 'indexof', 'internal.member_2', 'internal.member_3',
  'intersection', 'is_array', 'is_boolean', 'is_null', 'is_number', 'is_object', 'is_set', 'is_string',
  'json.filter', 'json.is_valid', 'json.marshal', 'json.remove', 'json.unmarshal', 'lower', 'lt', 'lte', 'max',
  'min', 'minus', 'mul', 'neq', 'net.cidr_contains', 'net.cidr_intersects', 'numbers.range', 'object.filter',
  'object.get', 'object.remove', 'object.union', 'or', 'plus', 'product', 're_match',
  'regex.find_all_string_submatch_n', 'regex.is_valid', 'regex.match', 'regex.split', 'rem', 'replace', 'round',
  'set_diff', 'sort', 'split', 'sprintf', 'startswith', 'strings.replace_n', 'substring', 'sum', 'time.diff',
  'to_number', 'trim', 'trim_left', 'trim_prefix', 'trim_right', 'trim_space', 'trim_suffix', 'type_name', 'union',
  'upper', 'walk', 'yaml.is_valid', 'yaml.marshal', 'yaml.unmarshal',
]);

/** Builtins whose result depends only on the JSON type of their one argument. */
const TYPE_BUILTINS: ReadonlySet<string> = new Set(['is_array', 'is_boolean', 'is_null', 'is_number', 'is_object', 'is_set', 'is_string', 'type_name']);

/** Deeper paths than this are refused (a plan never has them; it bounds the fixpoint). */
const MAX_PATH_DEPTH = 32;
const MAX_PASSES = 200;
const RANK: Record<ReadKind, number> = { presence: 0, type: 1, value: 2 };

class NotMemoizable extends Error {}

type Operand = { type: 'local'; value: number } | { type: 'string_index'; value: number } | { type: 'bool'; value: boolean };
interface Stmt {
  type: string;
  stmt: Record<string, unknown>;
}
interface Block {
  stmts: Stmt[];
}
interface PlanFunc {
  name: string;
  params: number[];
  return: number;
  blocks: Block[];
}
/** The paths a local may hold, by their JSON (for set semantics). */
type PathSet = ReadonlyMap<string, readonly PathSegment[]>;
/** A constant Dot key: a string (object member) or a non-negative integer (array index). */
type Key = string | number;
/** What a local may hold at one point: input paths, and the one constant key it surely holds. */
interface Abstract {
  readonly paths: PathSet;
  readonly key: Key | undefined;
}
/** Locals by number; a local not in the map holds no input path and no known constant. */
type State = ReadonlyMap<number, Abstract>;

const NOTHING: Abstract = { paths: new Map(), key: undefined };

/** One function (or the entry plan): its blocks, and what its parameters may hold on entry. */
interface Frame {
  readonly name: string;
  readonly blocks: Block[];
  readonly entry: Map<number, Map<string, readonly PathSegment[]>>;
  readonly returnLocal: number | undefined;
}

/**
 * The input reads of `entrypoint` in a plan (the parsed plan.json of `opa build -t plan`).
 * Never throws: a plan it cannot follow is not memoizable, with the reason.
 */
export function inputReads(plan: unknown, entrypoint: string): InputReads {
  try {
    return { memoizable: true, reads: new PlanAnalysis(plan).run(entrypoint) };
  } catch (err) {
    if (err instanceof NotMemoizable) return { memoizable: false, reason: err.message };
    return { memoizable: false, reason: `the plan could not be analysed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

class PlanAnalysis {
  private readonly strings: string[];
  private readonly planned: Map<string, Block[]>;
  private readonly funcs = new Map<string, PlanFunc>();
  private readonly frames = new Map<string, Frame>();
  private readonly reads = new Map<string, { path: readonly PathSegment[]; kind: ReadKind }>();
  private changed = false;

  constructor(plan: unknown) {
    const p = plan as { static?: { strings?: { value: string }[]; builtin_funcs?: { name: string }[] }; plans?: { plans?: { name: string; blocks: Block[] }[] }; funcs?: { funcs?: PlanFunc[] } };
    if (p === null || typeof p !== 'object' || !Array.isArray(p.plans?.plans)) throw new NotMemoizable('the plan has no plans');
    this.strings = (p.static?.strings ?? []).map((s) => s.value);
    for (const b of p.static?.builtin_funcs ?? []) checkBuiltin(b.name);
    this.planned = new Map(p.plans.plans.map((x) => [x.name, x.blocks]));
    for (const f of p.funcs?.funcs ?? []) this.funcs.set(f.name, f);
  }

  run(entrypoint: string): InputRead[] {
    const blocks = this.planned.get(entrypoint);
    if (!blocks) throw new NotMemoizable(`the plan has no entrypoint ${entrypoint}`);
    this.frame(`plan:${entrypoint}`, blocks, undefined).entry.set(0, new Map([['[]', []]]));
    let passes = 0;
    do {
      this.changed = false;
      for (const frame of [...this.frames.values()]) this.visitFrame(frame);
      if (++passes > MAX_PASSES) throw new NotMemoizable('the analysis did not converge');
    } while (this.changed);
    return this.result();
  }

  private frame(name: string, blocks: Block[], returnLocal: number | undefined): Frame {
    let frame = this.frames.get(name);
    if (!frame) {
      if (!Array.isArray(blocks)) throw new NotMemoizable(`${name}: no blocks`);
      frame = { name, blocks, entry: new Map(), returnLocal };
      this.frames.set(name, frame);
      this.changed = true;
    }
    return frame;
  }

  /** A function's blocks run one after the other, each until its end or an undefined statement. */
  private visitFrame(frame: Frame): void {
    let state: State = new Map([...frame.entry].map(([local, paths]) => [local, { paths, key: undefined }]));
    for (const block of frame.blocks) state = this.visitBlock(frame, block, state);
    if (frame.returnLocal !== undefined) this.use(state, frame.returnLocal, 'value');
  }

  /** The state after a block: every state seen in it, since control may leave it at any statement. */
  private visitBlock(frame: Frame, block: Block | undefined, start: State): State {
    if (!block || !Array.isArray(block.stmts)) throw new NotMemoizable(`${frame.name}: a block without statements`);
    let state = start;
    let seen = start;
    for (const s of block.stmts) {
      state = this.visit(frame, s, state);
      seen = join(seen, state);
    }
    return seen;
  }

  /** One statement: what it records, and the state after it. */
  private visit(frame: Frame, { type, stmt: s }: Stmt, state: State): State {
    switch (type) {
      case 'DotStmt': return this.dot(state, s);
      case 'CallStmt': return this.call(state, s);
      case 'AssignVarStmt': return assign(state, s.target, this.abstract(state, s.source));
      case 'BlockStmt':
        for (const b of (s.blocks as Block[] | undefined) ?? []) state = this.visitBlock(frame, b, state);
        return state;
      case 'ScanStmt': return this.scan(frame, state, s);
      case 'NotStmt': return this.visitBlock(frame, s.block as Block, state);
      case 'WithStmt':
        if (this.abstract(state, s.local).paths.size > 0) throw new NotMemoizable(`${frame.name}: \`with\` replaces part of the input`);
        this.use(state, s.value, 'value');
        return this.visitBlock(frame, s.block as Block, state);
      case 'IsArrayStmt': case 'IsObjectStmt': case 'IsSetStmt': this.use(state, s.source, 'type'); return state;
      case 'IsDefinedStmt': case 'IsUndefinedStmt': this.use(state, s.source, 'presence'); return state;
      case 'ReturnLocalStmt': case 'ResultSetAddStmt': this.use(state, s.source ?? s.value, 'value'); return state;
      case 'EqualStmt': case 'NotEqualStmt': this.useAll(state, [s.a, s.b]); return state;
      case 'ArrayAppendStmt': this.useAll(state, [s.value, s.array]); return state;
      case 'ObjectInsertStmt': case 'ObjectInsertOnceStmt': this.useAll(state, [s.key, s.value, s.object]); return state;
      case 'SetAddStmt': this.useAll(state, [s.value, s.set]); return state;
      case 'LenStmt': this.use(state, s.source, 'value'); return assign(state, s.target, NOTHING);
      case 'ObjectMergeStmt': this.useAll(state, [s.a, s.b]); return assign(state, s.target, NOTHING);
      case 'AssignVarOnceStmt': this.useAll(state, [s.source, s.target]); return assign(state, s.target, NOTHING);
      case 'MakeNumberRefStmt': return assign(state, s.target, { paths: NOTHING.paths, key: indexKey(this.strings[(s.index ?? s.Index) as number]) });
      case 'MakeNumberIntStmt': return assign(state, s.target, { paths: NOTHING.paths, key: indexKey(String(s.value)) });
      case 'AssignIntStmt': case 'ResetLocalStmt': case 'MakeNullStmt': case 'MakeArrayStmt': case 'MakeObjectStmt': case 'MakeSetStmt':
        return assign(state, s.target, NOTHING);
      case 'CallDynamicStmt': throw new NotMemoizable(`${frame.name}: a function is called by a dynamic path`);
      case 'BreakStmt': case 'NopStmt': return state;
      default: throw new NotMemoizable(`${frame.name}: unknown plan statement ${String(type)}`);
    }
  }

  /** `target = source[key]`: a constant key on an input path follows it (and its presence decides the block). */
  private dot(state: State, s: Record<string, unknown>): State {
    const source = this.abstract(state, s.source);
    const key = this.abstract(state, s.key).key;
    if (key === undefined) {
      // A key computed at run time may pick any member: the whole value is read, and the key too.
      this.useAll(state, [s.source, s.key]);
      return assign(state, s.target, NOTHING);
    }
    const paths = new Map<string, readonly PathSegment[]>();
    for (const p of source.paths.values()) {
      const path = [...p, key];
      if (path.length > MAX_PATH_DEPTH) throw new NotMemoizable(`an input path deeper than ${MAX_PATH_DEPTH} steps`);
      this.record(path, 'presence');
      paths.set(JSON.stringify(path), path);
    }
    return assign(state, s.target, { paths, key: undefined });
  }

  /** A builtin reads its arguments (a type test only their type); a function gets them as parameters. */
  private call(state: State, s: Record<string, unknown>): State {
    const name = s.func as string;
    const args = (s.args as Operand[] | undefined) ?? [];
    const callee = this.funcs.get(name);
    if (!callee) {
      checkBuiltin(name);
      if (TYPE_BUILTINS.has(name) && args.length === 1) this.use(state, args[0], 'type');
      else this.useAll(state, args);
      return assign(state, s.result, NOTHING);
    }
    if (!Array.isArray(callee.params) || callee.params.length !== args.length) throw new NotMemoizable(`${name}: called with ${args.length} arguments for ${String(callee.params?.length)} parameters`);
    const frame = this.frame(name, callee.blocks, callee.return);
    args.forEach((arg, i) => this.bind(frame, callee.params[i]!, this.abstract(state, arg).paths));
    // What a function returns is recorded whole where it returns it (visitFrame).
    return assign(state, s.result, NOTHING);
  }

  /** The loop body runs zero or more times: iterate it until the state at its start is stable. */
  private scan(frame: Frame, state: State, s: Record<string, unknown>): State {
    this.use(state, s.source, 'value');
    let head = state;
    for (let i = 0; i < MAX_PASSES; i++) {
      const start = assign(assign(head, s.key, NOTHING), s.value, NOTHING);
      const next = join(head, this.visitBlock(frame, s.block as Block, start));
      if (sameState(next, head)) return next;
      head = next;
    }
    throw new NotMemoizable(`${frame.name}: a loop did not converge`);
  }

  private bind(frame: Frame, param: number, paths: PathSet): void {
    let set = frame.entry.get(param);
    if (!set) frame.entry.set(param, (set = new Map()));
    for (const [k, p] of paths) {
      if (set.has(k)) continue;
      set.set(k, p);
      this.changed = true;
    }
  }

  private abstract(state: State, operand: unknown): Abstract {
    const o = operand as Operand | number | undefined;
    if (typeof o === 'number') return state.get(o) ?? NOTHING;
    if (!o || typeof o !== 'object') throw new NotMemoizable('a statement without its operand');
    if (o.type === 'local') return state.get(o.value) ?? NOTHING;
    if (o.type === 'string_index') return { paths: NOTHING.paths, key: this.string(o.value) };
    if (o.type === 'bool') return NOTHING;
    throw new NotMemoizable(`an operand of unknown type ${String((o as { type: unknown }).type)}`);
  }

  private use(state: State, operand: unknown, kind: ReadKind): void {
    for (const p of this.abstract(state, operand).paths.values()) this.record(p, kind);
  }

  private useAll(state: State, operands: unknown[]): void {
    for (const o of operands) this.use(state, o, 'value');
  }

  private record(path: readonly PathSegment[], kind: ReadKind): void {
    if (path.length === 0 && kind === 'value') throw new NotMemoizable('the policy reads the whole input (input itself, or through a key computed at run time)');
    const k = JSON.stringify(path);
    const seen = this.reads.get(k);
    if (seen && RANK[seen.kind] >= RANK[kind]) return;
    this.reads.set(k, { path, kind });
    this.changed = true;
  }

  private string(index: number): string {
    const s = this.strings[index];
    if (typeof s !== 'string') throw new NotMemoizable(`string constant ${index} is missing`);
    return s;
  }

  /** The reads, without those a whole-value read of an ancestor implies, in path order. */
  private result(): InputRead[] {
    const all = [...this.reads.values()];
    const wholes = all.filter((r) => r.kind === 'value');
    const implied = (r: { path: readonly PathSegment[] }) => wholes.some((w) => w.path.length < r.path.length && w.path.every((seg, i) => seg === r.path[i]));
    return all.filter((r) => !implied(r)).sort((a, b) => comparePaths(a.path, b.path));
  }
}

function checkBuiltin(name: string): void {
  if (!PURE_BUILTINS.has(name)) throw new NotMemoizable(`the policy calls ${name}, which is not known to be a pure function of its arguments`);
}

/** The state with `target` now holding `value` (a strong update: the statement surely ran). */
function assign(state: State, target: unknown, value: Abstract): State {
  if (typeof target !== 'number') throw new NotMemoizable('a statement without its target local');
  if (value.paths.size === 0 && value.key === undefined && !state.has(target)) return state;
  const next = new Map(state);
  if (value.paths.size === 0 && value.key === undefined) next.delete(target);
  else next.set(target, value);
  return next;
}

/** Either state: paths are merged, and a constant key kept only where both agree on it. */
function join(a: State, b: State): State {
  if (a === b) return a;
  const out = new Map<number, Abstract>();
  for (const local of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(local) ?? NOTHING;
    const y = b.get(local) ?? NOTHING;
    const paths = x.paths.size === 0 ? y.paths : y.paths.size === 0 ? x.paths : new Map([...x.paths, ...y.paths]);
    const key = x.key !== undefined && x.key === y.key ? x.key : undefined;
    if (paths.size > 0 || key !== undefined) out.set(local, { paths, key });
  }
  return out;
}

function sameState(a: State, b: State): boolean {
  if (a.size !== b.size) return false;
  for (const [local, x] of a) {
    const y = b.get(local);
    if (!y || x.key !== y.key || x.paths.size !== y.paths.size || [...x.paths.keys()].some((k) => !y.paths.has(k))) return false;
  }
  return true;
}

/** Numbers before strings, then by value; a prefix before its extensions. */
export function comparePaths(a: readonly PathSegment[], b: readonly PathSegment[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** A number constant as an array index: canonical, non-negative and exact, else no constant key. */
function indexKey(text: string | undefined): number | undefined {
  return text !== undefined && /^(0|[1-9][0-9]{0,14})$/.test(text) ? Number(text) : undefined;
}
