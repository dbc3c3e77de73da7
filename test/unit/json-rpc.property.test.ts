/**
 * Property-based tests of the JSON-RPC body reader (src/rpc/json-rpc.ts) and what is read from it
 * (src/rpc/inspect.ts), issue 13 item 5a. The reference is written here from the specifications
 * alone: UTF-8 that re-encodes to the same bytes, the RFC 8259 §2-7 grammar with no BOM (§8.1) and
 * no member name twice in one object (the reader's rule, issue 5 item 1), then JSON-RPC 2.0 §4,
 * §5, §6. Properties:
 *
 * - any bytes: accepted, or refused with ERR_RPC_PARSE / ERR_RPC_INVALID, never another throw;
 * - generated bodies (valid, with escaped or duplicated names, odd whitespace, a BOM, numbers out
 *   of range, then edited): accepted exactly when the reference accepts, with the same messages;
 * - round trip: the messages of a serialized body are the messages it was built from;
 * - inspection: every accepted body inspects without a throw, an A2A operation is always a string
 *   and a list request is always one of MCP_LISTS (never a member of Object.prototype); the
 *   Mcp-Method / Mcp-Name check refuses only with ERR_MCP_HEADER_MISMATCH.
 *
 * Seed and runs are fixed (test/helpers/property.ts); scripts/property-long-run.sh runs them long.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { AgentwardError } from '../../src/errors.ts';
import { parseJsonRpcBody, type JsonRpcMessage } from '../../src/rpc/json-rpc.ts';
import { MCP_LISTS, checkMcpHeaders, inspectRpc } from '../../src/rpc/inspect.ts';
import { PROTOTYPE_NAMES, nearMiss, outcome, runs } from '../helpers/property.ts';

// ---------------------------------------------------------------- the reference

/**
 * RFC 8259 JSON text, strictly: the value, or undefined where the grammar refuses, or (unless
 * `repeats`) a member name comes twice in one object.
 */
function referenceJson(text: string, repeats = false): { value: unknown } | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const token = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const fail = Symbol('fail');
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const object: Record<string, unknown> = {};
      const names = new Set<string>();
      ws();
      if (text[i] === '}') return i++, object;
      for (;;) {
        ws();
        const raw = token(STRING);
        if (raw === undefined) return fail;
        const name = JSON.parse(raw) as string;
        if (names.has(name) && !repeats) return fail;
        names.add(name);
        ws();
        if (text[i++] !== ':') return fail;
        const member = value();
        if (member === fail) return fail;
        // An own property even for "__proto__", as JSON.parse makes it.
        Object.defineProperty(object, name, { value: member, enumerable: true, writable: true, configurable: true });
        ws();
        const next = text[i++];
        if (next === '}') return object;
        if (next !== ',') return fail;
      }
    }
    if (c === '[') {
      i++;
      const array: unknown[] = [];
      ws();
      if (text[i] === ']') return i++, array;
      for (;;) {
        const element = value();
        if (element === fail) return fail;
        array.push(element);
        ws();
        const next = text[i++];
        if (next === ']') return array;
        if (next !== ',') return fail;
      }
    }
    if (c === '"') {
      const raw = token(STRING);
      return raw === undefined ? fail : JSON.parse(raw);
    }
    for (const [literal, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(literal, i)) return (i += literal.length), v;
    }
    const number = token(NUMBER);
    return number === undefined ? fail : Number(number);
  };
  const result = value();
  ws();
  return result === fail || i !== text.length ? undefined : { value: result };
}

type ReferenceMessage = { kind: 'call'; method: string; params: unknown; id: unknown } | { kind: 'reply'; id: unknown };

/** JSON-RPC 2.0 §4, §5, §6 over the reference's value: the messages, or the code a strict reader refuses with. */
function referenceBody(bytes: Buffer): { messages: ReferenceMessage[]; batch: boolean } | 'ERR_RPC_PARSE' | 'ERR_RPC_INVALID' {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return 'ERR_RPC_PARSE';
  const json = referenceJson(text);
  // Text that is JSON but for a repeated name is a JSON-RPC refusal (-32600), other text a parse error (-32700).
  if (json === undefined) return referenceJson(text, true) === undefined ? 'ERR_RPC_PARSE' : 'ERR_RPC_INVALID';
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  const idOk = (id: unknown) => id === undefined || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
  const one = (v: unknown): ReferenceMessage | undefined => {
    if (!isObject(v) || v.jsonrpc !== '2.0') return undefined;
    if (Object.hasOwn(v, 'method')) {
      if (typeof v.method !== 'string' || v.method === '' || !idOk(v.id)) return undefined;
      if (v.params !== undefined && (v.params === null || typeof v.params !== 'object')) return undefined;
      return { kind: 'call', method: v.method, params: v.params, id: v.id };
    }
    if (Object.hasOwn(v, 'result') === Object.hasOwn(v, 'error') || v.id === undefined || !(v.id === null || idOk(v.id))) return undefined;
    return { kind: 'reply', id: v.id };
  };
  const list = Array.isArray(json.value) ? json.value : [json.value];
  if (Array.isArray(json.value) && list.length === 0) return 'ERR_RPC_INVALID';
  const messages = list.map(one);
  if (messages.some((m) => m === undefined)) return 'ERR_RPC_INVALID';
  return { messages: messages as ReferenceMessage[], batch: Array.isArray(json.value) };
}

