import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AuthError, ConnectError, InvalidArgumentError } from '../src/errors.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { advanceAnsweringPings, authSuccess, connectFrame, flush, handshake, makeClient } from './helpers/frames.js';

beforeEach(() => FakeWebSocket.reset());
afterEach(() => FakeWebSocket.reset());

describe('in-band authentication (the default)', () => {
  it('keeps credentials out of the URL and sends auth_request first', async () => {
    const client = makeClient({ token: 'secret-jwt' });
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    expect(client.state).toBe('connecting');
    expect(ws.url).toBe('ws://gateway.test/ws');
    expect(ws.parsedUrl.search).toBe('');
    expect(ws.binaryType).toBe('arraybuffer');

    ws.open();
    expect(ws.frames).toHaveLength(1);
    const auth = ws.frames[0]!;
    expect(auth.type).toBe('auth_request');
    expect(auth.data).toEqual({ token: 'secret-jwt' });
    expect(typeof auth.id).toBe('string');
    expect(typeof auth.timestamp).toBe('number');

    ws.push(connectFrame());
    // The first connect frame arrives before authentication: not open yet.
    expect(client.state).toBe('connecting');
    ws.push(authSuccess());
    await connected;
    expect(client.state).toBe('open');
    expect(client.isConnected).toBe(true);
    expect(client.sessionId).toBe('sess-1');
    expect(client.connectionId).toBe('conn-1');
    expect(client.auth).toEqual({ subject: 'user-1', permissions: ['read:*'], expiresAt: null });
    expect(client.limits).toEqual({ maxFrameBytes: 65536 });
    client.close();
  });

  it('uses apiKey when there is no token, and asks for gzip in-band', async () => {
    const client = makeClient({ token: undefined, apiKey: 'key-1', compression: 'gzip' });
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    expect(ws.frames[0]!.data).toEqual({ apiKey: 'key-1', compression: 'gzip' });
    expect(ws.parsedUrl.search).toBe('');
    ws.push(connectFrame());
    ws.push(authSuccess());
    await connected;
    client.close();
  });

  it('calls getToken (sync or async) before each attempt', async () => {
    let n = 0;
    const client = makeClient({ token: undefined, getToken: async () => `tok-${++n}` });
    const connected = client.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    expect(ws.frames[0]!.data).toEqual({ token: 'tok-1' });
    ws.push(connectFrame());
    ws.push(authSuccess());
    await connected;
    client.close();
  });

  it('rejects connect() with an AuthError on auth_failure, without retrying', async () => {
    const client = makeClient();
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.push(connectFrame());
    ws.push({ id: 'x', type: 'auth_failure', timestamp: 1, data: { code: 'invalid_token', message: 'bad signature' } });
    await expect(connected).rejects.toSatisfy((e: unknown) => e instanceof AuthError && e.code === 'invalid_token');
    expect(client.state).toBe('closed');
    expect(ws.closedWith?.code).toBe(1000);
    expect(errors).toHaveLength(1);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('rejects when getToken throws on the first attempt', async () => {
    const client = makeClient({ token: undefined, getToken: () => Promise.reject(new Error('no session')) });
    await expect(client.connect()).rejects.toMatchObject({ code: 'token_provider_failed' });
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(client.state).toBe('closed');
  });

  it('treats the last connect frame before auth_success as authoritative', async () => {
    const client = makeClient();
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.push(connectFrame({ sessionId: 'unauthenticated', connectionId: 'c-a', heartbeatInterval: 25000 }));
    ws.push(connectFrame({ sessionId: 'real-session', connectionId: 'c-b', heartbeatInterval: 15000 }));
    ws.push(authSuccess());
    await connected;
    expect(client.sessionId).toBe('real-session');
    expect(client.connectionId).toBe('c-b');
    client.close();
  });
});

describe('authentication in the URL (authInUrl: true)', () => {
  it('puts token and compression in the query and sends no auth_request', async () => {
    const client = makeClient({ token: 'node-jwt', authInUrl: true, compression: 'gzip' });
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    expect(ws.parsedUrl.searchParams.get('token')).toBe('node-jwt');
    expect(ws.parsedUrl.searchParams.get('compression')).toBe('gzip');
    expect(ws.parsedUrl.searchParams.has('session_id')).toBe(false);
    ws.open();
    expect(ws.sent).toHaveLength(0);
    ws.push(connectFrame());
    expect(client.state).toBe('connecting');
    ws.push(authSuccess());
    await connected;
    expect(client.state).toBe('open');
    client.close();
  });

  it('uses api_key for API keys and keeps existing query parameters', () => {
    const client = makeClient({ url: 'ws://gateway.test/ws?tenant=a', token: undefined, apiKey: 'k', authInUrl: true });
    void client.connect().catch(() => undefined);
    const params = FakeWebSocket.last.parsedUrl.searchParams;
    expect(params.get('api_key')).toBe('k');
    expect(params.get('tenant')).toBe('a');
    expect(params.has('token')).toBe(false);
    client.close();
  });
});

describe('without credentials', () => {
  it('resolves connect() on the connect frame', async () => {
    const client = makeClient({ token: undefined });
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    expect(ws.sent).toHaveLength(0);
    ws.push(connectFrame());
    await connected;
    expect(client.state).toBe('open');
    client.close();
  });
});

describe('refused upgrades', () => {
  it('rejects connect() when the first attempt never opens (browser: 1006 before open)', async () => {
    const client = makeClient();
    const connected = client.connect();
    FakeWebSocket.last.failBeforeOpen();
    const err = await connected.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(err).toMatchObject({ code: 'connect_failed', closeCode: 1006 });
    expect(client.state).toBe('closed');
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('reports HTTP 401 with its status when the runtime exposes it (Node ws)', async () => {
    const client = makeClient();
    const connected = client.connect();
    FakeWebSocket.last.failBeforeOpen('Unexpected server response: 401');
    await expect(connected).rejects.toMatchObject({ name: 'ConnectError', code: 'unauthorized', statusCode: 401 });
  });

  it('reports HTTP 403 as forbidden', async () => {
    const client = makeClient();
    const connected = client.connect();
    FakeWebSocket.last.failBeforeOpen('Unexpected server response: 403');
    await expect(connected).rejects.toMatchObject({ code: 'forbidden', statusCode: 403 });
  });

  it('fails connect() clearly without any WebSocket implementation', async () => {
    const client = makeClient({ WebSocket: undefined });
    if ((globalThis as { WebSocket?: unknown }).WebSocket) return; // Node >= 22 has one
    await expect(client.connect()).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('connect() lifecycle', () => {
  it('returns the same promise while connecting and resolves at once when open', async () => {
    const client = makeClient();
    const a = client.connect();
    const b = client.connect();
    expect(a).toBe(b);
    handshake();
    await a;
    await client.connect();
    expect(FakeWebSocket.instances).toHaveLength(1);
    client.close();
  });

  it('close() rejects a pending connect() and closes the socket', async () => {
    const client = makeClient();
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    client.close();
    await expect(connected).rejects.toMatchObject({ code: 'client_closed' });
    expect(ws.closedWith).toEqual({ code: 1000, reason: '' });
    expect(client.state).toBe('closed');
  });

  it('can connect again after close()', async () => {
    const client = makeClient();
    const first = client.connect();
    handshake();
    await first;
    client.close();
    const second = client.connect();
    expect(client.state).toBe('connecting');
    handshake();
    await second;
    expect(client.state).toBe('open');
    expect(FakeWebSocket.instances).toHaveLength(2);
    // A fresh session: no resume parameters.
    expect(FakeWebSocket.last.frames[0]!.data).toEqual({ token: 'jwt-token' });
    client.close();
  });

  it('refreshes the token in-band before it expires (getToken)', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    try {
      let n = 0;
      const client = makeClient({ token: undefined, getToken: () => `tok-${++n}`, tokenRefreshMarginMs: 30_000 });
      const connected = client.connect();
      const ws = FakeWebSocket.last;
      ws.open();
      ws.push(connectFrame());
      ws.push(authSuccess(1_000_000 + 120_000));
      await connected;
      await advanceAnsweringPings(ws, 89_000);
      expect(ws.framesOf('auth_request')).toHaveLength(1);
      await advanceAnsweringPings(ws, 1_000);
      const refresh = ws.framesOf('auth_request');
      expect(refresh).toHaveLength(2);
      expect(refresh[1]!.data).toEqual({ token: 'tok-2' });
      ws.push(authSuccess(1_000_000 + 300_000));
      expect(client.auth?.expiresAt).toBe(1_300_000);
      expect(client.state).toBe('open');
      client.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
