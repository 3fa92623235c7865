import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { QueueFullError } from '../src/errors.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { acceptSubscribe, authSuccess, connectFrame, handshake, makeClient } from './helpers/frames.js';

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});

describe('offline queue', () => {
  it('holds messages sent before connect and flushes them in order after auth_success', async () => {
    const client = makeClient();
    await client.send({ id: 'a', type: 'agent_log', data: { agentId: 'a', n: 1 } });
    const b = client.publish('agent_log', { agentId: 'a', n: 2 });
    await expect(client.send({ id: 'c', type: 'agent_log', data: { agentId: 'a', n: 3 } })).resolves.toBeUndefined();
    expect(client.queuedCount).toBe(3);
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.push(connectFrame());
    // Nothing but the auth_request before authentication.
    expect(ws.frames.map((f) => f.type)).toEqual(['auth_request']);
    ws.push(authSuccess());
    await connected;
    expect(ws.frames.slice(1).map((f) => f.id)).toEqual(['a', b.id, 'c']);
    expect(client.queuedCount).toBe(0);
    client.close();
  });

  it('queues while reconnecting and flushes after re-auth, after the re-subscribes', async () => {
    const client = makeClient();
    const connected = client.connect();
    const ws1 = handshake();
    await connected;
    const sub = client.subscribe({ events: ['agent_*'] });
    acceptSubscribe(ws1, 'sub-1');
    await sub;

    ws1.serverClose(1006);
    const sent = [1, 2, 3].map((n) => client.publish('agent_log', { agentId: 'a', n }).id);
    await vi.advanceTimersByTimeAsync(500);
    const ws2 = FakeWebSocket.last;
    ws2.open();
    ws2.push(connectFrame({ sessionId: 'sess-2', resumed: false }));
    expect(ws2.frames.map((f) => f.type)).toEqual(['auth_request']);
    ws2.push(authSuccess());
    expect(ws2.frames.map((f) => f.type)).toEqual(['auth_request', 'subscribe', 'agent_log', 'agent_log', 'agent_log']);
    expect(ws2.framesOf('agent_log').map((f) => f.id)).toEqual(sent);
    client.close();
  });

  it('rejects with QueueFullError beyond queueLimit and keeps what it had (publish throws it)', async () => {
    const client = makeClient({ queueLimit: 3 });
    for (let i = 0; i < 3; i += 1) await client.send({ type: 'agent_log', data: { i } });
    const error = await client.send({ type: 'agent_log', data: { i: 3 } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(() => client.publish('agent_log', { i: 3 })).toThrow(QueueFullError);
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toMatchObject({ code: 'queue_full', limit: 3 });
    expect(client.queuedCount).toBe(3);

    const connected = client.connect();
    handshake();
    await connected;
    expect(FakeWebSocket.last.framesOf('agent_log').map((f) => f.data.i)).toEqual([0, 1, 2]);
    // Once connected, sends go straight out again.
    await client.send({ type: 'agent_log', data: { i: 4 } });
    expect(FakeWebSocket.last.framesOf('agent_log')).toHaveLength(4);
    client.close();
  });

  it('close() drops the queue', async () => {
    const client = makeClient();
    await client.send({ type: 'agent_log', data: {} });
    client.close();
    expect(client.queuedCount).toBe(0);
  });
});
