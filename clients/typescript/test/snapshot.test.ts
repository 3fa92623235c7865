/**
 * Snapshot on subscribe (protocol 1.1): the flag on the wire, the resume
 * position left alone by snapshot events, and the snapshot asked for again
 * when a lost session forces a re-subscribe.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { InvalidArgumentError } from '../src/errors.js';
import { ClientSession, isSnapshotEvent } from '../src/session.js';
import { SubscriptionRegistry } from '../src/subscriptions.js';
import type { Envelope } from '../src/types.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { acceptSubscribe, authSuccess, connectFrame, event, makeClient, openClient } from './helpers/frames.js';

beforeEach(() => FakeWebSocket.reset());
afterEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});

function snapshotEvent(type: string, id: string, agentId = 'coder-001'): Envelope {
  return { ...event(type, id, { agentId }), metadata: { version: '1.0', snapshot: true } };
}

describe('snapshot events and the session (plain values)', () => {
  it('tells snapshot events by metadata.snapshot === true only', () => {
    expect(isSnapshotEvent(snapshotEvent('agent_status', 's1'))).toBe(true);
    expect(isSnapshotEvent(event('agent_status', 'e1'))).toBe(false);
    expect(isSnapshotEvent({ ...event('agent_status', 'e2'), metadata: { snapshot: 'true' } as never })).toBe(false);
  });

  it('a snapshot event is delivered once but never becomes the resume position', () => {
    const session = new ClientSession(10);
    expect(session.accept(event('agent_log', 'live-1'))).toBe(true);
    expect(session.accept(snapshotEvent('agent_status', 'old-1'))).toBe(true);
    expect(session.lastEventId).toBe('live-1');
    // Seen once: a second copy (another subscription's snapshot) is a duplicate.
    expect(session.accept(snapshotEvent('agent_status', 'old-1'))).toBe(false);
    expect(session.accept(event('agent_log', 'live-2'))).toBe(true);
    expect(session.lastEventId).toBe('live-2');
  });

  it('puts snapshot: true in the subscribe data and the info only when asked', () => {
    const registry = new SubscriptionRegistry();
    const plain = registry.add(['agent_*'], undefined);
    const withSnapshot = registry.add(['agent_*'], { agentId: 'a' }, true);
    expect(plain.requestData()).toEqual({ events: ['agent_*'] });
    expect(withSnapshot.requestData()).toEqual({ events: ['agent_*'], filters: { agentId: 'a' }, snapshot: true });
    registry.confirm(plain, 'p');
    registry.confirm(withSnapshot, 's');
    expect(registry.infos()).toEqual([
      { id: 'p', serverId: 'p', events: ['agent_*'], filters: undefined },
      { id: 's', serverId: 's', events: ['agent_*'], filters: { agentId: 'a' }, snapshot: true },
    ]);
  });
});

describe('subscribe({ snapshot: true }) on the client', () => {
  it('sends the flag, delivers the snapshot then live events, and resumes after the last live one', async () => {
    const { client, ws } = await openClient();
    const seen: string[] = [];
    client.on('*', (e) => seen.push(`${e.id}${e.metadata?.snapshot ? ' (snapshot)' : ''}`));
    ws.push(event('agent_log', 'live-0'));
    const pending = client.subscribe({ events: ['agent_status'], snapshot: true });
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['agent_status'], snapshot: true });
    acceptSubscribe(ws, 'sub-1');
    await expect(pending).resolves.toBe('sub-1');
    ws.push(snapshotEvent('agent_status', 'old-a', 'a'));
    ws.push(snapshotEvent('agent_status', 'old-b', 'b'));
    expect(client.lastEventId).toBe('live-0');
    ws.push(event('agent_status', 'live-1'));
    expect(seen).toEqual(['live-0', 'old-a (snapshot)', 'old-b (snapshot)', 'live-1']);
    expect(client.lastEventId).toBe('live-1');
    expect(client.subscriptions).toEqual([
      { id: 'sub-1', serverId: 'sub-1', events: ['agent_status'], filters: undefined, snapshot: true },
    ]);
    client.close();
  });

  it('a subscription without the flag sends none (1.0 clients unchanged)', async () => {
    const { client, ws } = await openClient();
    client.subscribe({ events: ['agent_status'], snapshot: false }).catch(() => undefined);
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['agent_status'] });
    client.close();
  });

  it('refuses a snapshot that is not a boolean', async () => {
    const client = makeClient();
    await expect(client.subscribe({ events: ['agent_status'], snapshot: 'yes' as never })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(() => client.createSubscription({ events: ['agent_status'], snapshot: 1 as never })).toThrow(InvalidArgumentError);
  });

  it('asks again when a lost session forces a re-subscribe, and resumes from live events only', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await openClient();
    const handle = client.createSubscription({ events: ['agent_*'], filters: { agentId: 'a' }, snapshot: true });
    acceptSubscribe(ws, 'sub-1');
    await handle.result;
    ws.push(snapshotEvent('agent_status', 'old-1', 'a'));
    ws.push(event('agent_log', 'live-1'));

    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(1);
    const ws2 = FakeWebSocket.last;
    ws2.open();
    // Resume from the last live event, never from a snapshot one.
    expect(ws2.frames[0]!.data).toMatchObject({ sessionId: 'sess-1', lastEventId: 'live-1' });
    ws2.push(connectFrame({ sessionId: 'sess-2', resumed: false }));
    ws2.push(authSuccess());
    expect(ws2.lastOf('subscribe').data).toEqual({ events: ['agent_*'], filters: { agentId: 'a' }, snapshot: true });
    acceptSubscribe(ws2, 'sub-2');
    expect(handle.getSnapshot()).toMatchObject({ status: 'active', id: 'sub-1', serverId: 'sub-2' });
    client.close();
  });

  it('a resumed session does not re-subscribe, so no second snapshot is asked for', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await openClient();
    void client.subscribe({ events: ['agent_*'], snapshot: true });
    acceptSubscribe(ws, 'sub-1');
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(1);
    const ws2 = FakeWebSocket.last;
    ws2.open();
    ws2.push(connectFrame({ sessionId: 'sess-1', resumed: true }));
    ws2.push(authSuccess());
    expect(ws2.framesOf('subscribe')).toEqual([]);
    client.close();
  });
});
