/**
 * What a JSON-RPC body on an MCP or A2A route asks for, as policy inputs (docs/architecture.md "The request pipeline", step 4):
 * one `input.mcp` / `input.a2a` per call, the list requests whose results are filtered, and the
 * MCP 2026-07-28 `Mcp-Method` / `Mcp-Name` headers checked against the body.
 */
import { AgentwardError } from '../errors.ts';
import type { A2aInput, McpInput } from '../policy/input.ts';
import type { JsonRpcBody, JsonRpcCall, JsonRpcId } from './json-rpc.ts';

export type RpcProtocol = 'mcp' | 'a2a';

/** A list method whose result items are filtered, and the call each item stands for. */
export interface ListKind {
  /** The member of `result` holding the items (MCP: `tools`, `prompts`, `resources`). */
  member: 'tools' | 'prompts' | 'resources';
  /** The call an item is decided as. */
  callMethod: 'tools/call' | 'prompts/get' | 'resources/read';
  /** The item member that names it (`name`, or `uri` for resources). */
  key: 'name' | 'uri';
}

/** MCP list methods and what their items stand for. Resource templates are not filtered (an item is no concrete URI). */
export const MCP_LISTS: Readonly<Record<string, ListKind>> = {
  'tools/list': { member: 'tools', callMethod: 'tools/call', key: 'name' },
  'prompts/list': { member: 'prompts', callMethod: 'prompts/get', key: 'name' },
  'resources/list': { member: 'resources', callMethod: 'resources/read', key: 'uri' },
};

/**
 * The list a method asks for, if any. The method is the caller's: only own members of MCP_LISTS
 * count, so that "constructor" or "__proto__" is no list (nor, for A2A, an operation).
 */
export function listKind(method: string): ListKind | undefined {
  return Object.hasOwn(MCP_LISTS, method) ? MCP_LISTS[method] : undefined;
}

/** Methods whose `params.uri` (not `params.name`) names what they act on (MCP `Mcp-Name`, SEP-2243). */
const URI_METHODS = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe']);

/**
 * A2A operations by method name: the A2A 1.0 JSON-RPC names, and the 0.3 names they replaced, so
 * a policy can be written once against `input.a2a.operation`.
 */
const A2A_OPERATIONS: Readonly<Record<string, string>> = {
  SendMessage: 'SendMessage',
  SendStreamingMessage: 'SendStreamingMessage',
  GetTask: 'GetTask',
  ListTasks: 'ListTasks',
  CancelTask: 'CancelTask',
  SubscribeToTask: 'SubscribeToTask',
  CreateTaskPushNotificationConfig: 'CreateTaskPushNotificationConfig',
  GetTaskPushNotificationConfig: 'GetTaskPushNotificationConfig',
  ListTaskPushNotificationConfigs: 'ListTaskPushNotificationConfigs',
  DeleteTaskPushNotificationConfig: 'DeleteTaskPushNotificationConfig',
  GetExtendedAgentCard: 'GetExtendedAgentCard',
  'message/send': 'SendMessage',
  'message/stream': 'SendStreamingMessage',
  'tasks/get': 'GetTask',
  'tasks/list': 'ListTasks',
  'tasks/cancel': 'CancelTask',
  'tasks/resubscribe': 'SubscribeToTask',
  'tasks/pushNotificationConfig/set': 'CreateTaskPushNotificationConfig',
  'tasks/pushNotificationConfig/get': 'GetTaskPushNotificationConfig',
  'tasks/pushNotificationConfig/list': 'ListTaskPushNotificationConfigs',
  'tasks/pushNotificationConfig/delete': 'DeleteTaskPushNotificationConfig',
  'agent/getAuthenticatedExtendedCard': 'GetExtendedAgentCard',
};

export interface RpcCall {
  call: JsonRpcCall;
  mcp: McpInput | null;
  a2a: A2aInput | null;
}

