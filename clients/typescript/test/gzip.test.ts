import { gzipSync } from 'node:zlib';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { binaryFrameToText } from '../src/codec.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { scaled } from './helpers/timeouts.js';
import { event, handshake, makeClient, openClient } from './helpers/frames.js';

// Real timers: DecompressionStream schedules its work on the event loop.
beforeEach(() => FakeWebSocket.reset());
afterEach(() => FakeWebSocket.reset());

function gz(obj: object): Uint8Array {
  return new Uint8Array(gzipSync(Buffer.from(JSON.stringify(obj))));
}

function bigEvent(id: string, kb: number) {
  return {
    ...event('agent_log', id, { agentId: 'coder-001', lines: 'x'.repeat(kb * 1024) }),
    metadata: { compressed: true },
  };
}


describe('gzip frames', () => {
  it('decodes binary gzip frames and keeps arrival order with text frames in between', async () => {
    const { client, ws } = await openClient({ compression: 'gzip' });
    const seen: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    // A large compressed frame takes longer to inflate than the small ones after it.
    ws.push(gz(bigEvent('g1', 512)));
    ws.push(event('agent_log', 't2'));
    ws.push(gz(bigEvent('g3', 2)).buffer as ArrayBuffer);
    ws.push(event('agent_log', 't4'));
    ws.push(Buffer.from(gzipSync(JSON.stringify(event('agent_log', 'g5')))));
    ws.push(new Blob([gz(event('agent_log', 'g6')) as Uint8Array<ArrayBuffer>]));
    ws.push(new TextEncoder().encode(JSON.stringify(event('agent_log', 'b7'))));
    await vi.waitFor(() => expect(seen).toHaveLength(7), { timeout: scaled(1000) });
    expect(seen).toEqual(['g1', 't2', 'g3', 't4', 'g5', 'g6', 'b7']);
    client.close();
  });

  it('delivers the whole envelope of a compressed frame', async () => {
    const { client, ws } = await openClient({ compression: 'gzip' });
    const got: unknown[] = [];
    client.on('agent_log', (e) => got.push(e));
    const original = bigEvent('g1', 4);
    ws.push(gz(original));
    await vi.waitFor(() => expect(got).toHaveLength(1), { timeout: scaled(1000) });
    expect(got[0]).toEqual(original);
    client.close();
  });

  it('reports a corrupt gzip frame and keeps going, in order', async () => {
    const { client, ws } = await openClient({ compression: 'gzip' });
    const seen: string[] = [];
    const errors: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    client.onError((e) => errors.push(e.code));
    const broken = gz(event('agent_log', 'lost'));
    const at = broken.length - 6;
    broken[at] = broken[at]! ^ 0xff; // break the CRC
    ws.push(gz(bigEvent('a', 64)));
    ws.push(broken.slice(0, 20));
    ws.push(event('agent_log', 'b'));
    await vi.waitFor(() => expect(seen).toHaveLength(2), { timeout: scaled(1000) });
    expect(seen).toEqual(['a', 'b']);
    expect(errors).toEqual(['invalid_frame']);
    client.close();
  });

  it('processes a close after the frames that arrived before it', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { client, ws } = await openClient({ compression: 'gzip' });
    const seen: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    ws.push(gz(bigEvent('last-words', 256)));
    ws.serverClose(1001);
    expect(client.state).toBe('open'); // still decoding
    await vi.waitFor(() => expect(client.state).toBe('reconnecting'), { timeout: scaled(1000) });
    expect(seen).toEqual(['last-words']);
    expect(client.lastEventId).toBe('last-words');
    client.close();
  });

  it('caps the decompressed size', async () => {
    const bomb = gzipSync(Buffer.alloc(2 * 1024 * 1024, 0x20));
    await expect(binaryFrameToText(new Uint8Array(bomb), 1024 * 1024)).rejects.toMatchObject({ code: 'invalid_frame' });
  });
});
