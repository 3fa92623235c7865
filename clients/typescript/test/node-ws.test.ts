/**
 * The client against Node's `ws` package over loopback: proves the
 * WebSocketLike contract holds for `ws` (the documented Node.js setup) and
 * that a refused upgrade surfaces its HTTP status. The server here is a tiny
 * scripted stand-in, not the real gateway (see integration.test.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';

import { AutoSDLCWebSocketClient } from '../src/client.js';
import type { Envelope } from '../src/types.js';

let server: Server | null = null;
let wss: WebSocketServer | null = null;

afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  wss?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
  wss = null;
});

function listen(onUpgrade: (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void) {
  server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  server.on('upgrade', onUpgrade);
  return new Promise<string>((resolve) => {
    server!.listen(0, '127.0.0.1', () => resolve(`ws://127.0.0.1:${(server!.address() as AddressInfo).port}/ws`));
  });
}

describe('with the ws package', () => {
  it('rejects connect() with the HTTP status and server error code of a refused upgrade', async () => {
    const url = await listen((_req, socket) => {
      const body = JSON.stringify({ error: { code: 'unauthorized', message: 'token expired' } });
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    const client = new AutoSDLCWebSocketClient({ url, token: 'expired', authInUrl: true, WebSocket });
    await expect(client.connect()).rejects.toMatchObject({
      name: 'ConnectError',
      code: 'unauthorized',
      statusCode: 401,
      serverCode: 'unauthorized',
    });
    expect(client.state).toBe('closed');
  });

  it('also rejects when the server keeps the connection alive after the 401 (as aiohttp does)', async () => {
    let serverSide: import('node:stream').Duplex | null = null;
    const url = await listen((_req, socket) => {
      serverSide = socket;
      const body = JSON.stringify({ error: { code: 'unauthorized', message: 'token signature does not verify' } });
      // No `Connection: close` and no end(): the response completes, the socket stays open.
      socket.write(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    const client = new AutoSDLCWebSocketClient({ url, token: 'bad', authInUrl: true, WebSocket });
    await expect(client.connect()).rejects.toMatchObject({ code: 'unauthorized', statusCode: 401, serverCode: 'unauthorized' });
    expect(client.state).toBe('closed');
    (serverSide as import('node:stream').Duplex | null)?.destroy();
  });

  it('authenticates in-band, subscribes and receives an event', async () => {
    wss = new WebSocketServer({ noServer: true });
    const received: Envelope[] = [];
    wss.on('connection', (sock) => {
      const send = (type: string, data: object, correlationId?: string) =>
        sock.send(JSON.stringify({ id: `s-${Math.random()}`, type, timestamp: Date.now(), data, metadata: correlationId ? { correlationId } : undefined }));
      send('connect', { connectionId: 'c1', sessionId: 's1', heartbeatInterval: 25000, protocolVersion: '1.0', resumed: false, limits: { maxFrameBytes: 65536 } });
      sock.on('message', (raw) => {
        const msg = JSON.parse(String(raw)) as Envelope;
        received.push(msg);
        if (msg.type === 'auth_request') send('auth_success', { subject: 'u', permissions: ['read:*'], expiresAt: null }, msg.id);
        if (msg.type === 'subscribe') {
          send('subscription_update', { subscriptionId: 'sub-1', status: 'active', events: ['agent_*'], filters: {} }, msg.id);
          send('agent_status', { agentId: 'coder-001', status: 'busy' });
        }
      });
    });
    const url = await listen((req, socket, head) => wss!.handleUpgrade(req, socket, head, (ws) => wss!.emit('connection', ws, req)));
    const client = new AutoSDLCWebSocketClient({ url, token: 'good', WebSocket });
    await client.connect();
    const event = new Promise<Envelope>((resolve) => client.on('agent_status', resolve));
    await expect(client.subscribe({ events: ['agent_*'] })).resolves.toBe('sub-1');
    expect((await event).data).toEqual({ agentId: 'coder-001', status: 'busy' });
    expect(received[0]).toMatchObject({ type: 'auth_request', data: { token: 'good' } });
    client.close();
  });

  it('with batch: true, asks with batch=1 on the real upgrade and handles a batched text frame envelope by envelope', async () => {
    wss = new WebSocketServer({ noServer: true });
    let upgradePath = '';
    wss.on('connection', (sock) => {
      const env = (type: string, data: object, correlationId?: string, id = `s-${Math.random()}`) => ({
        id,
        type,
        timestamp: Date.now(),
        data,
        ...(correlationId ? { metadata: { correlationId } } : {}),
      });
      sock.send(JSON.stringify(env('connect', { connectionId: 'c1', sessionId: 's1', heartbeatInterval: 25000, protocolVersion: '1.1', resumed: false, limits: { maxFrameBytes: 65536 } })));
      sock.on('message', (raw) => {
        const msg = JSON.parse(String(raw)) as Envelope;
        if (msg.type === 'auth_request') sock.send(JSON.stringify(env('auth_success', { subject: 'u', permissions: ['read:*'], expiresAt: null }, msg.id)));
        if (msg.type === 'subscribe') {
          // The reply and three events in one frame, as a batching gateway writes them.
          sock.send(
            JSON.stringify([
              env('subscription_update', { subscriptionId: 'sub-1', status: 'active', events: ['agent_*'], filters: {} }, msg.id),
              env('agent_status', { agentId: 'a', status: 'busy' }, undefined, 'e1'),
              env('agent_log', { agentId: 'a', level: 'info', message: 'x' }, undefined, 'e2'),
              env('agent_status', { agentId: 'a', status: 'idle' }, undefined, 'e3'),
            ]),
          );
        }
      });
    });
    const url = await listen((req, socket, head) => {
      upgradePath = req.url ?? '';
      wss!.handleUpgrade(req, socket, head, (ws) => wss!.emit('connection', ws, req));
    });
    const client = new AutoSDLCWebSocketClient({ url, token: 'good', WebSocket, batch: true });
    await client.connect();
    expect(upgradePath).toBe('/ws?batch=1');
    const seen: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on('agent_*', (e) => {
        seen.push(`${e.id}:${e.type}`);
        if (seen.length === 3) resolve();
      }),
    );
    await expect(client.subscribe({ events: ['agent_*'] })).resolves.toBe('sub-1');
    await all;
    expect(seen).toEqual(['e1:agent_status', 'e2:agent_log', 'e3:agent_status']);
    expect(client.lastEventId).toBe('e3');
    client.close();
  });
});
