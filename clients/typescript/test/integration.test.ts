/**
 * Against the real gateway. Skipped unless AUTOSDLC_WS_URL is set, e.g.
 *
 *   AUTOSDLC_WS_URL=ws://127.0.0.1:8765/ws AUTOSDLC_WS_TOKEN=$(autosdlc-ws token create \
 *     --sub it --permission 'read:*' --permission 'publish:*') npm test
 *
 * The token (or AUTOSDLC_WS_API_KEY) needs read and publish permission: the
 * test publishes the event it expects through POST /api/v1/events.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { AutoSDLCWebSocketClient } from '../src/client.js';
import type { Envelope } from '../src/types.js';

const url = process.env.AUTOSDLC_WS_URL;
const token = process.env.AUTOSDLC_WS_TOKEN;
const apiKey = process.env.AUTOSDLC_WS_API_KEY;

describe.skipIf(!url)('integration with the real gateway', () => {
  it('connects, subscribes and receives a published event', async () => {
    const client = new AutoSDLCWebSocketClient({ url: url!, token, apiKey, WebSocket });
    try {
      await client.connect();
      expect(client.state).toBe('open');
      expect(client.sessionId).toBeTruthy();

      const agentId = `it-${Date.now()}`;
      const subscriptionId = await client.subscribe({ events: ['agent_*'], filters: { agentId } });
      expect(typeof subscriptionId).toBe('string');

      const received = new Promise<Envelope>((resolve) => client.on('agent_status', resolve));
      const http = new URL(url!.replace(/^ws/, 'http'));
      http.pathname = '/api/v1/events';
      http.search = '';
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      else if (apiKey) headers['x-api-key'] = apiKey;
      const res = await fetch(http, {
        method: 'POST',
        headers,
        body: JSON.stringify({ type: 'agent_status', timestamp: Date.now(), data: { agentId, status: 'busy' } }),
      });
      expect(res.status).toBe(202);

      const env = await received;
      expect(env.data).toMatchObject({ agentId, status: 'busy' });
      expect(typeof env.id).toBe('string');
    } finally {
      client.close();
    }
  });
});
