/**
 * Snapshot on subscribe (protocol 1.1) against the real Python gateway,
 * started by this file as integration.test.ts does: events published over
 * HTTP before the subscribe arrive first, flagged `metadata.snapshot`, and
 * the live ones after them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { AutoSDLCWebSocketClient } from '../src/client.js';
import type { Envelope } from '../src/types.js';
import { Gateway, recorder, waitFor } from './helpers/gateway.js';
import { scaled } from './helpers/timeouts.js';

const WAIT_MS = scaled(10_000);
const live: AutoSDLCWebSocketClient[] = [];

function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

afterEach(() => {
  for (const client of live.splice(0)) client.close();
});

describe('snapshot on subscribe with the real gateway', { timeout: scaled(20_000) }, () => {
  let gw: Gateway;
  let publisher: string;

  beforeAll(async () => {
    gw = new Gateway();
    await gw.start();
    publisher = gw.token('it-snapshot-publisher', ['publish:*']);
  }, scaled(30_000));

  afterAll(async () => {
    await gw?.stop();
  }, scaled(20_000));

  function connectClient(subject: string): AutoSDLCWebSocketClient {
    const client = new AutoSDLCWebSocketClient({ url: gw.wsUrl, token: gw.token(subject), WebSocket: recorder().WebSocket });
    live.push(client);
    return client;
  }

  it('delivers the latest event per agent first (metadata.snapshot), then live events; only live ones move the resume position', async () => {
    const [a, b] = [unique('snap-a'), unique('snap-b')];
    // a: two statuses, the later one supersedes the first; b: one.
    await gw.publish({ type: 'agent_status', data: { agentId: a, status: 'idle' } }, { token: publisher });
    const [aLatest] = await gw.publish({ type: 'agent_status', data: { agentId: a, status: 'busy' } }, { token: publisher });
    const [bLatest] = await gw.publish({ type: 'agent_status', data: { agentId: b, status: 'offline' } }, { token: publisher });

    const client = connectClient('it-snapshot');
    await client.connect();
    const seen: Envelope[] = [];
    client.on('agent_status', (e) => seen.push(e));
    const id = await client.subscribe({ events: ['agent_status'], filters: { agentId: [a, b] }, snapshot: true });
    expect(client.subscriptions).toEqual([
      { id, serverId: id, events: ['agent_status'], filters: { agentId: [a, b] }, snapshot: true },
    ]);
    await waitFor(() => seen.length >= 2, WAIT_MS, () => `the snapshot (seen ${JSON.stringify(seen)})`);
    // Oldest first, one per agent, each flagged.
    expect(seen.map((e) => [e.id, e.data.agentId, e.data.status, e.metadata?.snapshot])).toEqual([
      [aLatest, a, 'busy', true],
      [bLatest, b, 'offline', true],
    ]);
    expect(client.lastEventId).toBeNull();

    const [liveId] = await gw.publish({ type: 'agent_status', data: { agentId: a, status: 'error' } }, { token: publisher });
    await waitFor(() => seen.length >= 3, WAIT_MS, 'the live event');
    expect(seen[2]).toMatchObject({ id: liveId, data: { agentId: a, status: 'error' } });
    expect(seen[2]!.metadata?.snapshot).toBeUndefined();
    expect(client.lastEventId).toBe(liveId);
    expect(seen).toHaveLength(3);
  });

  it('without snapshot the same subscription gets only live events (1.0 behaviour)', async () => {
    const agentId = unique('no-snap');
    await gw.publish({ type: 'agent_status', data: { agentId, status: 'idle' } }, { token: publisher });
    const client = connectClient('it-no-snapshot');
    await client.connect();
    const seen: Envelope[] = [];
    client.on('agent_status', (e) => seen.push(e));
    await client.subscribe({ events: ['agent_status'], filters: { agentId } });
    const [liveId] = await gw.publish({ type: 'agent_status', data: { agentId, status: 'busy' } }, { token: publisher });
    await waitFor(() => seen.length >= 1, WAIT_MS, 'the live event');
    expect(seen.map((e) => e.id)).toEqual([liveId]);
  });
});
