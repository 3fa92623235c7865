import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { backoffDelay } from '../src/backoff.js';
import { DEFAULTS } from '../src/client.js';
import { closeAction } from '../src/close-codes.js';
import { ConnectionClosedError, ReconnectFailedError } from '../src/errors.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { advanceAnsweringPings, envelope, handshake, makeClient, reply, openClient } from './helpers/frames.js';

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});


describe('backoffDelay (full jitter)', () => {
  const opts = { baseMs: 500, maxMs: 30_000 };

  it('is uniform in [0, min(max, base * 2^attempt))', () => {
    expect(backoffDelay(0, opts, () => 0)).toBe(0);
    expect(backoffDelay(0, opts, () => 0.999999)).toBe(499);
    expect(backoffDelay(1, opts, () => 0.999999)).toBe(999);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(2000);
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const cap = Math.min(30_000, 500 * 2 ** attempt);
      for (const r of [0, 0.25, 0.5, 0.75, 0.9999999]) {
        const d = backoffDelay(attempt, opts, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(cap);
      }
    }
  });

  it('is capped at maxMs however many attempts', () => {
    expect(backoffDelay(7, opts, () => 0.999999)).toBe(29_999);
    expect(backoffDelay(50, opts, () => 0.999999)).toBe(29_999);
    expect(backoffDelay(5000, opts, () => 0.999999)).toBe(29_999);
  });

  it('has the documented defaults', () => {
    expect(DEFAULTS.reconnect).toEqual({ baseMs: 500, maxMs: 30_000, maxAttempts: Infinity, stableAfterMs: 5000 });
    expect(DEFAULTS.queueLimit).toBe(1000);
    expect(DEFAULTS.pongTimeoutMs).toBe(10_000);
    expect(DEFAULTS.authInUrl).toBe(false);
  });
});

describe('reconnect timing', () => {
  it('waits a jittered, growing delay and exposes nextRetryAt', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { client, ws } = await openClient();
    const states: string[] = [];
    client.onStateChange((s) => states.push(s));

    ws.serverClose(1006);
    expect(client.state).toBe('reconnecting');
    expect(client.nextRetryAt).toBe(Date.now() + 250);
    await vi.advanceTimersByTimeAsync(249);
    expect(FakeWebSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(client.nextRetryAt).toBeNull();

    // Second attempt fails before opening: not initial, so it keeps retrying.
    FakeWebSocket.last.failBeforeOpen();
    expect(client.state).toBe('reconnecting');
    expect(client.nextRetryAt).toBe(Date.now() + 500);
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeWebSocket.instances).toHaveLength(3);
    FakeWebSocket.last.failBeforeOpen();
    expect(client.nextRetryAt).toBe(Date.now() + 1000);
    await vi.advanceTimersByTimeAsync(1000);
    handshake();
    expect(client.state).toBe('open');
    expect(states[0]).toBe('reconnecting');
    expect(states[states.length - 1]).toBe('open');
    client.close();
  });

  it('stays within the full-jitter bound and the cap for every attempt', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const { client, ws } = await openClient({ reconnect: { baseMs: 100, maxMs: 1000 } });
    ws.serverClose(1006);
    const delays: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const delay = client.nextRetryAt! - Date.now();
      delays.push(delay);
      await vi.advanceTimersByTimeAsync(delay);
      FakeWebSocket.last.failBeforeOpen();
    }
    expect(delays).toEqual([99, 199, 399, 799, 999, 999, 999, 999]);
    client.close();
  });

  it('resets the attempt counter only after the connection stayed open stableAfterMs', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const { client, ws } = await openClient({ reconnect: { baseMs: 100, maxMs: 10_000, stableAfterMs: 5000 } });
    ws.serverClose(1006); // attempt 0 -> <100
    expect(client.nextRetryAt! - Date.now()).toBe(99);
    await vi.advanceTimersByTimeAsync(99);
    let cur = handshake();
    // Open, but not for long: the counter keeps growing.
    await advanceAnsweringPings(cur, 4000);
    cur.serverClose(1006);
    expect(client.nextRetryAt! - Date.now()).toBe(199);
    await vi.advanceTimersByTimeAsync(199);
    cur = handshake();
    await advanceAnsweringPings(cur, 5000);
    cur.serverClose(1006);
    // Stable for 5 s: back to the first delay.
    expect(client.nextRetryAt! - Date.now()).toBe(99);
    client.close();
  });

  it('gives up after maxAttempts with a ReconnectFailedError', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await openClient({ reconnect: { maxAttempts: 2 } });
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    ws.serverClose(1011);
    await vi.advanceTimersByTimeAsync(0);
    FakeWebSocket.last.failBeforeOpen();
    await vi.advanceTimersByTimeAsync(0);
    FakeWebSocket.last.failBeforeOpen();
    expect(client.state).toBe('closed');
    expect(errors).toEqual([expect.any(ReconnectFailedError)]);
    expect(FakeWebSocket.instances).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close() during the wait cancels the retry and leaves no timers', async () => {
    const { client, ws } = await openClient();
    ws.serverClose(1006);
    expect(vi.getTimerCount()).toBe(1);
    client.close();
    expect(client.state).toBe('closed');
    expect(client.nextRetryAt).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });
});

