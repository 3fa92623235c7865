/**
 * Type-level tests: checked by `tsc` (npm run typecheck, part of npm test);
 * the runtime assertions are trivially true.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';

import { AutoSDLCWebSocketClient } from '../src/client.js';
import type {
  AgentStatusData,
  AnyEventEnvelope,
  Envelope,
  EnvelopeOf,
  EventType,
  HandlerEnvelope,
  ResetEnvelope,
  TddPhaseChangeData,
} from '../src/types.js';
import { EVENT_TYPES, CONTROL_TYPES } from '../src/types.js';
import type {
  ClientConfig,
  EventHandler,
  SubscribeConfig,
  SubscriptionConfig,
  Unsubscribe,
  WebSocketMessage,
  WebSocketOptions,
} from '../src/index.js';
import type { UseWebSocketOptions, UseWebSocketResult } from '../src/react.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The design document's examples (tests/fixtures/events/), written out so
// the type check does not depend on files outside the package; the last test
// checks they still match the fixture files.
const agentStatusExample: EnvelopeOf<'agent_status'> = {
  id: 'evt-123',
  type: 'agent_status',
  timestamp: 1703775135000,
  data: {
    agentId: 'coder-001',
    agentType: 'coder',
    status: 'busy',
    currentTask: { id: 'task-789', type: 'implement_feature', progress: 65 },
    metrics: { cpuUsage: 45.2, memoryUsage: 1024000000, tasksCompleted: 12 },
  },
};
const tddExample: EnvelopeOf<'tdd_phase_change'> = {
  id: 'evt-234',
  type: 'tdd_phase_change',
  timestamp: 1703775200000,
  data: {
    agentId: 'coder-001',
    taskId: 'task-789',
    previousPhase: 'red',
    currentPhase: 'green',
    testResults: { total: 45, passing: 45, failing: 0 },
    coverage: { lines: 98.5, branches: 95.2, functions: 100 },
  },
};

function fixturePath(name: string): string {
  // The repository keeps the fixtures (tests/fixtures/); nothing outside it is read.
  return fileURLToPath(new URL(`../../../tests/fixtures/events/${name}`, import.meta.url));
}

describe('types', () => {
  it('narrows handler envelopes by exact type and glob', () => {
    expectTypeOf<HandlerEnvelope<'agent_status'>>().toEqualTypeOf<EnvelopeOf<'agent_status'>>();
    expectTypeOf<HandlerEnvelope<'tdd_*'>>().toEqualTypeOf<EnvelopeOf<'tdd_phase_change'>>();
    expectTypeOf<HandlerEnvelope<'workflow_*'>>().toEqualTypeOf<
      | EnvelopeOf<'workflow_started'>
      | EnvelopeOf<'workflow_step_complete'>
      | EnvelopeOf<'workflow_complete'>
      | EnvelopeOf<'workflow_failed'>
    >();
    expectTypeOf<HandlerEnvelope<'*'>>().toEqualTypeOf<AnyEventEnvelope>();
    expectTypeOf<HandlerEnvelope<'$reset'>>().toEqualTypeOf<ResetEnvelope>();
    expectTypeOf<HandlerEnvelope<'custom_event'>>().toEqualTypeOf<Envelope>();
    expectTypeOf<HandlerEnvelope<'future_*'>>().toEqualTypeOf<Envelope>();
  });

  it('types handler parameters in on()', () => {
    const client = new AutoSDLCWebSocketClient({ url: 'ws://x/ws' });
    client.on('agent_status', (e) => {
      expectTypeOf(e.data.status).toEqualTypeOf<'idle' | 'busy' | 'error' | 'offline' | (string & {})>();
      expectTypeOf(e.data.currentTask?.progress).toEqualTypeOf<number | undefined>();
    });
    client.on('tdd_phase_change', (e) => {
      expectTypeOf(e.data.currentPhase).toEqualTypeOf<'red' | 'green' | 'refactor'>();
    });
    client.on('workflow_*', (e) => {
      expectTypeOf(e.data.workflowId).toEqualTypeOf<string>();
    });
    client.on('github_*', (e) => {
      expectTypeOf(e.data.repository).toEqualTypeOf<string>();
    });
    client.on('*', (e) => {
      if (e.type === 'agent_status') expectTypeOf(e.data).toEqualTypeOf<AgentStatusData>();
    });
    client.on('error', (e) => {
      expectTypeOf(e.data.code).toMatchTypeOf<string>();
    });
    expectTypeOf(client.subscribe).returns.toEqualTypeOf<Promise<string>>();
    expectTypeOf(client.connect).returns.toEqualTypeOf<Promise<void>>();
  });

  it('accepts the design document examples as their envelope types', () => {
    expectTypeOf(agentStatusExample.data).toEqualTypeOf<AgentStatusData>();
    expectTypeOf(tddExample.data).toEqualTypeOf<TddPhaseChangeData>();
    for (const [name, example] of [
      ['agent_status.json', agentStatusExample],
      ['tdd_phase_change.json', tddExample],
    ] as const) {
      expect(JSON.parse(readFileSync(fixturePath(name), 'utf8'))).toEqual(example);
    }
  });

  it('lists the contract types exactly', () => {
    expectTypeOf<(typeof EVENT_TYPES)[number]>().toEqualTypeOf<EventType>();
    const all: readonly string[] = [...CONTROL_TYPES, ...EVENT_TYPES];
    if (all.length !== 29) throw new Error(`expected 29 message types, got ${all.length}`);
  });

  it("exports the design document's type names from the package entry, and its send() signature", () => {
    expectTypeOf<WebSocketMessage>().toEqualTypeOf<Envelope>();
    expectTypeOf<WebSocketMessage<'agent_status', AgentStatusData>>().toEqualTypeOf<EnvelopeOf<'agent_status'>>();
    expectTypeOf<EventHandler>().toEqualTypeOf<(envelope: Envelope) => void>();
    expectTypeOf<EventHandler<'agent_status'>>().parameter(0).toEqualTypeOf<EnvelopeOf<'agent_status'>>();
    expectTypeOf<SubscriptionConfig>().toEqualTypeOf<SubscribeConfig>();
    expectTypeOf<SubscriptionConfig['snapshot']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<UseWebSocketOptions>().toMatchTypeOf<WebSocketOptions>();
    expectTypeOf<WebSocketOptions>().toMatchTypeOf<UseWebSocketOptions>();
    expectTypeOf<WebSocketOptions>().not.toHaveProperty('url');
    expectTypeOf<WebSocketOptions & { url: string }>().toMatchTypeOf<ClientConfig>();

    const client = new AutoSDLCWebSocketClient({ url: 'ws://x/ws' });
    const handler: EventHandler = (message: WebSocketMessage) => void message.id;
    expectTypeOf(client.on('agent_status', handler)).toEqualTypeOf<Unsubscribe>();
    expectTypeOf(client.send).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(client.send<'agent_log'>).toBeCallableWith({ type: 'agent_log', data: { agentId: 'a' } });
    expectTypeOf<UseWebSocketResult['sendMessage']>().returns.toEqualTypeOf<Promise<void>>();
    const config: SubscriptionConfig = { events: ['agent_*'], filters: { agentId: 'a' }, snapshot: true };
    expectTypeOf(client.subscribe(config)).toEqualTypeOf<Promise<string>>();
  });
});
