/**
 * Strict reading of JSON-RPC 2.0 request bodies (MCP Streamable HTTP, A2A JSON-RPC binding) before
 * a policy decides on them. The body the policy saw is the body the upstream gets, byte for byte,
 * so it must mean one thing to every parser: anything two parsers could read differently is
 * refused rather than interpreted (issue 5 item 1).
 *
 * Refused: bytes that are not UTF-8 (RFC 8259 §8.1), text that is not JSON, a duplicate member
 * name anywhere (RFC 8259 §4 leaves the behaviour open: JSON.parse keeps the last, others the
 * first, so `{"name":"read","name":"delete"}` would be decided as one tool and executed as
 * another), a body that is not an object or a non-empty array of objects (JSON-RPC 2.0 §6), and
 * messages that are not JSON-RPC 2.0.
 */
import { AgentwardError } from '../errors.ts';

export type JsonRpcId = string | number | null;

/** A JSON-RPC request (with `id`) or notification (without), JSON-RPC 2.0 §4. */
export interface JsonRpcCall {
  kind: 'call';
  method: string;
  params: unknown;
  /** undefined for a notification. */
  id: string | number | undefined;
}

/** A JSON-RPC response sent by the client (to a server-initiated request, JSON-RPC 2.0 §5). */
export interface JsonRpcReply {
  kind: 'reply';
  id: JsonRpcId;
}

export type JsonRpcMessage = JsonRpcCall | JsonRpcReply;

export interface JsonRpcBody {
  messages: JsonRpcMessage[];
  /** The body was an array (JSON-RPC 2.0 §6). */
  batch: boolean;
}

/**
 * `ignoreBOM` keeps a leading U+FEFF in the text, so that JSON.parse refuses it: RFC 8259 §8.1
 * forbids sending a BOM and lets parsers either ignore or refuse it, so an upstream may read the
 * forwarded bytes differently from us.
 */
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parses and checks a request body. Throws ERR_RPC_PARSE (-32700) or ERR_RPC_INVALID (-32600). */
export function parseJsonRpcBody(body: Buffer): JsonRpcBody {
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    throw new AgentwardError('ERR_RPC_PARSE', 'The body is not UTF-8 (RFC 8259 section 8.1).');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AgentwardError('ERR_RPC_PARSE');
  }
  const duplicate = findDuplicateMember(text);
  if (duplicate !== undefined) throw new AgentwardError('ERR_RPC_INVALID', `The body names the member ${JSON.stringify(duplicate.slice(0, 64))} twice in one object; send each member once.`);
  if (Array.isArray(value)) {
    if (value.length === 0) throw new AgentwardError('ERR_RPC_INVALID', 'An empty batch is not a JSON-RPC request (JSON-RPC 2.0 section 6).');
    return { messages: value.map(message), batch: true };
  }
  return { messages: [message(value)], batch: false };
}

function message(value: unknown): JsonRpcMessage {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new AgentwardError('ERR_RPC_INVALID', 'Every JSON-RPC message must be a JSON object.');
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') throw new AgentwardError('ERR_RPC_INVALID', 'Every JSON-RPC message must have "jsonrpc": "2.0".');
  const { id } = m;
  const idOk = id === undefined || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
  if ('method' in m) {
    if (typeof m.method !== 'string' || m.method === '') throw new AgentwardError('ERR_RPC_INVALID', 'The JSON-RPC method must be a non-empty string.');
    if (!idOk) throw new AgentwardError('ERR_RPC_INVALID', 'A JSON-RPC request id must be a string or a number.');
    if (m.params !== undefined && (m.params === null || typeof m.params !== 'object')) throw new AgentwardError('ERR_RPC_INVALID', 'JSON-RPC params must be an object or an array.');
    return { kind: 'call', method: m.method, params: m.params, id: id as string | number | undefined };
  }
  // A response the client sends back (it has result or error, never both, and an id).
  if (('result' in m) === ('error' in m) || !(id === null || idOk) || id === undefined) throw new AgentwardError('ERR_RPC_INVALID', 'A JSON-RPC message needs a method (a request) or exactly one of result and error (a response).');
  return { kind: 'reply', id: id as JsonRpcId };
}

/**
 * The first member name that occurs twice in one object, or undefined. Runs over text that
 * JSON.parse has accepted, so it only needs to follow strings and nesting. Names are compared
 * after unescaping (`"a"` and `"\u0061"` are the same member).
 */
export function findDuplicateMember(text: string): string | undefined {
  // One entry per open container: the names seen (objects) or null (arrays).
  const stack: (Set<string> | null)[] = [];
  let expectingName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack.at(-1);
      if (expectingName && top) {
        const raw = text.slice(i, end + 1);
        const name = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.has(name)) return name;
        top.add(name);
        expectingName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectingName = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectingName = stack.at(-1) instanceof Set;
    }
  }
  return undefined;
}

/** Index of the closing quote of the string starting at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i;
  }
  return text.length - 1;
}
