/** The pure pieces, tested on plain values. */
import { describe, expect, it } from 'vitest';

import { byteLength, parseEnvelope } from '../src/codec.js';
import { RecentIds } from '../src/dedup.js';
import { AutoSDLCError, ConnectionClosedError, QueueFullError, ServerError } from '../src/errors.js';
import { globMatches } from '../src/glob.js';
import { ClientRegistry, ClientStore } from '../src/store.js';
import { isEventType } from '../src/types.js';
import * as publicApi from '../src/index.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { event, handshake, makeClient } from './helpers/frames.js';

describe('globMatches', () => {
  it('matches prefixes of event types only', () => {
    expect(globMatches('agent_*', 'agent_status')).toBe(true);
    expect(globMatches('agent_*', 'agentx')).toBe(false);
    expect(globMatches('*', 'github_pr_update')).toBe(true);
    expect(globMatches('*', 'brand_new_type')).toBe(true);
    expect(globMatches('*', 'connect')).toBe(false);
    expect(globMatches('sub*', 'subscription_update')).toBe(false);
    expect(globMatches('*', '$reset')).toBe(false);
  });

  it('isEventType excludes control and pseudo types', () => {
    expect(isEventType('pong')).toBe(false);
    expect(isEventType('auth_success')).toBe(false);
    expect(isEventType('$reset')).toBe(false);
    expect(isEventType('agent_log')).toBe(true);
  });
});

describe('RecentIds', () => {
  it('reports duplicates and forgets the oldest beyond capacity', () => {
    const ids = new RecentIds(2);
    expect(ids.add('a')).toBe(true);
    expect(ids.add('a')).toBe(false);
    expect(ids.add('b')).toBe(true);
    expect(ids.add('c')).toBe(true);
    expect(ids.size).toBe(2);
    expect(ids.add('a')).toBe(true);
  });
});

describe('codec', () => {
  it('parses envelopes, keeps unknown fields and defaults data', () => {
    expect(parseEnvelope('{"id":"1","type":"x","timestamp":1,"data":{"a":1},"extra":true}')).toEqual({
      id: '1',
      type: 'x',
      timestamp: 1,
      data: { a: 1 },
      extra: true,
    });
    expect(parseEnvelope('{"id":"1","type":"pong","timestamp":1}').data).toEqual({});
  });

  it('rejects what is not an envelope with invalid_frame', () => {
    for (const text of ['nope', '3', 'null', '[]', '{"type":""}', '{"type":3}']) {
      expect(() => parseEnvelope(text)).toThrow(expect.objectContaining({ code: 'invalid_frame' }));
    }
  });

  it('counts UTF-8 bytes', () => {
    expect(byteLength('abc')).toBe(3);
    expect(byteLength('é')).toBe(2);
    expect(byteLength('€')).toBe(3);
  });
});

describe('errors', () => {
  it('are typed classes with codes under one root', () => {
    const q = new QueueFullError(5);
    expect(q).toBeInstanceOf(AutoSDLCError);
    expect(q).toBeInstanceOf(Error);
    expect(q.name).toBe('QueueFullError');
    expect(q.code).toBe('queue_full');
    expect(new ConnectionClosedError(4008, '').code).toBe('server_disconnect');
    expect(new ConnectionClosedError(4001, 'x').code).toBe('unauthorized');
    const s = new ServerError({ id: '1', type: 'error', timestamp: 1, data: { code: 'rate_limited', message: 'm', retryAfterMs: 20 } });
    expect(s).toMatchObject({ code: 'rate_limited', message: 'm', retryAfterMs: 20 });
  });
});

describe('ClientStore', () => {
  it('produces a new snapshot only on change and tracks the last event', async () => {
    FakeWebSocket.reset();
    const client = makeClient();
    const store = new ClientStore(client);
    const first = store.getSnapshot();
    expect(first).toMatchObject({ state: 'idle', isConnected: false, lastMessage: null });
    let calls = 0;
    const off = store.subscribe(() => (calls += 1));
    expect(store.getSnapshot()).toBe(first);
    const connected = client.connect();
    const ws = handshake();
    await connected;
    const open = store.getSnapshot();
    expect(open).toMatchObject({ state: 'open', isConnected: true });
    const before = calls;
    ws.push({ id: 'p', type: 'pong', timestamp: 1, data: {} });
    expect(calls).toBe(before);
    expect(store.getSnapshot()).toBe(open);
    ws.push(event('agent_status', 'e1'));
    expect(store.getSnapshot().lastMessage?.id).toBe('e1');
    off();
    client.close();
  });

  it('registry ref-counts: first acquire connects, last release closes', () => {
    FakeWebSocket.reset();
    const registry = new ClientRegistry();
    const a = registry.get('k', () => makeClient());
    const b = registry.get('k', () => makeClient());
    expect(a).toBe(b);
    expect(FakeWebSocket.instances).toHaveLength(0);
    registry.acquire(a);
    registry.acquire(b);
    expect(FakeWebSocket.instances).toHaveLength(1);
    registry.release(a);
    expect(a.client.state).toBe('connecting');
    registry.release(b);
    expect(a.client.state).toBe('closed');
    expect(registry.size).toBe(0);
    registry.release(b); // extra release is harmless
  });
});

describe('public API', () => {
  it('exports the client, defaults, errors and helpers from the package root', () => {
    for (const name of [
      'AutoSDLCWebSocketClient',
      'DEFAULTS',
      'AutoSDLCError',
      'ConnectError',
      'QueueFullError',
      'ServerError',
      'EVENT_TYPES',
      'CONTROL_TYPES',
      'backoffDelay',
      'closeAction',
      'ClientStore',
      'ClientRegistry',
    ]) {
      expect(publicApi).toHaveProperty(name);
    }
  });
});
