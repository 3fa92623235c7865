/**
 * Integration tests against the real Python gateway, which this file starts
 * itself (`../../.venv/bin/python -m autosdlc_ws serve` on a free port; `make
 * test` creates the virtualenv before it runs these). Node's `ws` package is
 * the WebSocket implementation. Events are published over HTTP
 * (POST /api/v1/events), connections are listed and closed through the admin
 * API, and network failures are made with a TCP proxy in between.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { AutoSDLCWebSocketClient, type ClientConfig } from '../src/client.js';
import { AuthError, ConnectError, ConnectionClosedError, ServerError, type AutoSDLCError } from '../src/errors.js';
import type { ConnectionState, Envelope, ResetData } from '../src/types.js';
import {
  CuttableProxy,
  Gateway,
  recorder,
  signJwt,
  sleep,
  trackHandshakes,
  waitFor,
  within,
  type ApiKey,
  type Recorder,
} from './helpers/gateway.js';
import { scaled } from './helpers/timeouts.js';

const READ_KEY: ApiKey = { name: 'k', key: 'it-read-key-7f3a9c0e5b2d4e6f', permissions: ['read:*'] };
const ADMIN_KEY: ApiKey = { name: 'it-admin', key: 'it-admin-key-1c8e2f4a6b0d3e5f', permissions: ['admin:*'] };

/** Ceiling for anything that should take milliseconds on a loaded machine. */
const WAIT_MS = scaled(10_000);

const live: AutoSDLCWebSocketClient[] = [];

function makeClient(config: Omit<ClientConfig, 'WebSocket'>, rec: Recorder = recorder()) {
  const client = new AutoSDLCWebSocketClient({
    reconnect: { baseMs: 50, maxMs: 500 },
    ...config,
    WebSocket: rec.WebSocket,
  });
  live.push(client);
  return { client, rec };
}

/** Resolves with the first envelope of `type` that `predicate` accepts. */
function nextMessage<E extends Envelope = Envelope>(
  client: AutoSDLCWebSocketClient,
  type: string,
  predicate: (e: E) => boolean = () => true,
  ms = WAIT_MS,
): Promise<E> {
  let off = () => {};
  const promise = new Promise<E>((resolve) => {
    off = client.on(type, (e) => {
      if (predicate(e as unknown as E)) resolve(e as unknown as E);
    });
  });
  return within(promise, ms, `a ${type} message`).finally(() => off());
}

function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

afterEach(() => {
  for (const client of live.splice(0)) client.close();
});

