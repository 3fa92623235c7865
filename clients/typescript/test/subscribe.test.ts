import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { InvalidArgumentError, SendFailedError, ServerError } from '../src/errors.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { acceptSubscribe, authSuccess, connectFrame, envelope, flush, handshake, makeClient, reply, openClient } from './helpers/frames.js';

beforeEach(() => FakeWebSocket.reset());
afterEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});


describe('subscribe', () => {
  it('resolves with the subscriptionId from the correlated subscription_update', async () => {
    const { client, ws } = await openClient();
    const pending = client.subscribe({ events: ['agent_*'], filters: { agentId: 'coder-001' } });
    const req = ws.lastOf('subscribe');
    expect(req.data).toEqual({ events: ['agent_*'], filters: { agentId: 'coder-001' } });

    // An unrelated update does not settle it.
    ws.push(envelope('subscription_update', { subscriptionId: 'other', status: 'active' }, { metadata: { correlationId: 'nope' } }));
    let settled = false;
    void pending.then(() => (settled = true));
    await flush();
    expect(settled).toBe(false);

    acceptSubscribe(ws, 'sub-42', req);
    await expect(pending).resolves.toBe('sub-42');
    expect(client.subscriptions).toEqual([
      { id: 'sub-42', serverId: 'sub-42', events: ['agent_*'], filters: { agentId: 'coder-001' } },
    ]);
    client.close();
  });

  it('rejects with a ServerError carrying the code on a correlated error', async () => {
    const { client, ws } = await openClient();
    const pending = client.subscribe({ events: ['system_alert'], filters: { repository: 'acme/secret' } });
    const req = ws.lastOf('subscribe');
    ws.push(reply(req, 'error', { code: 'forbidden', message: 'no read permission on repo:acme/secret' }));
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ code: 'forbidden', message: 'no read permission on repo:acme/secret' });
    expect(client.subscriptions).toEqual([]);
    client.close();
  });

  it('passes the failing path of invalid_message', async () => {
    const { client, ws } = await openClient();
    const pending = client.subscribe({ events: ['agent_status'] });
    ws.push(reply(ws.lastOf('subscribe'), 'error', { code: 'invalid_message', message: 'bad', path: 'data.filters.color' }));
    await expect(pending).rejects.toMatchObject({ code: 'invalid_message', path: 'data.filters.color' });
    client.close();
  });

  it('refuses empty event lists locally', async () => {
    const client = makeClient();
    await expect(client.subscribe({ events: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('sends a subscribe made while disconnected after authentication', async () => {
    const client = makeClient();
    const pending = client.subscribe({ events: ['workflow_*'] });
    const connected = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    expect(ws.frames.map((f) => f.type)).toEqual(['auth_request']);
    ws.push(connectFrame());
    ws.push(authSuccess());
    await connected;
    expect(ws.frames.map((f) => f.type)).toEqual(['auth_request', 'subscribe']);
    acceptSubscribe(ws, 'sub-1');
    await expect(pending).resolves.toBe('sub-1');
    client.close();
  });

  it('times out when the server never answers', async () => {
    vi.useFakeTimers();
    const { client, ws } = await openClient({ requestTimeoutMs: 2000 });
    const pending = client.subscribe({ events: ['agent_status'] });
    const req = ws.lastOf('subscribe');
    const caught = pending.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(2000);
    expect(await caught).toMatchObject({ code: 'timeout' });
    // The late reply is undone instead of leaving a subscription nobody knows.
    acceptSubscribe(ws, 'late', req);
    expect(ws.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'late' });
    client.close();
  });
});

describe('unsubscribe', () => {
  it('sends the server id and resolves on status removed', async () => {
    const { client, ws } = await openClient();
    const p = client.subscribe({ events: ['agent_status'] });
    acceptSubscribe(ws, 'sub-7');
    const id = await p;
    const done = client.unsubscribe(id);
    const req = ws.lastOf('unsubscribe');
    expect(req.data).toEqual({ subscriptionId: 'sub-7' });
    ws.push(reply(req, 'subscription_update', { subscriptionId: 'sub-7', status: 'removed' }));
    await expect(done).resolves.toBeUndefined();
    expect(client.subscriptions).toEqual([]);
    client.close();
  });

  it('is idempotent for unknown ids and treats not_found as done', async () => {
    const { client, ws } = await openClient();
    await expect(client.unsubscribe('never-existed')).resolves.toBeUndefined();
    const p = client.subscribe({ events: ['agent_status'] });
    acceptSubscribe(ws, 'sub-8');
    const done = client.unsubscribe(await p);
    ws.push(reply(ws.lastOf('unsubscribe'), 'error', { code: 'not_found', message: 'gone' }));
    await expect(done).resolves.toBeUndefined();
    client.close();
  });

  it('while offline, forgets the subscription and resolves immediately', async () => {
    vi.useFakeTimers();
    const { client, ws } = await openClient();
    const p = client.subscribe({ events: ['agent_status'] });
    acceptSubscribe(ws, 'sub-9');
    const id = await p;
    ws.serverClose(1001);
    await expect(client.unsubscribe(id)).resolves.toBeUndefined();
    expect(client.subscriptions).toEqual([]);
    client.close();
  });
});

describe('publish and send', () => {
  it('fills id, timestamp and data, and keeps extra fields', async () => {
    const { client, ws } = await openClient();
    const published = client.publish('system_notification', { message: 'hi' });
    expect(ws.frames[ws.frames.length - 1]).toEqual(published);
    await expect(
      client.send({ type: 'agent_log', data: { agentId: 'a', line: 'x' }, metadata: { source: 'cli' }, extra: 1 }),
    ).resolves.toBeUndefined();
    const wire = ws.frames[ws.frames.length - 1]!;
    expect(wire).toMatchObject({ type: 'agent_log', data: { agentId: 'a', line: 'x' }, metadata: { source: 'cli' }, extra: 1 });
    expect(typeof wire.id).toBe('string');
    expect(wire.id).not.toBe(published.id);
    expect(Number.isInteger(wire.timestamp)).toBe(true);
    await client.send({ type: 'ping', id: 'mine', timestamp: 5 });
    expect(ws.frames[ws.frames.length - 1]).toEqual({ type: 'ping', id: 'mine', timestamp: 5, data: {} });
    client.close();
  });

  it('send() is written by the time its promise resolves; a caller ignoring the promise still sends', async () => {
    const { client, ws } = await openClient();
    const before = ws.sent.length;
    void client.send({ type: 'agent_log', data: { agentId: 'a' } });
    // Written synchronously: the promise only reports it.
    expect(ws.sent.length).toBe(before + 1);
    client.close();
  });

  it('rejects a message without a type instead of throwing', async () => {
    const { client, ws } = await openClient();
    const before = ws.sent.length;
    const pending = client.send({} as never);
    await expect(pending).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(pending).rejects.toMatchObject({ code: 'invalid_argument', message: 'message.type is required' });
    expect(ws.sent.length).toBe(before);
    client.close();
  });

  it('refuses a frame larger than the server limit before sending it (send rejects, publish throws)', async () => {
    const { client, ws } = await openClient();
    ws.push(envelope('noop', {})); // keeps the connection busy, nothing else
    const big = 'x'.repeat(70_000);
    await expect(client.send({ type: 'agent_log', data: { agentId: 'a', line: big } })).rejects.toMatchObject({
      code: 'too_large',
      limit: 65536,
    });
    expect(() => client.publish('agent_log', { agentId: 'a', line: big })).toThrow(
      expect.objectContaining({ code: 'too_large', limit: 65536 }),
    );
    expect(client.state).toBe('open');
    client.close();
  });

  it('rejects with SendFailedError when the socket throws, and nothing is queued', async () => {
    const { client, ws } = await openClient();
    vi.spyOn(ws, 'send').mockImplementation(() => {
      throw new Error('InvalidStateError: the socket is closing');
    });
    const error = await client.send({ type: 'agent_log', data: { agentId: 'a' } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SendFailedError);
    expect(error).toMatchObject({ code: 'send_failed', message: 'the socket refused the frame: InvalidStateError: the socket is closing' });
    expect(client.queuedCount).toBe(0);
    client.close();
  });
});
