/** The client's parts on their own, driven with plain values (no socket unless a part owns one). */
import { afterEach, describe, expect, it, vi } from 'vitest';

import { closeOutcome, type CloseFacts } from '../src/close-codes.js';
import { reconnectOptions } from '../src/config.js';
import { deferred } from '../src/deferred.js';
import { AutoSDLCError, QueueFullError, ServerError } from '../src/errors.js';
import { HandlerRegistry } from '../src/handlers.js';
import { tokenRefreshDelay } from '../src/keepalive.js';
import { authRequestData, currentCredentials, upgradeUrl } from '../src/handshake.js';
import { OfflineQueue } from '../src/offline-queue.js';
import { RequestTracker, type PendingRequest } from '../src/requests.js';
import { ClientSession } from '../src/session.js';
import { SubscriptionManager, subscribeConfigProblem, type SubscriptionWire } from '../src/subscription-manager.js';
import { SubscriptionRegistry } from '../src/subscriptions.js';
import { NamedTimers } from '../src/timers.js';
import { detachSocket, DEAD_LINK_CLOSE_CODE, serverCodeFromBody, statusFromMessage } from '../src/transport.js';
import type { Envelope } from '../src/types.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';

afterEach(() => {
  vi.useRealTimers();
});

const env = (type: string, id = `e-${type}`): Envelope => ({ id, type, timestamp: 1, data: {} });

describe('closeOutcome (what a close means, contract §6)', () => {
  const facts = (change: Partial<CloseFacts>): CloseFacts => ({
    code: 1006,
    reason: '',
    opened: true,
    initial: false,
    httpStatus: undefined,
    serverCode: undefined,
    disconnect: null,
    canRefreshToken: false,
    url: 'ws://gw/ws',
    ...change,
  });

  it('reconnects after a drop of an open connection', () => {
    expect(closeOutcome(facts({ code: 1006 }))).toEqual({ action: 'reconnect' });
    expect(closeOutcome(facts({ code: 4000 }))).toEqual({ action: 'reconnect' });
  });

  it('stops on the stop codes, and on 4003 unless a fresh token can be had', () => {
    expect(closeOutcome(facts({ code: 1008, reason: 'x' }))).toMatchObject({ action: 'stop', error: { code: 'policy_violation', closeCode: 1008 } });
    expect(closeOutcome(facts({ code: 4003 }))).toMatchObject({ action: 'stop', error: { closeCode: 4003 } });
    expect(closeOutcome(facts({ code: 4003, canRefreshToken: true }))).toEqual({ action: 'reconnect' });
  });

  it('follows a disconnect frame that says not to reconnect', () => {
    const out = closeOutcome(facts({ code: 1001, disconnect: { reason: 'banned', reconnect: false } }));
    expect(out).toMatchObject({ action: 'stop', error: { code: 'server_disconnect', reason: 'banned' } });
  });

  it('a refused upgrade stops with the HTTP status and server code; a first attempt that never opened stops', () => {
    const refused = closeOutcome(facts({ opened: false, httpStatus: 403, serverCode: 'origin_not_allowed' }));
    expect(refused).toMatchObject({ action: 'stop', error: { code: 'forbidden', statusCode: 403, serverCode: 'origin_not_allowed' } });
    expect(closeOutcome(facts({ opened: false, initial: true }))).toMatchObject({ action: 'stop', error: { code: 'connect_failed' } });
    expect(closeOutcome(facts({ opened: false, initial: false }))).toEqual({ action: 'reconnect' });
  });
});

