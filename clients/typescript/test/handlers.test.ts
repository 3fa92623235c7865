import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { FakeWebSocket } from './helpers/fake-websocket.js';
import { envelope, event, handshake, makeClient, reply, openClient } from './helpers/frames.js';
import type { Envelope } from '../src/types.js';

beforeEach(() => FakeWebSocket.reset());
afterEach(() => FakeWebSocket.reset());


describe('on(pattern, handler)', () => {
  it('routes exact types, prefix globs and * to the right handlers with the whole envelope', async () => {
    const { client, ws } = await openClient();
    const got: Record<string, string[]> = { exact: [], agent: [], tdd: [], all: [] };
    const envelopes: Envelope[] = [];
    client.on('agent_status', (e) => {
      got.exact!.push(e.id);
      envelopes.push(e);
    });
    client.on('agent_*', (e) => got.agent!.push(e.id));
    client.on('tdd_*', (e) => got.tdd!.push(e.id));
    client.on('*', (e) => got.all!.push(e.id));

    const status = {
      id: 'evt-123',
      type: 'agent_status',
      timestamp: 1703775135000,
      data: { agentId: 'coder-001', status: 'busy', futureField: true },
      metadata: { version: '1.0', source: 'agent' },
    };
    ws.push(status);
    ws.push(event('agent_log', 'e2'));
    ws.push(event('tdd_phase_change', 'e3', { agentId: 'a', currentPhase: 'green' }));
    ws.push(event('github_pr_update', 'e4', { repository: 'acme/app' }));
    ws.push(event('some_future_event', 'e5', {}));

    expect(got).toEqual({
      exact: ['evt-123'],
      agent: ['evt-123', 'e2'],
      tdd: ['e3'],
      all: ['evt-123', 'e2', 'e3', 'e4', 'e5'],
    });
    // Whole envelope, unknown fields kept.
    expect(envelopes[0]).toEqual(status);
    client.close();
  });

  it('delivers control frames only to handlers of their exact type', async () => {
    const { client, ws } = await openClient();
    const star: string[] = [];
    const errors: Envelope[] = [];
    client.on('*', (e) => star.push(e.type));
    client.on('error', (e) => errors.push(e));
    ws.push(envelope('error', { code: 'rate_limited', message: 'slow down', retryAfterMs: 500 }));
    ws.push(envelope('pong', {}));
    expect(star).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.data.code).toBe('rate_limited');
    client.close();
  });

  it('returns an unsubscribe function', async () => {
    const { client, ws } = await openClient();
    const seen: string[] = [];
    const off = client.on('agent_*', (e) => seen.push(e.id));
    const off2 = client.on('agent_status', (e) => seen.push(`x${e.id}`));
    ws.push(event('agent_status', 'a'));
    off();
    off2();
    off2();
    ws.push(event('agent_status', 'b'));
    // Exact-type handlers run before glob handlers.
    expect(seen).toEqual(['xa', 'a']);
    client.close();
  });

  it('isolates a throwing handler and reports it', async () => {
    const { client, ws } = await openClient();
    const errors: string[] = [];
    client.onError((e) => errors.push(e.code));
    const seen: string[] = [];
    client.on('agent_status', () => {
      throw new Error('boom');
    });
    client.on('agent_status', (e) => seen.push(e.id));
    ws.push(event('agent_status', 'a'));
    expect(seen).toEqual(['a']);
    expect(errors).toEqual(['handler_error']);
    expect(client.state).toBe('open');
    client.close();
  });

  it('reports undecodable frames without dropping the connection', async () => {
    const { client, ws } = await openClient();
    const errors: string[] = [];
    client.onError((e) => errors.push(`${e.code}: ${e.message}`));
    ws.push('{not json');
    ws.push('[1,2]'); // a batch of two elements that are no envelopes: each reported
    ws.push(JSON.stringify({ id: 'x', data: {} }));
    const seen: string[] = [];
    client.on('*', (e) => seen.push(e.id));
    ws.push(event('agent_status', 'ok'));
    expect(errors).toEqual([
      'invalid_frame: frame is not valid JSON',
      'invalid_frame: batch item 0 is not a JSON object',
      'invalid_frame: batch item 1 is not a JSON object',
      'invalid_frame: frame has no type',
    ]);
    expect(seen).toEqual(['ok']);
    client.close();
  });

  it('answers a server application ping with a correlated pong', async () => {
    const { client, ws } = await openClient();
    const ping = envelope('ping', {});
    ws.push(ping);
    expect(ws.lastOf('pong').metadata).toEqual({ correlationId: ping.id });
    client.close();
  });

  it('reports uncorrelated server errors to onError', async () => {
    const { client, ws } = await openClient();
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    const pub = client.publish('agent_log', { agentId: 'a' });
    ws.push(reply(pub, 'error', { code: 'forbidden', message: 'no publish permission' }));
    expect(errors).toEqual([expect.objectContaining({ name: 'ServerError', code: 'forbidden' })]);
    client.close();
  });
});
