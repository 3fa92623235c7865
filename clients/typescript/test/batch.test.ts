/**
 * Batched frames (protocol 1.1, opt-in with `batch: true`): a text frame
 * that is a JSON array carries several envelopes in delivery order, and each
 * is handled exactly as if it had been its own frame.
 */
import { gzipSync } from 'node:zlib';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { parseEnvelope, parseFrame } from '../src/codec.js';
import { AutoSDLCError, ProtocolError } from '../src/errors.js';
import { upgradeUrl } from '../src/handshake.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { acceptSubscribe, authSuccess, connectFrame, event, makeClient, openClient, reply } from './helpers/frames.js';
import { scaled } from './helpers/timeouts.js';

beforeEach(() => FakeWebSocket.reset());
afterEach(() => FakeWebSocket.reset());

describe('parseFrame (plain values)', () => {
  it('a single envelope is a list of one, parsed as parseEnvelope does', () => {
    const text = '{"id":"1","type":"agent_log","timestamp":1}';
    expect(parseFrame(text)).toEqual([parseEnvelope(text)]);
  });

  it('a JSON array is its envelopes in order; a bad element is an error in its place', () => {
    const items = parseFrame(
      JSON.stringify([
        { id: 'a', type: 'agent_log', timestamp: 1, data: { n: 1 } },
        { id: 'b', timestamp: 2 },
        'nonsense',
        { id: 'c', type: 'agent_status', timestamp: 3, data: null },
      ]),
    );
    expect(items).toHaveLength(4);
    expect(items[0]).toEqual({ id: 'a', type: 'agent_log', timestamp: 1, data: { n: 1 } });
    expect(items[1]).toBeInstanceOf(ProtocolError);
    expect(items[1]).toMatchObject({ code: 'invalid_frame', message: 'batch item 1 has no type' });
    expect(items[2]).toMatchObject({ code: 'invalid_frame', message: 'batch item 2 is not a JSON object' });
    expect(items[3]).toEqual({ id: 'c', type: 'agent_status', timestamp: 3, data: {} });
    expect(parseFrame('[]')).toEqual([]);
  });

  it('text that is not JSON, or JSON that is neither object nor array, throws', () => {
    expect(() => parseFrame('[{')).toThrow(expect.objectContaining({ code: 'invalid_frame', message: 'frame is not valid JSON' }));
    expect(() => parseFrame('42')).toThrow(expect.objectContaining({ message: 'frame is not a JSON object' }));
  });

  it('asks with batch=1 on the upgrade URL, with in-band authentication too, only when opted in', () => {
    const none = { sessionId: null, lastEventId: null };
    const inBand = new URL(upgradeUrl('ws://gw/ws', { token: 't' }, none, { inBand: true, authInUrl: false, compression: undefined, batch: true }));
    expect([...inBand.searchParams]).toEqual([['batch', '1']]);
    const inUrl = new URL(upgradeUrl('ws://gw/ws', { token: 't' }, none, { inBand: false, authInUrl: true, compression: undefined, batch: true }));
    expect(inUrl.searchParams.get('batch')).toBe('1');
    expect(inUrl.searchParams.get('token')).toBe('t');
    expect(upgradeUrl('ws://gw/ws', { token: 't' }, none, { inBand: true, authInUrl: false, compression: undefined, batch: false })).toBe(
      'ws://gw/ws',
    );
  });
});

describe('batched frames on the client', () => {
  it('the client option puts batch=1 on the upgrade URL', async () => {
    const { client, ws } = await openClient({ batch: true });
    expect(ws.parsedUrl.searchParams.get('batch')).toBe('1');
    client.close();
    const { client: plain, ws: plainWs } = await openClient();
    expect(plainWs.parsedUrl.search).toBe('');
    plain.close();
  });

  it('dispatches each envelope of a batch in order: replies, dedup, resume position, handlers, bad items', async () => {
    const errors: AutoSDLCError[] = [];
    const { client, ws } = await openClient({ batch: true, onError: (e) => errors.push(e) });
    const seen: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    const updates: string[] = [];
    client.on('subscription_update', (e) => updates.push(e.data.subscriptionId));
    const pending = client.subscribe({ events: ['agent_*'] });
    const req = ws.lastOf('subscribe');
    ws.push([
      reply(req, 'subscription_update', { subscriptionId: 'sub-1', status: 'active', events: ['agent_*'], filters: {} }),
      event('agent_status', 'e1'),
      event('agent_log', 'e2'),
      event('agent_status', 'e1'), // a duplicate inside the same batch
      { id: 'broken', timestamp: 1 },
      event('agent_log', 'e3'),
    ]);
    await expect(pending).resolves.toBe('sub-1');
    expect(updates).toEqual(['sub-1']);
    expect(seen).toEqual(['e1', 'e2', 'e3']);
    expect(client.lastEventId).toBe('e3');
    expect(errors.map((e) => [e.code, e.message])).toEqual([['invalid_frame', 'batch item 4 has no type']]);
    // And across frames: a later single frame repeating a batched id is dropped too.
    ws.push(event('agent_log', 'e2'));
    ws.push([event('agent_log', 'e4')]);
    expect(seen).toEqual(['e1', 'e2', 'e3', 'e4']);
    client.close();
  });

  it('answers a ping inside a batch and handles the handshake frames batched together', async () => {
    const client = makeClient({ batch: true });
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.push([connectFrame(), authSuccess()]);
    await connected;
    expect(client.state).toBe('open');
    const ping = { id: 'p1', type: 'ping', timestamp: 1, data: {} };
    ws.push([event('agent_log', 'e1'), ping]);
    expect(ws.lastOf('pong').metadata).toEqual({ correlationId: 'p1' });
    client.close();
  });

  it('stops at auth_failure in a batch: nothing after it is delivered', async () => {
    const errors: AutoSDLCError[] = [];
    const client = makeClient({ batch: true, onError: (e) => errors.push(e) });
    const seen: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    const connected = client.connect().catch((e: unknown) => e);
    const ws = FakeWebSocket.last;
    ws.open();
    ws.push([
      connectFrame(),
      { id: 'f', type: 'auth_failure', timestamp: 1, data: { code: 'invalid_token', message: 'bad' } },
      event('agent_log', 'after'),
    ]);
    expect(await connected).toMatchObject({ code: 'invalid_token' });
    expect(seen).toEqual([]);
    expect(client.state).toBe('closed');
  });

  it('decodes a gzip binary frame that holds a batch', async () => {
    const { client, ws } = await openClient({ batch: true, compression: 'gzip' });
    const seen: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    const sub = client.subscribe({ events: ['agent_*'] });
    acceptSubscribe(ws, 'sub-1');
    await sub;
    ws.push(new Uint8Array(gzipSync(JSON.stringify([event('agent_log', 'g1'), event('agent_log', 'g2')]))));
    ws.push(event('agent_log', 't3'));
    await vi.waitFor(() => expect(seen).toHaveLength(3), { timeout: scaled(1000) });
    expect(seen).toEqual(['g1', 'g2', 't3']);
    client.close();
  });
});