export interface RpcInspection {
  protocol: RpcProtocol;
  batch: boolean;
  /** The requests and notifications, each decided on its own. */
  calls: RpcCall[];
  /** Ids of the body's messages that expect an answer (requests), in order. */
  ids: JsonRpcId[];
  /** MCP list requests by id: their results are filtered. */
  lists: Map<string | number, ListKind>;
}

export function inspectRpc(protocol: RpcProtocol, body: JsonRpcBody): RpcInspection {
  const calls: RpcCall[] = [];
  const ids: JsonRpcId[] = [];
  const lists = new Map<string | number, ListKind>();
  for (const message of body.messages) {
    if (message.kind === 'reply') continue;
    if (message.id !== undefined) ids.push(message.id);
    const params = isObject(message.params) ? message.params : undefined;
    if (protocol === 'mcp') {
      calls.push({ call: message, mcp: { method: message.method, name: mcpName(message.method, params), arguments: isObject(params?.arguments) ? params.arguments : null, id: message.id ?? null, listFilter: false }, a2a: null });
      const list = listKind(message.method);
      if (list && message.id !== undefined) lists.set(message.id, list);
    } else {
      calls.push({ call: message, mcp: null, a2a: { method: message.method, operation: Object.hasOwn(A2A_OPERATIONS, message.method) ? A2A_OPERATIONS[message.method]! : message.method, id: message.id ?? null, arguments: params ?? null } });
    }
  }
  return { protocol, batch: body.batch, calls, ids, lists };
}

/** `Mcp-Name` of a call: `params.name`, or `params.uri` for the resource methods. */
function mcpName(method: string, params: Record<string, unknown> | undefined): string | null {
  const value = URI_METHODS.has(method) ? params?.uri : params?.name;
  return typeof value === 'string' ? value : null;
}

/**
 * MCP 2026-07-28 (SEP-2243): a client mirrors the body's `method` in `Mcp-Method` and its name or
 * URI in `Mcp-Name`, so that intermediaries can route without the body. A proxy that decides on
 * the body must refuse a request whose headers say something else (-32020 HeaderMismatch): a
 * server or gateway further on may act on the header. Checked when the headers are present
 * (clients of earlier revisions send none); a header with a batch, a repeated header, or an
 * `Mcp-Method` without the `Mcp-Name` its method needs is a mismatch too.
 */
export function checkMcpHeaders(inspection: RpcInspection, headers: Readonly<Record<string, string[] | undefined>>): void {
  const method = headers['mcp-method'];
  const name = headers['mcp-name'];
  if (inspection.protocol !== 'mcp' || (method === undefined && name === undefined)) return;
  const { calls } = inspection;
  const mismatch = (detail: string) => new AgentwardError('ERR_MCP_HEADER_MISMATCH', detail);
  if (inspection.batch || calls.length !== 1) throw mismatch('Mcp-Method and Mcp-Name describe one call; a batch cannot carry them.');
  if ((method?.length ?? 0) > 1 || (name?.length ?? 0) > 1) throw mismatch('Send Mcp-Method and Mcp-Name at most once each.');
  const mcp = calls[0]!.mcp!;
  if (method !== undefined && decodeHeaderValue(method[0]!) !== mcp.method) throw mismatch('The Mcp-Method header does not match the method in the body.');
  if (name !== undefined && decodeHeaderValue(name[0]!) !== mcp.name) throw mismatch('The Mcp-Name header does not match the name or uri in the body.');
  if (method !== undefined && name === undefined && mcp.name !== null) throw mismatch('The body names a tool, prompt or resource; send it in Mcp-Name too.');
}

/** SEP-2243: a value that is not plain ASCII travels as `=?base64?<base64 of UTF-8>?=`. */
function decodeHeaderValue(value: string): string {
  const match = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/.exec(value.trim());
  return match ? Buffer.from(match[1]!, 'base64').toString('utf8') : value.trim();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