describe('integration with the real gateway', { timeout: scaled(20_000) }, () => {
  let gw: Gateway;
  let publisher: string;

  beforeAll(async () => {
    gw = new Gateway({ apiKeys: [READ_KEY, ADMIN_KEY] });
    await gw.start();
    publisher = gw.token('it-publisher', ['publish:*']);
  }, scaled(30_000));

  afterAll(async () => {
    await gw?.stop();
  }, scaled(20_000));

  describe('authentication', () => {
    it('sends the token in-band: auth_request first, nothing in the URL', async () => {
      const { client, rec } = makeClient({ url: gw.wsUrl, token: gw.token('it-inband') });
      const handshakes = trackHandshakes(client);
      await client.connect();

      expect(client.state).toBe('open');
      expect(client.isConnected).toBe(true);
      expect(client.auth).toMatchObject({ subject: 'it-inband', permissions: ['read:*', 'publish:*'] });
      expect(typeof client.auth?.expiresAt).toBe('number');
      expect(client.sessionId).toMatch(/.+/);
      expect(client.connectionId).toMatch(/.+/);
      expect(client.limits?.maxFrameBytes).toBeGreaterThan(0);
      // The fresh `connect` after auth_request is the authoritative one.
      expect(handshakes).toHaveLength(1);
      expect(handshakes[0]).toMatchObject({ sessionId: client.sessionId, resumed: false });

      const [socket] = rec.sockets;
      expect(new URL(socket!.url).search).toBe('');
      expect(socket!.sent[0]).toMatchObject({ type: 'auth_request', data: { token: expect.any(String) } });
    });

    it('puts the token in the URL with authInUrl (no auth_request)', async () => {
      const { client, rec } = makeClient({ url: gw.wsUrl, token: gw.token('it-in-url'), authInUrl: true });
      await client.connect();

      expect(client.auth?.subject).toBe('it-in-url');
      expect(new URL(rec.sockets[0]!.url).searchParams.get('token')).toMatch(/^ey/);
      expect(rec.sockets[0]!.sent.filter((e) => e.type === 'auth_request')).toEqual([]);

      const list = await gw.admin('GET', '/api/v1/connections', ADMIN_KEY.key);
      const mine = list.connections.find((c: { connectionId: string }) => c.connectionId === client.connectionId);
      expect(mine).toMatchObject({ subject: 'it-in-url', authKind: 'jwt', state: 'open' });
    });

    it.each([
      ['in-band', false],
      ['in the URL', true],
    ])('authenticates with an API key (%s)', async (_, authInUrl) => {
      const { client, rec } = makeClient({ url: gw.wsUrl, apiKey: READ_KEY.key, authInUrl });
      await client.connect();

      expect(client.auth).toMatchObject({ subject: 'k', permissions: ['read:*'], expiresAt: null });
      const url = new URL(rec.sockets[0]!.url);
      if (authInUrl) expect(url.searchParams.get('api_key')).toBe(READ_KEY.key);
      else expect(rec.sockets[0]!.sent[0]).toMatchObject({ type: 'auth_request', data: { apiKey: READ_KEY.key } });
    });

    it('rejects connect() on HTTP 401 at the upgrade (bad token in the URL) and does not retry', async () => {
      const bad = signJwt('not-the-secret', { sub: 'x', exp: Math.floor(Date.now() / 1000) + 600, permissions: ['read:*'] });
      const { client, rec } = makeClient({ url: gw.wsUrl, token: bad, authInUrl: true });
      const states: ConnectionState[] = [];
      client.onStateChange((s) => states.push(s));

      const error = await client.connect().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({ code: 'unauthorized', statusCode: 401, serverCode: 'unauthorized' });
      expect(client.state).toBe('closed');
      await sleep(scaled(300));
      expect(rec.sockets).toHaveLength(1);
      expect(states).not.toContain('reconnecting');
    });

    it('rejects connect() on auth_failure for a bad in-band token and does not retry', async () => {
      const expired = gw.token('it-expired', ['read:*'], -60);
      const { client, rec } = makeClient({ url: gw.wsUrl, token: expired });

      const error = await client.connect().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AuthError);
      expect(client.state).toBe('closed');
      await sleep(scaled(300));
      expect(rec.sockets).toHaveLength(1);
    });
  });

  describe('subscriptions and events', () => {
    it('subscribes and receives a published event (filters applied)', async () => {
      const { client } = makeClient({ url: gw.wsUrl, token: gw.token('it-sub') });
      await client.connect();
      const agentId = unique('agent');
      const id = await client.subscribe({ events: ['agent_*'], filters: { agentId } });
      expect(id).toMatch(/.+/);
      expect(client.subscriptions).toEqual([
        { id, serverId: id, events: ['agent_*'], filters: { agentId } },
      ]);

      const seen: Envelope[] = [];
      client.on('agent_*', (e) => seen.push(e));
      const statusEvent = nextMessage(client, 'agent_status', (e) => e.data.agentId === agentId);
      // Another agent's event first: it must not arrive, and ours comes after it.
      await gw.publish({ type: 'agent_status', data: { agentId: unique('other'), status: 'idle' } }, { token: publisher });
      const [eventId] = await gw.publish(
        { type: 'agent_status', data: { agentId, status: 'busy', currentTask: { id: 't1', progress: 40 } } },
        { token: publisher },
      );

      const env = await statusEvent;
      expect(env).toMatchObject({
        id: eventId,
        type: 'agent_status',
        timestamp: expect.any(Number),
        data: { agentId, status: 'busy', currentTask: { id: 't1', progress: 40 } },
      });
      expect(seen.map((e) => e.id)).toEqual([eventId]);
      expect(client.lastEventId).toBe(eventId);

      await client.unsubscribe(id);
      expect(client.subscriptions).toEqual([]);
    });

    it('decodes gzip binary frames: a large event arrives with metadata.compressed', async () => {
      const { client, rec } = makeClient({ url: gw.wsUrl, token: gw.token('it-gzip'), compression: 'gzip' });
      await client.connect();
      const agentId = unique('gz');
      await client.subscribe({ events: ['agent_log'], filters: { agentId } });

      const big = 'lorem ipsum dolor sit amet '.repeat(200); // ~5.4 KB of JSON
      const small = 'short';
      const bigArrives = nextMessage(client, 'agent_log', (e) => e.data.message === big);
      const smallArrives = nextMessage(client, 'agent_log', (e) => e.data.message === small);
      await gw.publish(
        [
          { type: 'agent_log', data: { agentId, level: 'info', message: big } },
          { type: 'agent_log', data: { agentId, level: 'info', message: small } },
        ],
        { token: publisher },
      );

      const bigEnv = await bigArrives;
      const smallEnv = await smallArrives;
      expect(bigEnv.metadata?.compressed).toBe(true);
      expect(bigEnv.data).toEqual({ agentId, level: 'info', message: big });
      expect(smallEnv.metadata?.compressed).not.toBe(true);
      // On the wire: the large one was a binary frame smaller than its JSON, the small one text.
      const frames = rec.sockets[0]!.received;
      expect(frames.some((f) => f.binary && f.bytes < big.length)).toBe(true);
      expect(frames.filter((f) => f.binary)).toHaveLength(1);
      const sentAuth = rec.sockets[0]!.sent[0]!;
      expect(sentAuth).toMatchObject({ type: 'auth_request', data: { compression: 'gzip' } });
    });

    it('rejects a subscription beyond the permissions with code forbidden; the connection stays usable', async () => {
      const { client } = makeClient({ url: gw.wsUrl, token: gw.token('it-narrow', ['read:agent:a1']) });
      await client.connect();
      const errors: AutoSDLCError[] = [];
      client.onError((e) => errors.push(e));

      const error = await client.subscribe({ events: ['workflow_*'] }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ServerError);
      expect(error).toMatchObject({ code: 'forbidden' });
      expect(client.state).toBe('open');
      expect(client.subscriptions).toEqual([]);

      // What the token does allow still works on the same connection.
      const id = await client.subscribe({ events: ['agent_status'], filters: { agentId: 'a1' } });
      const arrives = nextMessage(client, 'agent_status', (e) => e.data.agentId === 'a1');
      await gw.publish({ type: 'agent_status', data: { agentId: 'a1', status: 'idle' } }, { token: publisher });
      await arrives;
      expect(client.subscriptions.map((s) => s.id)).toEqual([id]);
      expect(errors).toEqual([]);
    });
  });

  describe('no event lost when the connection drops (server keeps running)', () => {
    const COUNT = 500;

    /** Publishes COUNT numbered agent_log events one by one; `at(i)` runs before event i. */
    async function publishNumbered(agentId: string, at: (i: number) => Promise<void>): Promise<void> {
      for (let i = 0; i < COUNT; i += 1) {
        await at(i);
        await gw.publish({ type: 'agent_log', data: { agentId, level: 'info', message: `n${i}`, seq: i } }, { token: publisher });
      }
    }

    function collect(client: AutoSDLCWebSocketClient) {
      const seqs: number[] = [];
      const resets: ResetData[] = [];
      const resumed: string[] = [];
      client.on('agent_log', (e) => seqs.push(e.data.seq as number));
      client.onReset((r) => resets.push(r));
      client.on('subscription_update', (e) => {
        if (e.data.status === 'resumed') resumed.push(e.data.subscriptionId);
      });
      return { seqs, resets, resumed };
    }

    const inOrder = Array.from({ length: COUNT }, (_, i) => i);

    it('closed by the admin API (close 1008: the client stops, reports it, and resumes on connect())', async () => {
      const { client } = makeClient({ url: gw.wsUrl, token: gw.token('it-noloss-admin') });
      const handshakes = trackHandshakes(client);
      const errors: AutoSDLCError[] = [];
      client.onError((e) => errors.push(e));
      await client.connect();
      const agentId = unique('nl');
      const subId = await client.subscribe({ events: ['agent_log'], filters: { agentId } });
      const got = collect(client);
      const session = client.sessionId;
      let seenAtDrop = -1;
      let reconnected: Promise<void> | null = null;

      await publishNumbered(agentId, async (i) => {
        if (i === 150) {
          const list = await gw.admin('GET', '/api/v1/connections', ADMIN_KEY.key);
          const ids = list.connections.map((c: { connectionId: string }) => c.connectionId);
          expect(ids).toContain(client.connectionId);
          await gw.admin('DELETE', `/api/v1/connections/${client.connectionId}`, ADMIN_KEY.key);
          // Close code 1008 (policy) means "stop and report" in the protocol
          // (docs/protocol.md §5), so the client does not reconnect by itself.
          await waitFor(() => client.state === 'closed', WAIT_MS, 'the client to stop after close 1008');
          seenAtDrop = got.seqs.length;
        }
        if (i === 300) {
          // 150 events were published while nobody listened; the app reconnects.
          reconnected = client.connect();
        }
      });

      await within(reconnected!, WAIT_MS, 'connect() to resolve again');
      await waitFor(() => got.seqs.length >= COUNT, scaled(15_000), () => `${COUNT} events (got ${got.seqs.length})`);
      await sleep(scaled(200)); // a duplicate would show up now
      expect(seenAtDrop).toBeLessThanOrEqual(150);
      expect(errors.some((e) => e instanceof ConnectionClosedError && e.closeCode === 1008)).toBe(true);
      expect(handshakes).toHaveLength(2);
      expect(handshakes[1]).toMatchObject({ sessionId: session, resumed: true });
      expect(client.sessionId).toBe(session);
      // The server restored the subscription (same id) instead of the client re-sending it.
      expect(got.resumed).toEqual([subId]);
      expect(got.resets).toEqual([]);
      expect(got.seqs).toEqual(inOrder);
      expect(client.subscriptions.map((s) => s.id)).toEqual([subId]);
    }, scaled(30_000));

    it('cut by the network (no close frame: the client reconnects by itself and resumes)', async () => {
      const proxy = new CuttableProxy(gw.port);
      await proxy.listen();
      try {
        const { client, rec } = makeClient({ url: proxy.wsUrl, token: gw.token('it-noloss-net') });
        const handshakes = trackHandshakes(client);
        const states: ConnectionState[] = [];
        client.onStateChange((s) => states.push(s));
        await client.connect();
        const agentId = unique('net');
        const subId = await client.subscribe({ events: ['agent_log'], filters: { agentId } });
        const got = collect(client);
        const session = client.sessionId;
        const socketsBefore = rec.sockets.length;

        await publishNumbered(agentId, async (i) => {
          if (i === 150) {
            // Reconnect attempts fail until event 300, so 150 events are missed for sure.
            proxy.refusing = true;
            proxy.cut();
            await waitFor(() => client.state === 'reconnecting', WAIT_MS, 'the client to notice the drop');
          }
          if (i === 300) proxy.refusing = false;
        });

        await waitFor(() => got.seqs.length >= COUNT, scaled(15_000), () => `${COUNT} events (got ${got.seqs.length})`);
        await sleep(scaled(200));
        expect(rec.sockets.length).toBeGreaterThan(socketsBefore);
        expect(states).toContain('reconnecting');
        expect(client.state).toBe('open');
        expect(handshakes.at(-1)).toMatchObject({ sessionId: session, resumed: true });
        expect(got.resumed).toEqual([subId]);
        expect(got.resets).toEqual([]);
        expect(got.seqs).toEqual(inOrder);
      } finally {
        await proxy.close();
      }
    }, scaled(30_000));
  });
});

