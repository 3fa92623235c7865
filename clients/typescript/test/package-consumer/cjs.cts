/**
 * The same app as esm.mts, as a CommonJS module: tsc compiles these imports to
 * `require('@autosdlc/ws-client')` and `require('@autosdlc/ws-client/react')`
 * (test/package.test.ts checks that), which resolve through the package's
 * `require` conditions to dist/*.cjs, with the types from dist/*.d.cts.
 */
import WebSocket = require('ws');
import wsClient = require('@autosdlc/ws-client');
import react = require('@autosdlc/ws-client/react');

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function report(step: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ consumer: 'cjs', ...step })}\n`);
}

async function main(): Promise<void> {
  const agentId = setting('AGENT_ID');
  const client = new wsClient.AutoSDLCWebSocketClient({
    url: setting('GATEWAY_URL'),
    token: setting('GATEWAY_TOKEN'),
    WebSocket,
  });

  const firstStatus = new Promise<wsClient.EnvelopeOf<'agent_status'>>((resolve) => {
    client.on('agent_status', (event) => {
      if (event.data.agentId === agentId) resolve(event);
    });
  });

  const hookResult: Pick<react.UseWebSocketResult, 'isConnected' | 'state'> = { isConnected: false, state: 'idle' };
  report({ step: 'react', useWebSocket: typeof react.useWebSocket, sharesCore: react.defaultRegistry === wsClient.defaultRegistry, hookResult });

  await client.connect();
  const subscriptionId = await client.subscribe({ events: ['agent_status'], filters: { agentId } });
  report({ step: 'subscribed', subscriptionId });

  const event = await firstStatus;
  report({ step: 'received', id: event.id, agentId: event.data.agentId, status: event.data.status });
  client.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
