import { AutoSDLCWebSocketClient, type ClientConfig } from '../../src/client.js';
import type { Envelope } from '../../src/types.js';
import { FakeWebSocket } from './fake-websocket.js';

let seq = 0;

export function envelope(type: string, data: Record<string, unknown>, extra: Partial<Envelope> = {}): Envelope {
  seq += 1;
  return { id: `srv-${seq}`, type, timestamp: 1703775135000 + seq, data, ...extra };
}

export function connectFrame(data: Record<string, unknown> = {}): Envelope {
  return envelope('connect', {
    connectionId: 'conn-1',
    sessionId: 'sess-1',
    heartbeatInterval: 25000,
    protocolVersion: '1.0',
    resumed: false,
    limits: { maxFrameBytes: 65536 },
    ...data,
  });
}

export function authSuccess(expiresAt: number | null = null): Envelope {
  return envelope('auth_success', { subject: 'user-1', permissions: ['read:*'], expiresAt });
}

export function event(type: string, id: string, data: Record<string, unknown> = { agentId: 'coder-001' }): Envelope {
  return { id, type, timestamp: 1703775135000, data };
}

/** A reply correlated to `request`. */
export function reply(request: Envelope, type: string, data: Record<string, unknown>): Envelope {
  return envelope(type, data, { metadata: { version: '1.0', correlationId: request.id } });
}

export function makeClient(config: Partial<ClientConfig> = {}): AutoSDLCWebSocketClient {
  return new AutoSDLCWebSocketClient({
    url: 'ws://gateway.test/ws',
    token: 'jwt-token',
    WebSocket: FakeWebSocket,
    ...config,
  });
}

/** Opens the newest socket and completes an in-band handshake on it. */
export function handshake(connect: Record<string, unknown> = {}, ws: FakeWebSocket = FakeWebSocket.last): FakeWebSocket {
  ws.open();
  ws.push(connectFrame(connect));
  ws.push(authSuccess());
  return ws;
}

/** Answers the newest subscribe request on `ws` with an active subscription. */
export function acceptSubscribe(ws: FakeWebSocket, subscriptionId: string, request?: Envelope): Envelope {
  const req = request ?? ws.lastOf('subscribe');
  ws.push(
    reply(req, 'subscription_update', {
      subscriptionId,
      status: 'active',
      events: (req.data as { events: string[] }).events,
      filters: (req.data as { filters?: unknown }).filters ?? {},
    }),
  );
  return req;
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await Promise.resolve();
}

/**
 * Advances fake time in steps while the "server" answers every ping with a
 * pong, so the heartbeat watchdog sees a live connection.
 */
export async function advanceAnsweringPings(ws: FakeWebSocket, ms: number, stepMs = 1000): Promise<void> {
  const { vi } = await import('vitest');
  let answered = ws.framesOf('ping').length;
  for (let t = 0; t < ms; t += stepMs) {
    await vi.advanceTimersByTimeAsync(Math.min(stepMs, ms - t));
    const pings = ws.framesOf('ping');
    for (; answered < pings.length; answered += 1) ws.push(reply(pings[answered]!, 'pong', {}));
  }
}

/** A client connected through the scripted handshake, and its fake socket. */
export async function openClient(
  config: Partial<ClientConfig> = {},
): Promise<{ client: AutoSDLCWebSocketClient; ws: FakeWebSocket }> {
  const client = makeClient(config);
  const connected = client.connect();
  const ws = handshake();
  await connected;
  return { client, ws };
}
