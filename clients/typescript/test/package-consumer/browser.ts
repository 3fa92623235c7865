/**
 * A browser app's hook as a bundler (Vite, webpack) project type-checks it:
 * `moduleResolution: bundler`, the DOM library and no Node types. Compiled,
 * never run, by test/package.test.ts.
 */
import { useState } from 'react';
import { AutoSDLCError, type AgentStatusData } from '@autosdlc/ws-client';
import { useEvent, useSubscription, useWebSocket } from '@autosdlc/ws-client/react';

type Status = AgentStatusData['status'];

export function useAgentStatus(agentId: string): { status: Status | null; problem: string | null } {
  const { client } = useWebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`, {
    getToken: () => fetch('/token').then((response) => response.text()),
  });
  const subscription = useSubscription({ events: ['agent_status'], filters: { agentId }, client });
  const [status, setStatus] = useState<Status | null>(null);
  useEvent(
    'agent_status',
    (event) => {
      if (event.data.agentId === agentId) setStatus(event.data.status);
    },
    client,
  );
  const problem = subscription.error instanceof AutoSDLCError ? subscription.error.code : null;
  return { status, problem };
}
