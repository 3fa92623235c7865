/**
 * The Debug view's logic on plain values: who sees it, the admin API's
 * answers parsed, the connections table's filter and sort, node health, the
 * inspector's filter and pause, the publish form's glue, and the HTTP calls
 * (method, path, credential header) through a fake fetch.
 */
import type { ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';

import { GatewayApi, type FetchLike } from '../src/debug/api';
import { clockOffset, formatAge, formatSize } from '../src/debug/clock';
import { connectionResources, filterConnections, nextSort, sortConnections } from '../src/debug/connections';
import { canonicalJson, fingerprint } from '../src/debug/fingerprint';
import { arrivedSincePause, envelopeResources, feedTypes, filterFeed, LIVE, NO_FILTER, pause, visibleFeed } from '../src/debug/inspector';
import { parseApiError, parseConnection, type ConnectionInfo, parseConnections, parseErrors, parseNodes, parseSubscriptionCounts } from '../src/debug/model';
import { nodeHealth } from '../src/debug/nodes';
import { canPublish, isAdmin } from '../src/debug/permissions';
import { exampleData, parseData, pointerToPath, problemsOf } from '../src/debug/publish';
import type { FeedItem } from '../src/state';

describe('who sees the Debug view and the publish form', () => {
  it('admin on system or on everything opens the Debug view; admin of one agent does not', () => {
    expect(isAdmin(['admin:system'])).toBe(true);
    expect(isAdmin(['read:*', 'admin:*'])).toBe(true);
    expect(isAdmin(['admin:agent:coder-001'])).toBe(false);
    expect(isAdmin(['read:*', 'publish:*'])).toBe(false);
    expect(isAdmin([])).toBe(false);
    expect(isAdmin(undefined)).toBe(false);
  });

  it('any publish permission (or admin, which implies it) shows the publish form', () => {
    expect(canPublish(['publish:agent:coder-001'])).toBe(true);
    expect(canPublish(['admin:system'])).toBe(true);
    expect(canPublish(['read:*'])).toBe(false);
    expect(canPublish(['publish'])).toBe(false);
  });
});

const CONN: ConnectionInfo = {
  connectionId: 'c-1',
  nodeId: 'host:1:aaa',
  sessionId: 's-1',
  subject: 'alice',
  remoteAddress: '127.0.0.1',
  connectedAt: 1000,
  subscriptions: [{ subscriptionId: 'sub-1', events: ['agent_*'], filters: { agentId: ['coder-001', 'tester-001'] } }],
  state: 'open',
  authKind: 'jwt',
  compression: 'none',
  queueBytes: 0,
  bytesIn: 10,
  bytesOut: 900,
};

describe('admin API answers, parsed defensively', () => {
  it('reads a connection, and turns missing or mistyped fields into neutral values', () => {
    expect(parseConnection(CONN)).toEqual(CONN);
    const odd = parseConnection({ connectionId: 'c-2', subject: null, subscriptions: [{ subscriptionId: 's', events: 'x', filters: { agentId: 'a1' } }], bytesIn: 'many' });
    expect(odd).toMatchObject({ connectionId: 'c-2', subject: null, bytesIn: 0, connectedAt: null });
    expect(odd.subscriptions).toEqual([{ subscriptionId: 's', events: [], filters: { agentId: ['a1'] } }]);
  });

  it('keeps "partial" and the missing nodes', () => {
    const body = { connections: [CONN, 'junk'], count: 1, partial: true, missingNodes: ['host:2:bbb'] };
    expect(parseConnections(body)).toEqual({ partial: true, missingNodes: ['host:2:bbb'], items: [CONN] });
    expect(parseConnections({ connections: [] })).toEqual({ partial: false, missingNodes: [], items: [] });
    expect(parseNodes(null).items).toEqual([]);
  });

  it('reads nodes, error groups and subscription counts', () => {
    const nodes = parseNodes({ nodes: [{ nodeId: 'n1', host: 'h', pid: 7, startedAt: 1, lastSeen: 2, connections: 3, version: '0.4.0', gauges: {} }], count: 1 });
    expect(nodes.items).toEqual([{ nodeId: 'n1', host: 'h', pid: 7, startedAt: 1, lastSeen: 2, connections: 3, version: '0.4.0' }]);
    const errors = parseErrors({ groups: [{ code: 'invalid_message', messageType: 'agent_status', count: 4, firstAt: 1, lastAt: 9, lastMessage: 'bad', ratePerMin: 0.5, alerting: false, nodes: ['n1', 'n2'] }], total: 4 });
    expect(errors.items[0]).toMatchObject({ code: 'invalid_message', count: 4, lastAt: 9, nodes: ['n1', 'n2'] });
    const subs = parseSubscriptionCounts({ resources: [{ resource: 'agent:a', subscribers: 2 }], types: [{ type: 'agent_status', subscribers: 3 }] });
    expect(subs).toMatchObject({ resources: [{ resource: 'agent:a', subscribers: 2 }], types: [{ type: 'agent_status', subscribers: 3 }], partial: false });
  });

  it("reads the gateway's error body, path included, or falls back on the status", () => {
    expect(parseApiError(422, { error: { code: 'invalid_message', message: 'Input should be a valid string', path: 'data.status' } })).toEqual({
      status: 422,
      code: 'invalid_message',
      message: 'Input should be a valid string',
      path: 'data.status',
    });
    expect(parseApiError(403, null)).toEqual({ status: 403, code: 'forbidden', message: 'HTTP 403' });
    expect(parseApiError(502, '<html>')).toMatchObject({ code: 'http_502' });
  });
});

describe('connections table', () => {
  const c = (over: Partial<ConnectionInfo>) => parseConnection({ ...CONN, ...over });
  const rows = [
    c({ connectionId: 'c-1', subject: 'alice', connectedAt: 3, bytesOut: 10 }),
    c({ connectionId: 'c-2', subject: 'Bob', connectedAt: 1, bytesOut: 30, subscriptions: [] }),
    c({ connectionId: 'c-3', subject: null, connectedAt: null, bytesOut: 20, subscriptions: [{ subscriptionId: 'x', events: ['*'], filters: {} }] }),
    c({ connectionId: 'c-4', subject: 'bobby', connectedAt: 2, bytesOut: 30, subscriptions: [{ subscriptionId: 'y', events: ['github_*'], filters: { repository: ['octo/app'] } }] }),
  ];

  it('names the resources of the subscriptions as the subscription counts do', () => {
    expect(connectionResources(rows[0]!)).toEqual(['agent:coder-001', 'agent:tester-001']);
    expect(connectionResources(rows[1]!)).toEqual([]);
    expect(connectionResources(rows[2]!)).toEqual(['*']);
    expect(connectionResources(rows[3]!)).toEqual(['repo:octo/app']);
  });

  it('filters by part of the subject (any case) and by part of a resource', () => {
    const ids = (f: { subject?: string; resource?: string }) =>
      filterConnections(rows, { subject: f.subject ?? '', resource: f.resource ?? '' }).map((r) => r.connectionId);
    expect(ids({})).toEqual(['c-1', 'c-2', 'c-3', 'c-4']);
    expect(ids({ subject: 'bob' })).toEqual(['c-2', 'c-4']);
    expect(ids({ resource: 'tester' })).toEqual(['c-1']);
    expect(ids({ resource: 'repo:octo' })).toEqual(['c-4']);
    expect(ids({ resource: '*' })).toEqual(['c-3']);
    expect(ids({ subject: 'bob', resource: 'agent' })).toEqual([]);
  });

  it('sorts by a column, missing values last either way, ties by id', () => {
    const by = (key: Parameters<typeof sortConnections>[1]['key'], dir: 'asc' | 'desc') => sortConnections(rows, { key, dir }).map((r) => r.connectionId);
    expect(by('connectedAt', 'asc')).toEqual(['c-2', 'c-4', 'c-1', 'c-3']);
    expect(by('connectedAt', 'desc')).toEqual(['c-1', 'c-4', 'c-2', 'c-3']);
    expect(by('subject', 'asc')).toEqual(['c-1', 'c-2', 'c-4', 'c-3']);
    expect(by('bytesOut', 'desc')).toEqual(['c-2', 'c-4', 'c-3', 'c-1']);
    expect(by('subscriptions', 'asc')).toEqual(['c-2', 'c-1', 'c-3', 'c-4']);
    expect(rows.map((r) => r.connectionId)).toEqual(['c-1', 'c-2', 'c-3', 'c-4']); // not sorted in place
  });

  it('a header click flips the same column, and starts another (numbers largest first)', () => {
    expect(nextSort({ key: 'subject', dir: 'asc' }, 'subject')).toEqual({ key: 'subject', dir: 'desc' });
    expect(nextSort({ key: 'subject', dir: 'desc' }, 'nodeId')).toEqual({ key: 'nodeId', dir: 'asc' });
    expect(nextSort({ key: 'subject', dir: 'asc' }, 'queueBytes')).toEqual({ key: 'queueBytes', dir: 'desc' });
  });
});

describe('nodes and clocks', () => {
  const node = { nodeId: 'n', host: 'h', pid: 1, startedAt: 0, lastSeen: 100_000, connections: 0, version: '1' };
  it('health from the age of the last heartbeat', () => {
    expect(nodeHealth(node, 101_000)).toBe('ok');
    expect(nodeHealth(node, 105_000)).toBe('late');
    expect(nodeHealth(node, 115_000)).toBe('leaving');
    expect(nodeHealth({ ...node, lastSeen: null }, 0)).toBe('unknown');
  });

  it("estimates the gateway's clock offset from the Date header, ignoring its rounding", () => {
    const at = Date.parse('Thu, 03 Dec 2026 08:00:00 GMT');
    expect(clockOffset('Thu, 03 Dec 2026 08:00:00 GMT', at + 900)).toBe(0);
    expect(clockOffset('Thu, 03 Dec 2026 08:01:00 GMT', at)).toBe(60_000);
    expect(clockOffset('Thu, 03 Dec 2026 07:59:00 GMT', at)).toBe(-60_000);
    expect(clockOffset(null, at)).toBe(0);
    expect(clockOffset('yesterday-ish', at)).toBe(0);
  });

  it('formats ages and sizes', () => {
    expect([formatAge(-5), formatAge(850), formatAge(12_400), formatAge(5 * 60_000), formatAge(200 * 60_000), formatAge(50 * 3600_000)]).toEqual([
      '0 ms', '850 ms', '12 s', '5 min', '3 h 20 min', '2 d 2 h',
    ]);
    expect([formatSize(0), formatSize(1536), formatSize(3.25 * 1024 ** 2)]).toEqual(['0 B', '1.5 KiB', '3.3 MiB']);
  });
});

describe('message inspector', () => {
  const line = (seq: number, type: string, data: Record<string, unknown>): FeedItem => ({
    seq,
    id: `e${seq}`,
    type,
    at: seq,
    summary: `${type} ${seq}`,
    envelope: { id: `e${seq}`, type, timestamp: seq, data },
  });
  const marker: FeedItem = { seq: 2, id: 'm', type: 'marker', at: 2, summary: 'Subscribed to all agents' };
  const feed = [
    line(5, 'github_pr_update', { repository: 'octo/app', title: 'Fix the login bug' }),
    line(4, 'agent_status', { agentId: 'tester-001', status: 'idle' }),
    line(3, 'agent_log', { agentId: 'coder-001', taskId: 'task-9', message: 'Login test green' }),
    marker,
    line(1, 'agent_status', { agentId: 'coder-001', status: 'busy' }),
  ];
  const seqs = (items: readonly FeedItem[]) => items.map((i) => i.seq);

  it('names the resources of an event', () => {
    expect(envelopeResources(feed[2]!.envelope)).toEqual(['agent:coder-001', 'task:task-9']);
    expect(envelopeResources(feed[0]!.envelope)).toEqual(['repo:octo/app']);
    expect(envelopeResources(undefined)).toEqual([]);
  });

  it('filters by type, resource and free text; the dashboard lines only when unfiltered', () => {
    expect(seqs(filterFeed(feed, NO_FILTER))).toEqual([5, 4, 3, 2, 1]);
    expect(seqs(filterFeed(feed, { ...NO_FILTER, type: 'agent_status' }))).toEqual([4, 1]);
    expect(seqs(filterFeed(feed, { ...NO_FILTER, resource: 'coder-001' }))).toEqual([3, 1]);
    expect(seqs(filterFeed(feed, { ...NO_FILTER, resource: 'task:task-9' }))).toEqual([3]);
    expect(seqs(filterFeed(feed, { ...NO_FILTER, text: 'LOGIN' }))).toEqual([5, 3]);
    expect(seqs(filterFeed(feed, { type: 'agent_status', resource: 'coder', text: 'busy' }))).toEqual([1]);
    expect(feedTypes(feed)).toEqual(['agent_log', 'agent_status', 'github_pr_update']);
  });

  it('pausing freezes what is shown and counts what arrived since', () => {
    expect(visibleFeed(feed, LIVE)).toBe(feed);
    const paused = pause(feed);
    const later = [line(7, 'agent_metric', {}), line(6, 'agent_metric', {}), ...feed];
    expect(seqs(visibleFeed(later, paused))).toEqual([5, 4, 3, 2, 1]);
    expect(arrivedSincePause(later, paused)).toBe(2);
    expect(arrivedSincePause(later, LIVE)).toBe(0);
  });
});

describe('publish form glue', () => {
  it('reads the edited data: JSON, and an object', () => {
    expect(parseData('{"agentId": "a"}')).toEqual({ ok: true, data: { agentId: 'a' } });
    expect(parseData('{"agentId": ')).toMatchObject({ ok: false, problem: { path: 'data', message: expect.stringMatching(/^not valid JSON/) } });
    expect(parseData('[1]')).toEqual({ ok: false, problem: { path: 'data', message: 'must be a JSON object' } });
  });

  it("writes JSON pointers in the gateway's path notation", () => {
    expect(pointerToPath('')).toBe('');
    expect(pointerToPath('/data/steps/0/name')).toBe('data.steps[0].name');
    expect(pointerToPath('/data/a~1b/c~0d')).toBe('data.a/b.c~d');
  });

  it('turns Ajv errors into problems at their field, once each, without the union noise', () => {
    const err = (keyword: string, instancePath: string, params: Record<string, unknown>, message?: string): ErrorObject =>
      ({ keyword, instancePath, schemaPath: '#', params, ...(message ? { message } : {}) }) as ErrorObject;
    expect(
      problemsOf([
        err('required', '/data', { missingProperty: 'status' }),
        err('enum', '/data/status', { allowedValues: ['idle', 'busy'] }),
        err('type', '/data/currentTask/progress', { type: 'number' }, 'must be number'),
        err('type', '/data/currentTask/progress', { type: 'number' }, 'must be number'),
        err('anyOf', '/data', {}, 'must match a schema in anyOf'),
        err('additionalProperties', '', { additionalProperty: 'extra' }),
      ]),
    ).toEqual([
      { path: 'data.status', message: 'required' },
      { path: 'data.status', message: 'must be one of "idle", "busy"' },
      { path: 'data.currentTask.progress', message: 'must be number' },
      { path: 'extra', message: 'is not allowed here' },
    ]);
    expect(problemsOf(null)).toEqual([]);
  });

  it("builds a starting data from a schema's required fields, following $ref", () => {
    const schema = {
      $defs: {
        D: { type: 'object', required: ['agentId', 'status', 'task', 'repository'], properties: {
          agentId: { type: 'string' }, status: { enum: ['idle', 'busy'] }, repository: { type: 'string' }, task: { $ref: '#/$defs/T' } } },
        T: { type: 'object', required: ['progress', 'done'], properties: { progress: { type: 'number', minimum: 0 }, done: { type: 'boolean' } } },
      },
      properties: { data: { $ref: '#/$defs/D' } },
    };
    expect(exampleData(schema)).toEqual({ agentId: 'agent-001', status: 'idle', task: { progress: 0, done: false }, repository: 'octo/app' });
    expect(exampleData(null)).toEqual({});
  });
});

describe('schema fingerprints', () => {
  it('ignore key order and whitespace, and see any change of value', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe('{"a":[{"c":null,"d":2}],"b":1}');
    expect(fingerprint({ a: 1, b: 'x' })).toBe(fingerprint(JSON.parse('{ "b": "x",\n "a": 1 }')));
    expect(fingerprint({ a: 1 })).not.toBe(fingerprint({ a: 2 }));
    expect(fingerprint({ a: 1 })).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe('HTTP calls', () => {
  function fakeFetch(status: number, body: unknown, headers: Record<string, string> = {}) {
    const calls: { url: string; init: RequestInit }[] = [];
    const impl: FetchLike = async (url, init) => {
      calls.push({ url, init });
      return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
    };
    return { calls, impl };
  }
  const headersOf = (init: RequestInit) => init.headers as Record<string, string>;

  it('sends a JWT as a bearer token, an API key as X-API-Key, never in the URL', async () => {
    const f = fakeFetch(200, { connections: [CONN], count: 1 });
    const res = await new GatewayApi({ kind: 'token', value: 'jwt.x.y' }, f.impl).connections();
    expect(res).toMatchObject({ ok: true, value: { items: [CONN], partial: false } });
    expect(f.calls[0]!.url).toBe('/api/v1/connections');
    expect(headersOf(f.calls[0]!.init).Authorization).toBe('Bearer jwt.x.y');
    const k = fakeFetch(200, { nodes: [] });
    await new GatewayApi({ kind: 'apiKey', value: 'k-1' }, k.impl).nodes();
    expect(headersOf(k.calls[0]!.init)['X-API-Key']).toBe('k-1');
    expect(headersOf(k.calls[0]!.init).Authorization).toBeUndefined();
  });

  it("DELETEs a connection by its (escaped) id, POSTs an event, and fetches a schema without the credential", async () => {
    const d = fakeFetch(200, { closed: 'a/b' });
    expect(await new GatewayApi({ kind: 'token', value: 't' }, d.impl).disconnect('a/b')).toMatchObject({ ok: true, value: { closed: 'a/b' } });
    expect([d.calls[0]!.init.method, d.calls[0]!.url]).toEqual(['DELETE', '/api/v1/connections/a%2Fb']);

    const p = fakeFetch(202, { ids: ['evt-1'] });
    const sent = await new GatewayApi({ kind: 'token', value: 't' }, p.impl).publish({ type: 'agent_log', data: { agentId: 'a' } });
    expect(sent).toMatchObject({ ok: true, value: { ids: ['evt-1'] } });
    expect(p.calls[0]!.init.method).toBe('POST');
    expect(JSON.parse(String(p.calls[0]!.init.body))).toEqual({ type: 'agent_log', data: { agentId: 'a' } });
    expect(headersOf(p.calls[0]!.init)['Content-Type']).toBe('application/json');

    const s = fakeFetch(200, { $id: 'x' });
    await new GatewayApi({ kind: 'token', value: 't' }, s.impl).schema('agent_log');
    expect(s.calls[0]!.url).toBe('/schemas/agent_log.json');
    expect(headersOf(s.calls[0]!.init).Authorization).toBeUndefined();
  });

  it('answers errors as values: the 422 path, a non-JSON body, an unreachable gateway', async () => {
    const bad = fakeFetch(422, { error: { code: 'invalid_message', message: 'Field required', path: 'data.agentId' } });
    expect(await new GatewayApi({ kind: 'token', value: 't' }, bad.impl).publish({ type: 'agent_log', data: {} })).toEqual({
      ok: false,
      error: { status: 422, code: 'invalid_message', message: 'Field required', path: 'data.agentId' },
    });
    const html: FetchLike = async () => new Response('<html>bad gateway</html>', { status: 502 });
    expect(await new GatewayApi({ kind: 'token', value: 't' }, html).nodes()).toMatchObject({ ok: false, error: { status: 502 } });
    const down: FetchLike = async () => {
      throw new TypeError('Failed to fetch');
    };
    expect(await new GatewayApi({ kind: 'token', value: 't' }, down).nodes()).toMatchObject({ ok: false, error: { code: 'unreachable' } });
  });

  it("applies the clock offset of the gateway's Date header", async () => {
    const now = Date.parse('Thu, 03 Dec 2026 08:00:00 GMT');
    const f = fakeFetch(200, { nodes: [] }, { Date: 'Thu, 03 Dec 2026 08:00:30 GMT' });
    expect(await new GatewayApi({ kind: 'token', value: 't' }, f.impl, () => now).nodes()).toMatchObject({ ok: true, clockOffsetMs: 30_000 });
  });
});