// ---------------------------------------------------------------- generated bodies

const METHODS = ['tools/call', 'tools/list', 'prompts/list', 'resources/list', 'resources/read', 'initialize', 'notifications/initialized', 'message/send', 'SendMessage', 'tasks/get', '', ...PROTOTYPE_NAMES] as const;

const idArb = fc.oneof(fc.constant(undefined), fc.constant(null), fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.constant(1e400), fc.constantFrom(...PROTOTYPE_NAMES));

const paramsArb = fc.oneof(
  fc.constant(undefined),
  fc.record({ name: fc.oneof(fc.constantFrom('search', 'delete_repo', ...PROTOTYPE_NAMES), fc.string({ maxLength: 6 })), arguments: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }) }, { requiredKeys: [] }),
  fc.record({ uri: fc.string({ maxLength: 10 }) }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A message object: a call, a reply, or something near one (a member missing or of the wrong type). */
const messageArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    jsonrpc: fc.oneof({ weight: 8, arbitrary: fc.constant('2.0') }, { weight: 1, arbitrary: fc.constantFrom(undefined, '1.0', 2, '2.0 ') }),
    shape: fc.constantFrom('call', 'call', 'call', 'reply-result', 'reply-error', 'both', 'neither'),
    method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
    id: idArb,
    params: paramsArb,
    extra: fc.dictionary(fc.constantFrom('x', 'meta', '__proto__', 'constructor'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
  })
  .map(({ jsonrpc, shape, method, id, params, extra }) => {
    const m: Record<string, unknown> = {};
    const set = (k: string, v: unknown) => v !== undefined && Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
    set('jsonrpc', jsonrpc);
    if (shape === 'call') set('method', method);
    if (shape === 'reply-result' || shape === 'both') set('result', { ok: true });
    if (shape === 'reply-error' || shape === 'both') set('error', { code: -1, message: 'no' });
    set('id', id);
    set('params', shape === 'call' ? params : undefined);
    for (const [k, v] of Object.entries(extra)) if (!Object.hasOwn(m, k)) set(k, v);
    return m;
  });

/** How a value is written out: member names escaped, whitespace, a repeated member, a BOM. */
interface Style {
  escapeNames: boolean;
  space: string;
  repeatMember: boolean;
  bom: boolean;
}

const styleArb: fc.Arbitrary<Style> = fc.record({
  escapeNames: fc.boolean(),
  space: fc.constantFrom('', ' ', '\n\t', '\r\n  ', '\u00a0', '\f'),
  repeatMember: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  bom: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

function write(value: unknown, style: Style): string {
  const s = style.space;
  const name = (k: string) => (style.escapeNames ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k));
  if (Array.isArray(value)) return `[${s}${value.map((v) => write(v, style)).join(`${s},${s}`)}${s}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value).map(([k, v]) => `${name(k)}${s}:${s}${write(v, style)}`);
    if (style.repeatMember && members.length > 0) members.push(members[0]!);
    return `{${s}${members.join(`${s},${s}`)}${s}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return '1e400';
  return JSON.stringify(value) ?? 'null';
}

const bodyValueArb = fc.oneof({ weight: 4, arbitrary: messageArb }, { weight: 2, arbitrary: fc.array(messageArb, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });

const bodyTextArb = fc.tuple(bodyValueArb, styleArb).map(([value, style]) => `${style.bom ? '\ufeff' : ''}${write(value, style)}`);

// ---------------------------------------------------------------- properties

/** The reader's answer in the reference's terms. */
function readerAnswer(bytes: Buffer): ReturnType<typeof referenceBody> {
  const result = outcome(AgentwardError, () => parseJsonRpcBody(bytes));
  if (!result.ok) {
    expect(['ERR_RPC_PARSE', 'ERR_RPC_INVALID']).toContain(result.error.code);
    return result.error.code as 'ERR_RPC_PARSE' | 'ERR_RPC_INVALID';
  }
  return { messages: result.value.messages.map((m: JsonRpcMessage) => (m.kind === 'call' ? { kind: 'call', method: m.method, params: m.params, id: m.id } : m)), batch: result.value.batch };
}

const same = (a: unknown, b: unknown) => expect(JSON.stringify(a)).toBe(JSON.stringify(b));

describe('parseJsonRpcBody', () => {
  test('any bytes: accepted, or refused with ERR_RPC_PARSE or ERR_RPC_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 64 }).map((s) => new TextEncoder().encode(s))), (bytes) => {
        readerAnswer(Buffer.from(bytes));
      }),
      runs(),
    );
  });

  test('generated and edited bodies: accepted exactly when the RFC 8259 + JSON-RPC 2.0 reference accepts, with the same messages', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 3, arbitrary: bodyTextArb }, { weight: 2, arbitrary: nearMiss(bodyTextArb) }), (text) => {
        const bytes = Buffer.from(text, 'utf8');
        same(readerAnswer(bytes), referenceBody(bytes));
      }),
      runs(2),
    );
  });

  test('bytes that are not UTF-8 inside an otherwise valid body are ERR_RPC_PARSE', () => {
    fc.assert(
      fc.property(fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]), fc.nat(), (bad, at) => {
        const text = Buffer.from('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"search"},"id":1}');
        const i = 1 + (at % (text.length - 1));
        const bytes = Buffer.concat([text.subarray(0, i), Buffer.from(bad), text.subarray(i)]);
        expect(referenceBody(bytes)).toBe('ERR_RPC_PARSE');
        expect(readerAnswer(bytes)).toBe('ERR_RPC_PARSE');
      }),
      runs(0.5),
    );
  });

  test('round trip: a serialized body reads back as the messages it was built from', () => {
    const call = fc.record({
      method: fc.string({ minLength: 1, maxLength: 12 }),
      id: fc.option(fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), { nil: undefined }),
      params: fc.option(fc.oneof(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })), fc.array(fc.jsonValue({ maxDepth: 1 }))), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 4 }), fc.boolean(), (calls, batch) => {
        const sent = calls.map((c) => ({ jsonrpc: '2.0', method: c.method, ...(c.params === undefined ? {} : { params: c.params }), ...(c.id === undefined ? {} : { id: c.id }) }));
        const body = parseJsonRpcBody(Buffer.from(JSON.stringify(batch ? sent : sent[0])));
        expect(body.batch).toBe(batch);
        same(
          body.messages,
          (batch ? calls : calls.slice(0, 1)).map((c) => ({ kind: 'call', method: c.method, params: c.params, id: c.id })),
        );
      }),
      runs(),
    );
  });

  test('regression: a UTF-8 byte order mark is refused (RFC 8259 §8.1), not skipped', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"jsonrpc":"2.0","method":"tools/list","id":1}')]);
    expect(outcome(AgentwardError, () => parseJsonRpcBody(body))).toMatchObject({ ok: false, error: { code: 'ERR_RPC_PARSE' } });
  });
});

