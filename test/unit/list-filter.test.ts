import { describe, expect, test } from 'vitest';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { filterListResponses, JsonListFilter, listResponseRewrite, SseListFilter } from '../../src/rpc/list-filter.ts';
import { MCP_LISTS } from '../../src/rpc/inspect.ts';
import { AgentwardError } from '../../src/errors.ts';

const lists = new Map([[1, MCP_LISTS['tools/list']!]]);
const allow = (_kind: unknown, name: string) => name.startsWith('ok');
const listAnswer = (id: number) => ({ jsonrpc: '2.0', id, result: { tools: [{ name: 'ok-a' }, { name: 'no-b' }, { name: 42 }, { name: 'ok-c' }], nextCursor: 'n' } });

async function through(transform: NodeJS.ReadWriteStream, chunks: string[]): Promise<string> {
  return text(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(transform as never));
}

describe('filterListResponses', () => {
  test('keeps allowed items, drops unnamed ones, keeps the other members; other ids untouched', () => {
    expect(filterListResponses(listAnswer(1), lists, allow)).toEqual({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'ok-a' }, { name: 'ok-c' }], nextCursor: 'n' } });
    expect(filterListResponses(listAnswer(2), lists, allow)).toEqual(listAnswer(2));
    expect(filterListResponses([listAnswer(2), listAnswer(1)], lists, allow)).toMatchObject([{ result: { tools: { length: 4 } } }, { result: { tools: [{ name: 'ok-a' }, { name: 'ok-c' }] } }]);
    expect(filterListResponses({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'no' }] } }, lists, allow)).toEqual({ jsonrpc: '2.0', id: 1, result: { tools: [] } });
  });
});

describe('SseListFilter', () => {
  test('rewrites the event that answers the list; other events pass byte for byte, split anywhere', async () => {
    const progress = 'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\r\n\r\n';
    const answer = `: comment\nid: 7\ndata: ${JSON.stringify(listAnswer(1))}\n\n`;
    const stream = progress + answer;
    for (const size of [1, 3, 17, stream.length]) {
      const chunks: string[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      const out = await through(new SseListFilter(lists, allow), chunks);
      expect(out.startsWith(progress)).toBe(true);
      expect(out.slice(progress.length)).toBe(`: comment\nid: 7\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'ok-a' }, { name: 'ok-c' }], nextCursor: 'n' } })}\n\n`);
    }
  });

  test('multi-line data is joined before parsing; non-JSON data passes', async () => {
    const json = JSON.stringify(listAnswer(1), null, 1).split('\n');
    const out = await through(new SseListFilter(lists, allow), [`${json.map((l) => `data: ${l}`).join('\n')}\n\ndata: not json\n\n`]);
    const [first, second] = out.split('\n\n');
    expect(JSON.parse(first!.slice(6))).toMatchObject({ result: { tools: [{ name: 'ok-a' }, { name: 'ok-c' }] } });
    expect(second).toBe('data: not json');
  });
});

describe('JsonListFilter and the rewrite choice', () => {
  test('a JSON answer is filtered whole', async () => {
    expect(JSON.parse(await through(new JsonListFilter(lists, allow), [JSON.stringify(listAnswer(1))]))).toMatchObject({ result: { tools: [{ name: 'ok-a' }, { name: 'ok-c' }] } });
  });

  test('errors pass; compressed or unknown bodies are refused (fail closed)', () => {
    const rewrite = listResponseRewrite(lists, allow);
    expect(rewrite(500, { 'content-type': 'application/json' })).toBeUndefined();
    expect(rewrite(200, { 'content-type': 'application/json; charset=utf-8' })).toBeInstanceOf(JsonListFilter);
    expect(rewrite(200, { 'content-type': 'text/event-stream' })).toBeInstanceOf(SseListFilter);
    expect(() => rewrite(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })).toThrow(AgentwardError);
    expect(() => rewrite(200, { 'content-type': 'text/html' })).toThrow(/cannot be filtered/);
  });
});
