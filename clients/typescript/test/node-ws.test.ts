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
});