describe('inspectRpc and checkMcpHeaders', () => {
  const LIST_KINDS = new Set(Object.values(MCP_LISTS));
  const headerValue = fc.oneof(fc.constantFrom(...METHODS), nearMiss(fc.constantFrom('tools/call', 'search', '=?base64?c2VhcmNo?=')), fc.string({ maxLength: 6 }));

  test('every accepted body inspects: operations are strings, list requests are MCP lists, a header mismatch is ERR_MCP_HEADER_MISMATCH', () => {
    fc.assert(
      fc.property(
        bodyTextArb,
        fc.constantFrom('mcp', 'a2a'),
        fc.record({ 'mcp-method': fc.option(fc.array(headerValue, { minLength: 1, maxLength: 2 }), { nil: undefined }), 'mcp-name': fc.option(fc.array(headerValue, { minLength: 1, maxLength: 2 }), { nil: undefined }) }),
        (text, protocol, headers) => {
          const body = outcome(AgentwardError, () => parseJsonRpcBody(Buffer.from(text)));
          if (!body.ok) return;
          const inspection = inspectRpc(protocol, body.value);
          for (const { a2a, mcp } of inspection.calls) {
            if (a2a) expect(typeof a2a.operation).toBe('string');
            if (mcp) expect(mcp.name === null || typeof mcp.name === 'string').toBe(true);
          }
          for (const kind of inspection.lists.values()) expect(LIST_KINDS.has(kind)).toBe(true);
          const checked = outcome(AgentwardError, () => checkMcpHeaders(inspection, headers));
          if (!checked.ok) expect(checked.error.code).toBe('ERR_MCP_HEADER_MISMATCH');
        },
      ),
      runs(),
    );
  });

  test('regression: a method named like a member of Object.prototype is no MCP list and no A2A operation', () => {
    for (const method of PROTOTYPE_NAMES) {
      const body = parseJsonRpcBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method })));
      expect(inspectRpc('mcp', body).lists.size).toBe(0);
      expect(inspectRpc('a2a', body).calls[0]!.a2a!.operation).toBe(method);
    }
  });
});
