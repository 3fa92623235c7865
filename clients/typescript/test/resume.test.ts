import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { ResetEnvelope } from '../src/types.js';
import { DEFAULTS, type ResetInfo } from '../src/client.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import {
  acceptSubscribe,
  authSuccess,
  connectFrame,
  envelope,
  event,
  handshake,
  makeClient,
  openClient,
  reply,
} from './helpers/frames.js';

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockReturnValue(0);
});
afterEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});

/** Connected client with one subscription (sub-1) that has seen e1 and e2. */
async function establishedClient(config = {}) {
  const onReset = vi.fn<(info: ResetInfo) => void>();
  const client = makeClient({ onReset, ...config });
  const connected = client.connect();
  const ws = handshake({ sessionId: 'sess-1' });
  await connected;
  const sub = client.subscribe({ events: ['agent_*'], filters: { agentId: ['a', 'b'] } });
  acceptSubscribe(ws, 'sub-1');
  expect(await sub).toBe('sub-1');
  const events: string[] = [];
  const resets: ResetEnvelope[] = [];
  client.on('*', (e) => events.push(e.id));
  client.on('$reset', (e) => resets.push(e));
  ws.push(event('agent_status', 'e1'));
  ws.push(event('agent_log', 'e2'));
  return { client, ws, events, resets, onReset };
}

async function dropAndReopen(ws: { serverClose(code: number): void }) {
  ws.serverClose(1006);
  await vi.advanceTimersByTimeAsync(1);
  const next = FakeWebSocket.last;
  next.open();
  return next;
}

describe('resume', () => {
  it('sends sessionId and the last delivered event id in the in-band auth_request', async () => {
    const { client, ws } = await establishedClient({ compression: 'gzip' });
    expect(client.lastEventId).toBe('e2');
    const ws2 = await dropAndReopen(ws);
    expect(ws2.frames[0]).toMatchObject({
      type: 'auth_request',
      data: { token: 'jwt-token', sessionId: 'sess-1', lastEventId: 'e2', compression: 'gzip' },
    });
    expect(ws2.parsedUrl.search).toBe('');
    client.close();
  });

  it('sends session_id and last_event_id in the query with authInUrl', async () => {
    const { client, ws } = await establishedClient({ authInUrl: true });
    ws.serverClose(1001);
    await vi.advanceTimersByTimeAsync(1);
    const params = FakeWebSocket.last.parsedUrl.searchParams;
    expect(params.get('token')).toBe('jwt-token');
    expect(params.get('session_id')).toBe('sess-1');
    expect(params.get('last_event_id')).toBe('e2');
    client.close();
  });

  it('resumed: true -> no re-subscribe, no reset, replayed events delivered in order', async () => {
    const { client, ws, events, resets, onReset } = await establishedClient();
    const ws2 = await dropAndReopen(ws);
    ws2.push(connectFrame({ sessionId: 'unauth' }));
    // Per the server: an auth_request with sessionId gets a fresh connect frame.
    ws2.push(connectFrame({ sessionId: 'sess-1', resumed: true }));
    ws2.push(authSuccess());
    ws2.push(envelope('subscription_update', { subscriptionId: 'sub-1', status: 'resumed', events: ['agent_*'] }));
    ws2.push(event('agent_log', 'e3'));
    ws2.push(event('agent_log', 'e4'));
    expect(client.state).toBe('open');
    expect(ws2.framesOf('subscribe')).toEqual([]);
    expect(ws2.framesOf('unsubscribe')).toEqual([]);
    expect(resets).toEqual([]);
    expect(onReset).not.toHaveBeenCalled();
    expect(events).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(client.sessionId).toBe('sess-1');
    expect(client.subscriptions).toEqual([
      { id: 'sub-1', serverId: 'sub-1', events: ['agent_*'], filters: { agentId: ['a', 'b'] } },
    ]);
    client.close();
  });

  it('resumed: false -> re-subscribes, keeps the caller id stable, emits $reset', async () => {
    const { client, ws, resets, onReset } = await establishedClient();
    const ws2 = await dropAndReopen(ws);
    ws2.push(connectFrame({ sessionId: 'sess-2', resumed: false }));
    ws2.push(authSuccess());
    const resub = ws2.lastOf('subscribe');
    expect(resub.data).toEqual({ events: ['agent_*'], filters: { agentId: ['a', 'b'] } });
    expect(resets).toHaveLength(1);
    expect(resets[0]).toMatchObject({
      type: '$reset',
      data: { reason: 'session_not_resumed', sessionId: 'sess-2', previousSessionId: 'sess-1', subscriptionIds: ['sub-1'] },
    });
    expect(onReset).toHaveBeenCalledTimes(1);
    expect(onReset.mock.calls[0]![0]).toMatchObject({ reason: 'session_not_resumed' });

    acceptSubscribe(ws2, 'sub-99', resub);
    expect(client.subscriptions).toEqual([
      { id: 'sub-1', serverId: 'sub-99', events: ['agent_*'], filters: { agentId: ['a', 'b'] } },
    ]);
    // The caller's id still works and maps to the new server id.
    void client.unsubscribe('sub-1');
    expect(ws2.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'sub-99' });
    client.close();
  });

  it('does not emit $reset on the very first connect', async () => {
    const { resets, onReset, client } = await establishedClient();
    expect(resets).toEqual([]);
    expect(onReset).not.toHaveBeenCalled();
    client.close();
  });

  it('surfaces subscription_update status reset (history lost) as $reset', async () => {
    const { client, ws, resets } = await establishedClient();
    const ws2 = await dropAndReopen(ws);
    ws2.push(connectFrame({ sessionId: 'sess-1', resumed: true }));
    ws2.push(authSuccess());
    ws2.push(envelope('subscription_update', { subscriptionId: 'sub-1', status: 'reset' }));
    expect(resets).toHaveLength(1);
    expect(resets[0]!.data).toMatchObject({ reason: 'history_lost', subscriptionIds: ['sub-1'] });
    expect(ws2.framesOf('subscribe')).toEqual([]);
    client.close();
  });

  it('unsubscribes a resumed subscription the app dropped while offline', async () => {
    const { client, ws } = await establishedClient();
    ws.serverClose(1006);
    await client.unsubscribe('sub-1');
    await vi.advanceTimersByTimeAsync(1);
    const ws2 = FakeWebSocket.last;
    ws2.open();
    ws2.push(connectFrame({ sessionId: 'sess-1', resumed: true }));
    ws2.push(authSuccess());
    ws2.push(envelope('subscription_update', { subscriptionId: 'sub-1', status: 'resumed' }));
    expect(ws2.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'sub-1' });
    client.close();
  });

  it('re-sends a subscribe whose reply was lost in the drop, even when resumed', async () => {
    const { client, ws } = await establishedClient();
    const pending = client.subscribe({ events: ['workflow_*'] });
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['workflow_*'] });
    const ws2 = await dropAndReopen(ws);
    ws2.push(connectFrame({ sessionId: 'sess-1', resumed: true }));
    ws2.push(authSuccess());
    const again = ws2.lastOf('subscribe');
    expect(again.data).toEqual({ events: ['workflow_*'] });
    acceptSubscribe(ws2, 'sub-2', again);
    await expect(pending).resolves.toBe('sub-2');
    client.close();
  });
});

