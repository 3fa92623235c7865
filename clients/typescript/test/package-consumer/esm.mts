/**
 * An ES module app that uses the installed package the way its README says:
 * test/package.test.ts compiles it with `tsc --strict` in a fresh project and
 * runs it with Node against a live gateway. It connects, subscribes to one
 * agent's status, prints a JSON line per step on stdout and exits after the
 * first event, with the client closed (a timer left running would keep Node
 * alive, and the test would time out).
 */
import WebSocket from 'ws';
import { AutoSDLCWebSocketClient, defaultRegistry, type EnvelopeOf } from '@autosdlc/ws-client';
import * as react from '@autosdlc/ws-client/react';
import type { UseWebSocketResult } from '@autosdlc/ws-client/react';

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function report(step: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ consumer: 'esm', ...step })}\n`);
}

const agentId = setting('AGENT_ID');
const client = new AutoSDLCWebSocketClient({ url: setting('GATEWAY_URL'), token: setting('GATEWAY_TOKEN'), WebSocket });

const firstStatus = new Promise<EnvelopeOf<'agent_status'>>((resolve) => {
  client.on('agent_status', (event) => {
    if (event.data.agentId === agentId) resolve(event);
  });
});

// The React entry point loads without React being used, and shares the core's
// module instances (one registry of shared clients, not one per entry point).
const hookResult: Pick<UseWebSocketResult, 'isConnected' | 'state'> = { isConnected: false, state: 'idle' };
report({ step: 'react', useWebSocket: typeof react.useWebSocket, sharesCore: react.defaultRegistry === defaultRegistry, hookResult });

await client.connect();
const subscriptionId = await client.subscribe({ events: ['agent_status'], filters: { agentId } });
report({ step: 'subscribed', subscriptionId });

const event = await firstStatus;
report({ step: 'received', id: event.id, agentId: event.data.agentId, status: event.data.status });
client.close();
