/**
 * List filtering (issue 5 item 2): the results of MCP `tools/list`, `prompts/list` and
 * `resources/list` keep only the items the caller could use, decided by the same policy as the
 * calls themselves (each item as the call it stands for, with `input.mcp.listFilter: true`). The
 * result stays a list (never null); `nextCursor` and every other member are kept.
 *
 * Responses come as one JSON document or as Server-Sent Events (MCP Streamable HTTP); in an event
 * stream every event is passed on as it arrives, and only the `data` of an event that answers a
 * list request is rewritten. Anything that is not a JSON-RPC response to a list request passes
 * through untouched.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { AgentwardError } from '../errors.ts';
import type { ListKind } from './inspect.ts';

/**
 * Rewrites a response body on its way back (the forwarder, src/proxy/forward.ts, applies it):
 * given the upstream status and headers, a Transform for the body, or undefined to pass it
 * untouched. May throw an AgentwardError to refuse a response it cannot rewrite (answered 502
 * while nothing was sent).
 */
export type ResponseRewrite = (status: number, headers: IncomingHttpHeaders) => Transform | undefined;

/** Decides whether one list item (its name, or URI for resources) is shown. */
export type ItemFilter = (kind: ListKind, name: string) => boolean;

/**
 * Filters every JSON-RPC response in `message` (one message or a batch) that answers a list
 * request of `lists`. Returns the message, changed in place; items without a string name are
 * dropped (they cannot be decided, so they are not shown).
 */
export function filterListResponses(message: unknown, lists: ReadonlyMap<string | number, ListKind>, allow: ItemFilter): unknown {
  for (const m of Array.isArray(message) ? message : [message]) {
    if (m === null || typeof m !== 'object') continue;
    const { id, result } = m as { id?: unknown; result?: unknown };
    if ((typeof id !== 'string' && typeof id !== 'number') || result === null || typeof result !== 'object') continue;
    const kind = lists.get(id);
    if (!kind) continue;
    const items = (result as Record<string, unknown>)[kind.member];
    if (!Array.isArray(items)) continue;
    (result as Record<string, unknown>)[kind.member] = items.filter((item: unknown) => {
      const name = item !== null && typeof item === 'object' ? (item as Record<string, unknown>)[kind.key] : undefined;
      return typeof name === 'string' && allow(kind, name);
    });
  }
  return message;
}

/**
 * A text/event-stream transform (WHATWG HTML §9.2.5 event stream format): collects the lines of
 * each event up to its blank line, rewrites the `data` of an event whose JSON answers a list
 * request, and passes every other event on byte for byte, each as soon as its blank line arrives.
 */
export class SseListFilter extends Transform {
  private buffer = '';
  /** The lines of the event being read, each with its terminator (CRLF, LF or CR). */
  private lines: [string, string][] = [];
  private readonly lists: ReadonlyMap<string | number, ListKind>;
  private readonly allow: ItemFilter;
  private readonly decoder = new TextDecoder('utf-8');

  constructor(lists: ReadonlyMap<string | number, ListKind>, allow: ItemFilter) {
    super();
    this.lists = lists;
    this.allow = allow;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    this.takeLines(false);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.buffer += this.decoder.decode();
    this.takeLines(true);
    if (this.buffer.length > 0) this.lines.push([this.buffer, '']);
    if (this.lines.length > 0) this.push(this.rewrite(this.lines));
    done();
  }

  private takeLines(atEnd: boolean): void {
    let match: RegExpExecArray | null;
    while ((match = /\r\n|\n|\r/.exec(this.buffer)) !== null) {
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (!atEnd && match[0] === '\r' && match.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      if (line === '') {
        this.push(this.rewrite(this.lines) + match[0]);
        this.lines = [];
      } else {
        this.lines.push([line, match[0]]);
      }
    }
  }

  private rewrite(lines: readonly [string, string][]): string {
    const original = lines.map(([l, t]) => l + t).join('');
    const isData = ([l]: [string, string]) => l === 'data' || l.startsWith('data:');
    const data = lines.filter(isData).map(([l]) => (l === 'data' ? '' : l.slice(l.startsWith('data: ') ? 6 : 5)));
    if (data.length === 0) return original;
    let message: unknown;
    try {
      message = JSON.parse(data.join('\n'));
    } catch {
      return original;
    }
    if (!answersList(message, this.lists)) return original;
    const rewritten = JSON.stringify(filterListResponses(message, this.lists, this.allow));
    // The data lines become one, where the first was; the other fields (event, id, retry, comments) stay.
    const first = lines.findIndex(isData);
    const kept = lines.filter((line, i) => i === first || !isData(line));
    return kept.map(([l, t], i) => (i === kept.indexOf(lines[first]!) ? `data: ${rewritten}${t}` : l + t)).join('');
  }
}

function answersList(message: unknown, lists: ReadonlyMap<string | number, ListKind>): boolean {
  return (Array.isArray(message) ? message : [message]).some((m) => {
    const id = m !== null && typeof m === 'object' ? (m as { id?: unknown }).id : undefined;
    return (typeof id === 'string' || typeof id === 'number') && lists.has(id);
  });
}

/** Largest JSON list response buffered for filtering; a larger one is cut, never passed unfiltered. */
export const MAX_FILTERED_JSON_BYTES = 16 * 1024 * 1024;

/** A whole-document JSON transform: buffers the response (bounded), filters, emits it once. */
export class JsonListFilter extends Transform {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly lists: ReadonlyMap<string | number, ListKind>;
  private readonly allow: ItemFilter;

  constructor(lists: ReadonlyMap<string | number, ListKind>, allow: ItemFilter) {
    super();
    this.lists = lists;
    this.allow = allow;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > MAX_FILTERED_JSON_BYTES) {
      done(new Error(`list response larger than ${MAX_FILTERED_JSON_BYTES} bytes`));
      return;
    }
    this.chunks.push(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    const text = Buffer.concat(this.chunks).toString('utf8');
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      // Not JSON: nothing a client could read as a list either; passed on as received.
      done(null, text);
      return;
    }
    done(null, JSON.stringify(filterListResponses(message, this.lists, this.allow)));
  }
}

/**
 * The forwarder's rewrite for a request that carries MCP list calls: successful JSON and event
 * stream responses are filtered; other statuses pass untouched. A compressed body, or a
 * successful response of another type, cannot be filtered and is refused (fail closed: the
 * request went upstream with `Accept-Encoding: identity`).
 */
export function listResponseRewrite(lists: ReadonlyMap<string | number, ListKind>, allow: ItemFilter): ResponseRewrite {
  return (status, headers) => {
    if (status < 200 || status >= 300 || status === 202 || status === 204) return undefined;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') throw new AgentwardError('ERR_MCP_RESPONSE_UNFILTERABLE', undefined, { cause: new Error(`content-encoding ${encoding}`) });
    const type = headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (type === 'application/json') return new JsonListFilter(lists, allow);
    if (type === 'text/event-stream') return new SseListFilter(lists, allow);
    throw new AgentwardError('ERR_MCP_RESPONSE_UNFILTERABLE', undefined, { cause: new Error(`content-type ${type ?? '(none)'}`) });
  };
}
