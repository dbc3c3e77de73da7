import { describe, expect, test } from 'vitest';
import { findDuplicateMember, parseJsonRpcBody } from '../../src/rpc/json-rpc.ts';
import { checkMcpHeaders, inspectRpc } from '../../src/rpc/inspect.ts';
import { AgentwardError } from '../../src/errors.ts';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as AgentwardError).code;
  }
  return undefined;
};

describe('parseJsonRpcBody', () => {
  test('requests, notifications, client responses and batches', () => {
    expect(parseJsonRpcBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}'))).toEqual({ batch: false, messages: [{ kind: 'call', method: 'ping', params: undefined, id: 1 }] });
    const batch = parseJsonRpcBody(Buffer.from('[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":"r","result":{}}]'));
    expect(batch).toEqual({ batch: true, messages: [{ kind: 'call', method: 'n', params: undefined, id: undefined }, { kind: 'reply', id: 'r' }] });
  });

  test.each([
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'ERR_RPC_PARSE'],
    ['not JSON', Buffer.from('{'), 'ERR_RPC_PARSE'],
    ['a string', Buffer.from('"x"'), 'ERR_RPC_INVALID'],
    ['null', Buffer.from('null'), 'ERR_RPC_INVALID'],
    ['an empty batch', Buffer.from('[]'), 'ERR_RPC_INVALID'],
    ['a batch with a number', Buffer.from('[1]'), 'ERR_RPC_INVALID'],
    ['jsonrpc 1.0', Buffer.from('{"jsonrpc":"1.0","id":1,"method":"m"}'), 'ERR_RPC_INVALID'],
    ['an empty method', Buffer.from('{"jsonrpc":"2.0","id":1,"method":""}'), 'ERR_RPC_INVALID'],
    ['an object id', Buffer.from('{"jsonrpc":"2.0","id":{},"method":"m"}'), 'ERR_RPC_INVALID'],
    ['scalar params', Buffer.from('{"jsonrpc":"2.0","id":1,"method":"m","params":3}'), 'ERR_RPC_INVALID'],
    ['a response with result and error', Buffer.from('{"jsonrpc":"2.0","id":1,"result":1,"error":{}}'), 'ERR_RPC_INVALID'],
    ['a duplicate member deep inside', Buffer.from('{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[{"b":1,"b":2}]}}'), 'ERR_RPC_INVALID'],
  ])('%s is refused', (_name, body, expected) => {
    expect(code(() => parseJsonRpcBody(body))).toBe(expected);
  });

  test('duplicate detection follows strings, escapes and nesting', () => {
    expect(findDuplicateMember('{"a":1,"b":{"a":2},"c":["a","a"]}')).toBeUndefined();
    expect(findDuplicateMember('{"a":"x,\\"a\\":1","b":1}')).toBeUndefined();
    expect(findDuplicateMember('{"a":1,"\\u0061":2}')).toBe('a');
    expect(findDuplicateMember('[{"a":1},{"a":1}]')).toBeUndefined();
    expect(findDuplicateMember('{"x":{"y":1},"x":2}')).toBe('x');
  });
});

describe('inspectRpc and Mcp-* headers', () => {
  const inspect = (body: string) => inspectRpc('mcp', parseJsonRpcBody(Buffer.from(body)));

  test('MCP calls: name from params.name, or params.uri for the resource methods; lists remembered by id', () => {
    const r = inspect('[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}},{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"docs://x","name":"ignored"}},{"jsonrpc":"2.0","id":3,"method":"tools/list"}]');
    expect(r.calls.map((c) => c.mcp)).toEqual([
      { method: 'tools/call', name: 't', arguments: { a: 1 }, id: 1, listFilter: false },
      { method: 'resources/read', name: 'docs://x', arguments: null, id: 2, listFilter: false },
      { method: 'tools/list', name: null, arguments: null, id: 3, listFilter: false },
    ]);
    expect([...r.lists.keys()]).toEqual([3]);
    expect(r.ids).toEqual([1, 2, 3]);
  });

  test('A2A operations for 1.0 and 0.3 method names', () => {
    const op = (method: string) => inspectRpc('a2a', parseJsonRpcBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: {} })))).calls[0]!.a2a!.operation;
    expect(['SendMessage', 'message/send', 'message/stream', 'tasks/resubscribe', 'agent/getAuthenticatedExtendedCard', 'Other'].map(op)).toEqual(['SendMessage', 'SendMessage', 'SendStreamingMessage', 'SubscribeToTask', 'GetExtendedAgentCard', 'Other']);
  });

  test('headers: absent pass; matching pass; base64 values decoded; any disagreement is ERR_MCP_HEADER_MISMATCH', () => {
    const one = inspect('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"caf\u00e9"}}');
    const check = (headers: Record<string, string[]>) => code(() => checkMcpHeaders(one, headers));
    expect(check({})).toBeUndefined();
    expect(check({ 'mcp-method': ['tools/call'], 'mcp-name': [`=?base64?${Buffer.from('caf\u00e9').toString('base64')}?=`] })).toBeUndefined();
    expect(check({ 'mcp-method': ['tools/list'] })).toBe('ERR_MCP_HEADER_MISMATCH');
    expect(check({ 'mcp-method': ['tools/call'] })).toBe('ERR_MCP_HEADER_MISMATCH');
    expect(check({ 'mcp-name': ['other'] })).toBe('ERR_MCP_HEADER_MISMATCH');
    expect(check({ 'mcp-method': ['tools/call', 'tools/call'], 'mcp-name': ['caf\u00e9'] })).toBe('ERR_MCP_HEADER_MISMATCH');
    const batch = inspect('[{"jsonrpc":"2.0","id":1,"method":"ping"}]');
    expect(code(() => checkMcpHeaders(batch, { 'mcp-method': ['ping'] }))).toBe('ERR_MCP_HEADER_MISMATCH');
  });
});