describe('close codes (contract §6)', () => {
  it.each([1000, 1001, 1006, 1011, 1013, 4008, 4500, 3000])('reconnects after %i', async (code) => {
    const { client, ws } = await openClient();
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    ws.serverClose(code, 'bye');
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(errors).toEqual([]);
    client.close();
  });

  it.each([
    [1008, 'policy_violation'],
    [1009, 'too_large'],
    [4001, 'unauthorized'],
  ])('stops and reports after %i', async (code, errorCode) => {
    const { client, ws } = await openClient();
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    ws.serverClose(code, 'nope');
    expect(client.state).toBe('closed');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ConnectionClosedError);
    expect(errors[0]).toMatchObject({ code: errorCode, closeCode: code, reason: 'nope' });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops after 4003 when there is no getToken', async () => {
    const { client, ws } = await openClient();
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    ws.serverClose(4003, 'token expired');
    expect(client.state).toBe('closed');
    expect(errors).toEqual([expect.objectContaining({ code: 'token_expired', closeCode: 4003 })]);
  });

  it('reconnects after 4003 with a fresh token from getToken', async () => {
    let n = 0;
    const client = makeClient({ token: undefined, getToken: () => `tok-${++n}` });
    const connected = client.connect();
    handshake();
    await connected;
    FakeWebSocket.last.serverClose(4003);
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    const ws = FakeWebSocket.last;
    ws.open();
    expect(ws.frames[0]!.data).toMatchObject({ token: 'tok-2' });
    client.close();
  });

  it('a close during the first handshake with a stop code rejects connect()', async () => {
    const client = makeClient();
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.serverClose(4001, 'auth timeout');
    await expect(connected).rejects.toMatchObject({ code: 'unauthorized', closeCode: 4001 });
  });

  it('a retryable close during the first handshake keeps connect() pending until it succeeds', async () => {
    const client = makeClient();
    const connected = client.connect();
    FakeWebSocket.last.open();
    FakeWebSocket.last.serverClose(1013);
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    handshake();
    await expect(connected).resolves.toBeUndefined();
    client.close();
  });

  it('follows the disconnect frame: reconnect true reconnects, false stops', async () => {
    const { client, ws } = await openClient();
    ws.push(envelope('disconnect', { reason: 'shutdown', reconnect: true }));
    ws.serverClose(1001);
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    const ws2 = handshake();
    ws2.push(envelope('disconnect', { reason: 'banned', reconnect: false }));
    ws2.serverClose(1001);
    expect(client.state).toBe('closed');
    expect(client.lastError).toMatchObject({ code: 'server_disconnect', reason: 'banned' });
  });

  it('closeAction classifies codes', () => {
    expect([1001, 1006, 1011, 1013, 4008, 1000, 4321].map(closeAction)).toEqual(Array(7).fill('reconnect'));
    expect([1008, 1009, 4001].map(closeAction)).toEqual(['stop', 'stop', 'stop']);
    expect(closeAction(4003)).toBe('refresh');
  });

  it('a refused upgrade on reconnect (HTTP 401) stops instead of retrying', async () => {
    const { client, ws } = await openClient();
    ws.serverClose(1006);
    await vi.advanceTimersByTimeAsync(DEFAULTS.reconnect.baseMs);
    FakeWebSocket.last.failBeforeOpen('Unexpected server response: 401');
    expect(client.state).toBe('closed');
    expect(client.lastError).toMatchObject({ code: 'unauthorized', statusCode: 401 });
  });
});