describe('transport', () => {
  it('detachSocket closes with the caller code (4000 included), and drops a dead link', () => {
    const closing = new FakeWebSocket('ws://gw/ws');
    const terminate = vi.fn();
    Object.assign(closing, { terminate });
    detachSocket(closing, { kind: 'close', code: 4000, reason: 'app' });
    expect(closing.closedWith).toEqual({ code: 4000, reason: 'app' });
    expect(terminate).not.toHaveBeenCalled();

    const dead = new FakeWebSocket('ws://gw/ws');
    const kill = vi.fn();
    Object.assign(dead, { terminate: kill });
    detachSocket(dead, { kind: 'drop', reason: 'heartbeat timeout' });
    expect(kill).toHaveBeenCalledOnce();
    expect(dead.closedWith).toBeNull();

    const browser = new FakeWebSocket('ws://gw/ws');
    detachSocket(browser, { kind: 'drop', reason: 'heartbeat timeout' });
    expect(browser.closedWith).toEqual({ code: DEAD_LINK_CLOSE_CODE, reason: 'heartbeat timeout' });
  });

  it('reads the status and the server code of a refused upgrade', () => {
    expect(statusFromMessage('Unexpected server response: 401')).toBe(401);
    expect(statusFromMessage('socket hang up')).toBeUndefined();
    expect(serverCodeFromBody('{"error":{"code":"invalid_token"}}')).toBe('invalid_token');
    expect(serverCodeFromBody('<html>')).toBeUndefined();
  });
});

describe('handshake', () => {
  const none = { sessionId: null, lastEventId: null };

  it('puts credentials in the URL only with authInUrl, and nothing but the URL when in-band', () => {
    const resume = { sessionId: 's1', lastEventId: 'e9' };
    expect(upgradeUrl('https://gw/ws', { token: 't' }, resume, { inBand: true, authInUrl: false, compression: 'gzip' })).toBe('wss://gw/ws');
    const url = new URL(upgradeUrl('http://gw/ws', { apiKey: 'k' }, resume, { inBand: false, authInUrl: true, compression: 'gzip' }));
    expect(Object.fromEntries(url.searchParams)).toEqual({ api_key: 'k', session_id: 's1', last_event_id: 'e9', compression: 'gzip' });
    expect(upgradeUrl('ws://gw/ws', {}, none, { inBand: false, authInUrl: false, compression: undefined })).toBe('ws://gw/ws');
  });

  it('builds the auth_request data, with the resume point when there is a session', () => {
    expect(authRequestData({ token: 't' }, none, undefined)).toEqual({ token: 't' });
    expect(authRequestData({ apiKey: 'k' }, { sessionId: 's', lastEventId: 'e' }, 'gzip')).toEqual({
      apiKey: 'k',
      sessionId: 's',
      lastEventId: 'e',
      compression: 'gzip',
    });
  });

  it('takes getToken over token over apiKey', async () => {
    expect(currentCredentials({ token: 't', apiKey: 'k' })).toEqual({ token: 't' });
    expect(currentCredentials({ apiKey: 'k' })).toEqual({ apiKey: 'k' });
    expect(currentCredentials({ getToken: () => 'g', token: 't' })).toEqual({ token: 'g' });
    await expect(currentCredentials({ getToken: async () => 'a' })).resolves.toEqual({ token: 'a' });
  });
});

describe('OfflineQueue', () => {
  it('is bounded and drains in order while writing is possible', () => {
    const q = new OfflineQueue(2);
    q.push(env('a'));
    q.push(env('b'));
    expect(() => q.push(env('c'))).toThrow(QueueFullError);
    const written: string[] = [];
    let room = 1;
    q.drain(() => room-- > 0, (e) => written.push(e.type));
    expect(written).toEqual(['a']);
    expect(q.size).toBe(1);
  });
});

describe('HandlerRegistry', () => {
  it('runs exact handlers then matching globs, and reports a handler that throws', () => {
    const errors: AutoSDLCError[] = [];
    const seen: string[] = [];
    const handlers = new HandlerRegistry((e) => errors.push(e));
    handlers.add('agent_*', () => seen.push('glob'));
    const off = handlers.add('agent_status', () => seen.push('exact'));
    handlers.add('agent_status', () => {
      throw new Error('boom');
    });
    handlers.dispatch(env('agent_status'));
    off();
    handlers.dispatch(env('agent_status'));
    handlers.dispatch(env('connect'));
    expect(seen).toEqual(['exact', 'glob', 'glob']);
    expect(errors.map((e) => e.code)).toEqual(['handler_error', 'handler_error']);
  });
});