describe('duplicate events', () => {
  it('drops an event id already delivered (replay overlapping live events)', async () => {
    const { client, ws, events } = await establishedClient();
    ws.push(event('agent_log', 'e2'));
    ws.push(event('agent_log', 'e3'));
    const ws2 = await dropAndReopen(ws);
    ws2.push(connectFrame({ sessionId: 'sess-1', resumed: true }));
    ws2.push(authSuccess());
    ws2.push(event('agent_log', 'e3'));
    ws2.push(event('agent_log', 'e4'));
    expect(events).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(client.lastEventId).toBe('e4');
    client.close();
  });

  it('remembers a bounded number of ids (LRU)', async () => {
    const { client, ws, events } = await establishedClient({ dedupSize: 3 });
    // seen: e1, e2
    ws.push(event('agent_log', 'e3'));
    ws.push(event('agent_log', 'e4')); // evicts e1
    ws.push(event('agent_log', 'e2')); // duplicate, refreshed
    ws.push(event('agent_log', 'e5')); // evicts e3 -> {e4, e2, e5}
    ws.push(event('agent_log', 'e2')); // still remembered thanks to the refresh
    ws.push(event('agent_log', 'e1')); // forgotten, delivered again
    ws.push(event('agent_log', 'e3')); // forgotten, delivered again
    expect(events).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'e1', 'e3']);
    client.close();
  });
});

describe('per-subscription status across reconnects', () => {
  it('goes pending while re-subscribing after a session was not resumed, active again, and counts the reset', async () => {
    const { client, ws } = await openClient();
    const handle = client.createSubscription({ events: ['agent_*'] });
    acceptSubscribe(ws, 'sub-1');
    await handle.result;
    expect(handle.getSnapshot()).toMatchObject({ status: 'active', id: 'sub-1', resets: 0 });
    const seen: string[] = [];
    handle.subscribe(() => seen.push(handle.getSnapshot().status));

    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    const ws2 = handshake({ sessionId: 'sess-2', resumed: false });
    expect(handle.getSnapshot()).toMatchObject({ status: 'pending', id: 'sub-1', resets: 1 });
    acceptSubscribe(ws2, 'sub-2');
    expect(handle.getSnapshot()).toMatchObject({ status: 'active', id: 'sub-1', serverId: 'sub-2' });
    expect(seen).toEqual(['pending', 'pending', 'active']);
    client.close();
    expect(handle.getSnapshot().status).toBe('removed');
  });

  it('shows a re-subscribe refused after reconnect as error', async () => {
    const { client, ws } = await openClient();
    const handle = client.createSubscription({ events: ['workflow_*'] });
    acceptSubscribe(ws, 'sub-1');
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    const ws2 = handshake({ sessionId: 'sess-2', resumed: false });
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    ws2.push(reply(ws2.lastOf('subscribe'), 'error', { code: 'forbidden', message: 'revoked' }));
    expect(handle.getSnapshot()).toMatchObject({ status: 'error', error: { code: 'forbidden' } });
    expect(errors).toHaveLength(1);
    client.close();
  });
});