describe('close() from the application', () => {
  it('close(4000) is a normal close: the code goes to the server as is, no terminate, no reconnect', async () => {
    const { client, ws } = await openClient();
    const terminate = vi.fn();
    Object.assign(ws, { terminate });
    client.close(4000, 'app says bye');
    expect(ws.closedWith).toEqual({ code: 4000, reason: 'app says bye' });
    expect(terminate).not.toHaveBeenCalled();
    expect(client.state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('a dead link is dropped with terminate() where the socket has it (Node ws), not closed', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const client = makeClient({ pongTimeoutMs: 500 });
    const connected = client.connect();
    const ws = handshake({ heartbeatInterval: 1000 });
    await connected;
    const terminate = vi.fn();
    Object.assign(ws, { terminate });
    await vi.advanceTimersByTimeAsync(1500);
    expect(terminate).toHaveBeenCalledOnce();
    expect(ws.closedWith).toBeNull();
    expect(client.state).toBe('reconnecting');
    client.close();
  });
});

describe('heartbeat', () => {
  it('sends application pings every heartbeatInterval', async () => {
    const { client, ws } = await openClient();
    ws.push(envelope('noop', {}));
    await vi.advanceTimersByTimeAsync(0);
    const start = ws.framesOf('ping').length;
    await advanceAnsweringPings(ws, 25_000, 5000);
    expect(ws.framesOf('ping').length - start).toBe(1);
    await advanceAnsweringPings(ws, 50_000, 5000);
    expect(ws.framesOf('ping').length - start).toBe(3);
    expect(client.state).toBe('open');
    client.close();
  });

  it('uses the heartbeatInterval of the connect frame', async () => {
    const client = makeClient();
    const connected = client.connect();
    const ws = handshake({ heartbeatInterval: 1000 });
    await connected;
    await advanceAnsweringPings(ws, 3000, 100);
    expect(ws.framesOf('ping')).toHaveLength(3);
    client.close();
  });

  it('closes a silent connection after heartbeatInterval + pongTimeout and reconnects', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const client = makeClient({ pongTimeoutMs: 500 });
    const connected = client.connect();
    const ws = handshake({ heartbeatInterval: 1000 });
    await connected;
    // Pongs keep it alive.
    await advanceAnsweringPings(ws, 5000, 100);
    expect(client.state).toBe('open');
    // Now the network goes silent: ping at +1000, declared dead at +1500.
    await vi.advanceTimersByTimeAsync(1499);
    expect(client.state).toBe('open');
    expect(ws.closedWith).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.closedWith?.code).toBe(4000);
    expect(client.state).toBe('reconnecting');
    // (a zero timeout set inside a timer callback fires 1 ms later)
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    // The dead socket's late close event is ignored.
    ws.serverClose(1006);
    expect(FakeWebSocket.instances).toHaveLength(2);
    client.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('any frame, not only pong, counts as a sign of life', async () => {
    const client = makeClient({ pongTimeoutMs: 500 });
    const connected = client.connect();
    const ws = handshake({ heartbeatInterval: 1000 });
    await connected;
    for (let i = 0; i < 10; i += 1) {
      await vi.advanceTimersByTimeAsync(1400);
      ws.push(envelope('agent_log', { agentId: 'a' }));
    }
    expect(client.state).toBe('open');
    client.close();
  });

  it('a connect attempt that hangs is abandoned by the same watchdog', async () => {
    const client = makeClient({ pongTimeoutMs: 1000 });
    const connected = client.connect();
    const caught = connected.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(DEFAULTS.heartbeatIntervalMs + 1000);
    expect(await caught).toMatchObject({ code: 'connect_failed' });
    expect(FakeWebSocket.last.closedWith?.code).toBe(4000);
  });

  it('pong replies are correlated by the server, not required by the client', async () => {
    const { client, ws } = await openClient();
    await vi.advanceTimersByTimeAsync(25_000);
    const ping = ws.lastOf('ping');
    ws.push(reply(ping, 'pong', {}));
    expect(client.state).toBe('open');
    client.close();
  });
});