describe('RequestTracker', () => {
  it('matches replies by correlation id and times out the rest, remembering abandoned subscribes', () => {
    vi.useFakeTimers();
    const timedOut: PendingRequest[] = [];
    const tracker = new RequestTracker(1000, (req) => timedOut.push(req));
    const done = deferred<void>();
    const entry = new SubscriptionRegistry().add(['agent_status'], undefined);
    tracker.track('r1', { kind: 'unsubscribe', done });
    tracker.track('r2', { kind: 'subscribe', entry });
    expect(tracker.take('r1')).toEqual({ kind: 'unsubscribe', done });
    expect(tracker.take('r1')).toBeUndefined();
    vi.advanceTimersByTime(1000);
    expect(timedOut).toEqual([{ kind: 'subscribe', entry }]);
    expect(tracker.takeAbandoned('r2')).toBe(true);
    expect(tracker.takeAbandoned('r2')).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('NamedTimers', () => {
  it('replaces a timer of the same name and clears by name', () => {
    vi.useFakeTimers();
    const timers = new NamedTimers();
    const fired: string[] = [];
    timers.once('retry', () => fired.push('first'), 100);
    timers.once('retry', () => fired.push('second'), 100);
    timers.every('ping', () => fired.push('ping'), 50);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['ping', 'second', 'ping']);
    timers.clear('ping', 'retry');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('ClientSession', () => {
  it('drops duplicates, moves the resume position, and takes the handshake as authoritative', () => {
    const session = new ClientSession(10);
    expect(session.accept(env('agent_log', 'e1'))).toBe(true);
    expect(session.accept(env('agent_log', 'e1'))).toBe(false);
    expect(session.lastEventId).toBe('e1');
    session.sawConnect({ heartbeatInterval: 1000 } as never);
    session.established({ sessionId: 's', connectionId: 'c', limits: { maxFrameBytes: 10 } } as never, null);
    expect(session.heartbeatMs).toBe(1000);
    expect(session.resumePoint()).toEqual({ sessionId: 's', lastEventId: 'e1' });
    expect(session.limits).toEqual({ maxFrameBytes: 10 });
    session.forget();
    expect(session.resumePoint()).toEqual({ sessionId: null, lastEventId: null });
  });
});

describe('reconnectOptions', () => {
  it('fills the defaults, ignoring explicit undefined', () => {
    expect(reconnectOptions({ baseMs: 10, maxMs: undefined })).toEqual({ baseMs: 10, maxMs: 30_000, maxAttempts: Infinity, stableAfterMs: 5000 });
  });
});

describe('SubscriptionManager (per-subscription status)', () => {
  function setup(connected = true) {
    vi.useFakeTimers();
    const written: Envelope[] = [];
    const reported: AutoSDLCError[] = [];
    const lost: string[][] = [];
    let n = 0;
    const wire: SubscriptionWire = {
      isConnected: () => connected,
      writeControl: (type, data) => {
        const id = `req-${++n}`;
        written.push({ id, type, timestamp: 0, data });
        return id;
      },
      report: (e) => reported.push(e),
      historyLost: (ids) => lost.push(ids),
    };
    return { subs: new SubscriptionManager(500, wire), written, reported, lost };
  }
  const update = (subscriptionId: string, status: string) => ({ subscriptionId, status }) as never;

  it('pending -> active on the correlated confirmation, removed on unsubscribe', async () => {
    const { subs, written } = setup();
    const handle = subs.addWithHandle({ events: ['agent_*'] });
    const statuses: string[] = [];
    handle.subscribe(() => statuses.push(handle.getSnapshot().status));
    expect(handle.getSnapshot()).toMatchObject({ status: 'pending', id: null });
    subs.onUpdate(update('srv-1', 'active'), written[0]!.id);
    await expect(handle.result).resolves.toBe('srv-1');
    expect(handle.getSnapshot()).toMatchObject({ status: 'active', id: 'srv-1', serverId: 'srv-1' });
    const done = handle.unsubscribe();
    subs.onUpdate(update('srv-1', 'removed'), written[1]!.id);
    await done;
    expect(statuses).toEqual(['active', 'removed']);
  });

  it('error with the server error when refused; a refused re-subscribe is reported too', () => {
    const { subs, written, reported } = setup();
    const handle = subs.addWithHandle({ events: ['workflow_*'] });
    const refusal = new ServerError({ id: 'x', type: 'error', timestamp: 0, data: { code: 'forbidden', message: 'no' } });
    expect(subs.onError(refusal, written[0]!.id)).toBe(true);
    expect(handle.getSnapshot()).toMatchObject({ status: 'error', error: { code: 'forbidden' } });
    expect(reported).toEqual([]);

    const kept = subs.addWithHandle({ events: ['agent_*'] });
    subs.onUpdate(update('srv-2', 'active'), written[1]!.id);
    expect(subs.serverForgot()).toEqual(['srv-2']);
    expect(kept.getSnapshot()).toMatchObject({ status: 'pending', id: 'srv-2', serverId: null });
    subs.sendUnconfirmed();
    expect(subs.onError(refusal, written[2]!.id)).toBe(true);
    expect(kept.getSnapshot()).toMatchObject({ status: 'error', id: 'srv-2' });
    expect(reported).toEqual([refusal]);
    expect(subs.onError(refusal, 'unknown')).toBe(false);
  });

  it('error on timeout, and the late confirmation is undone', () => {
    const { subs, written } = setup();
    const handle = subs.addWithHandle({ events: ['agent_*'] });
    vi.advanceTimersByTime(500);
    expect(handle.getSnapshot()).toMatchObject({ status: 'error', error: { code: 'timeout' } });
    subs.onUpdate(update('late', 'active'), written[0]!.id);
    expect(written[1]).toMatchObject({ type: 'unsubscribe', data: { subscriptionId: 'late' } });
  });

  it('unsubscribing while pending removes it and undoes the confirmation', async () => {
    const { subs, written } = setup();
    const handle = subs.addWithHandle({ events: ['agent_*'] });
    await handle.unsubscribe();
    expect(handle.getSnapshot().status).toBe('removed');
    await expect(handle.result).rejects.toMatchObject({ code: 'unsubscribed' });
    subs.onUpdate(update('srv-3', 'active'), written[0]!.id);
    expect(written[1]).toMatchObject({ type: 'unsubscribe', data: { subscriptionId: 'srv-3' } });
  });

  it('waits for the connection before sending, and counts resets per subscription', () => {
    const { subs, written, lost } = setup(false);
    const handle = subs.addWithHandle({ events: ['agent_*'] });
    expect(written).toEqual([]);
    subs.sendUnconfirmed();
    subs.onUpdate(update('srv-4', 'active'), written[0]!.id);
    subs.onUpdate(update('srv-4', 'reset'), undefined);
    expect(lost).toEqual([['srv-4']]);
    subs.noteReset(['srv-4']);
    expect(handle.getSnapshot().resets).toBe(1);
  });

  it('validates the config', () => {
    expect(subscribeConfigProblem({ events: [] })?.code).toBe('invalid_argument');
    expect(subscribeConfigProblem({ events: ['a', ''] })?.code).toBe('invalid_argument');
    expect(subscribeConfigProblem({ events: ['a'] })).toBeNull();
  });
});

describe('tokenRefreshDelay', () => {
  it('refreshes `margin` before expiry, but never sooner than 1 s or half the remaining life', () => {
    expect(tokenRefreshDelay(1_000_000 + 120_000, 1_000_000, 30_000)).toBe(90_000);
    expect(tokenRefreshDelay(1_000_000 + 40_000, 1_000_000, 30_000)).toBe(20_000);
    expect(tokenRefreshDelay(1_000_000 + 500, 1_000_000, 30_000)).toBe(1000);
  });
});