describe('integration: the gateway restarts', () => {
  let gw: Gateway;

  beforeAll(async () => {
    gw = new Gateway();
    await gw.start();
  }, scaled(30_000));

  afterAll(async () => {
    await gw?.stop();
  }, scaled(20_000));

  it('reconnects by itself, sees resumed:false, emits $reset, re-subscribes and receives new events', async () => {
    const token = gw.token('it-restart');
    const { client } = makeClient({ url: gw.wsUrl, token });
    const handshakes = trackHandshakes(client);
    const states: ConnectionState[] = [];
    client.onStateChange((s) => states.push(s));
    const resets: Envelope[] = [];
    client.on('$reset', (e) => resets.push(e));
    const received: number[] = [];
    client.on('workflow_step_complete', (e) => received.push(e.data.stepIndex as number));

    await client.connect();
    const workflowId = unique('wf');
    const subId = await client.subscribe({ events: ['workflow_*'], filters: { workflowId } });
    const oldSession = client.sessionId;
    const step = (i: number) => ({ type: 'workflow_step_complete', data: { workflowId, step: `s${i}`, status: 'success', stepIndex: i } });
    await gw.publish(step(0), { token });
    await waitFor(() => received.length === 1, WAIT_MS, 'the event before the restart');

    const disconnect = nextMessage(client, 'disconnect');
    await gw.stop();
    expect((await disconnect).data).toMatchObject({ reconnect: true });
    await waitFor(() => client.state === 'reconnecting', WAIT_MS, 'the client to start reconnecting');

    const resubscribed = nextMessage(client, 'subscription_update', (e) => e.data.status === 'active', scaled(25_000));
    await gw.start(); // same port
    const reply = await resubscribed;

    expect(handshakes).toHaveLength(2);
    expect(handshakes[1]!.resumed).toBe(false);
    expect(handshakes[1]!.sessionId).not.toBe(oldSession);
    expect(client.sessionId).toBe(handshakes[1]!.sessionId);
    expect(resets).toHaveLength(1);
    expect(resets[0]!.data).toMatchObject({
      reason: 'session_not_resumed',
      previousSessionId: oldSession,
      sessionId: client.sessionId,
      subscriptionIds: [subId],
    });
    // The id subscribe() returned still names the subscription; the server's id is new.
    expect(reply.data).toMatchObject({ events: ['workflow_*'], filters: { workflowId: [workflowId] } });
    expect(client.subscriptions).toEqual([
      { id: subId, serverId: reply.data.subscriptionId, events: ['workflow_*'], filters: { workflowId } },
    ]);
    expect(reply.data.subscriptionId).not.toBe(subId);

    await gw.publish([step(1), step(2), step(3)], { token });
    await waitFor(() => received.length === 4, WAIT_MS, 'the events published after the restart');
    expect(received).toEqual([0, 1, 2, 3]);
    expect(states.filter((s) => s === 'open').length).toBe(2);
    expect(client.state).toBe('open');
  }, scaled(40_000));
});
