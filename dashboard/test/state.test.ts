import type { Envelope } from '@autosdlc/ws-client';
import { describe, expect, it } from 'vitest';

import { guessKind, parseFragment } from '../src/credentials';
import { initialState, LIMITS, reduce, safeUrl, sortSystem, type DashboardState } from '../src/state';
import { agentScope, ALL_TYPES, DEFAULT_FILTERS, subscriptionSpecs } from '../src/subscriptions';

let n = 0;
function ev(type: string, data: Record<string, unknown>, timestamp = 1_700_000_000_000): Envelope {
  n += 1;
  return { id: `evt-${n}`, type, timestamp, data };
}

function run(...envs: Envelope[]): DashboardState {
  return envs.reduce((s, env) => reduce(s, { kind: 'event', env }), initialState());
}

describe('reduce: agents', () => {
  it('tracks status, task progress, metrics and completion', () => {
    let s = run(
      ev('agent_status', { agentId: 'coder-001', agentType: 'coder', status: 'idle', metrics: { cpuUsage: 5, memoryUsage: 512 * 2 ** 20, tasksCompleted: 2 } }),
      ev('agent_task_update', { agentId: 'coder-001', taskId: 'task-1', status: 'queued', progress: 0, taskType: 'implement_feature' }),
      ev('agent_status', { agentId: 'coder-001', status: 'busy', currentTask: { id: 'task-1', progress: 0 } }),
      ev('agent_task_update', { agentId: 'coder-001', taskId: 'task-1', status: 'running', progress: 40, message: 'green phase' }),
      ev('agent_metric', { agentId: 'coder-001', cpuUsage: 77.5 }),
    );
    const a = s.agents['coder-001']!;
    expect(a).toMatchObject({ status: 'busy', type: 'coder', cpu: 77.5, memory: 512 * 2 ** 20, tasksCompleted: 2 });
    expect(a.task).toMatchObject({ id: 'task-1', progress: 40, type: 'implement_feature', message: 'green phase' });

    s = reduce(s, { kind: 'event', env: ev('agent_task_update', { agentId: 'coder-001', taskId: 'task-1', status: 'completed', progress: 100 }) });
    s = reduce(s, { kind: 'event', env: ev('agent_status', { agentId: 'coder-001', status: 'idle', metrics: { tasksCompleted: 3 } }) });
    expect(s.agents['coder-001']!.task).toBeNull();
    expect(s.agents['coder-001']!.lastTask).toMatchObject({ id: 'task-1', status: 'completed', progress: 100 });
    expect(s.agents['coder-001']!.tasksCompleted).toBe(3);
    expect(s.knownAgents).toEqual(['coder-001']);
  });

  it('ignores malformed payloads instead of throwing', () => {
    const s = run(
      ev('agent_status', { agentId: 42, status: 'busy' }),
      ev('agent_status', { status: 'busy' }),
      ev('agent_task_update', { agentId: 'x', status: 'running' }),
      ev('tdd_phase_change', { agentId: 'x', currentPhase: 'purple' }),
      ev('agent_metric', { agentId: 'x', cpuUsage: 'lots' }),
      { id: 'e', type: 'agent_log', timestamp: 1, data: null as unknown as Record<string, unknown> },
    );
    expect(s.total).toBe(6);
    expect(s.feed).toHaveLength(6);
    expect(s.agents['x']?.cpu).toBeUndefined();
    expect(s.tdd['x']).toBeUndefined();
  });
});

describe('reduce: TDD', () => {
  it('records phases, counts, coverage and the last phase changes (newest first, bounded)', () => {
    const phases = ['red', 'green', 'refactor'] as const;
    const envs = Array.from({ length: 20 }, (_, i) =>
      ev('tdd_phase_change', {
        agentId: 'coder-001',
        taskId: 'task-9',
        ...(i ? { previousPhase: phases[(i - 1) % 3] } : {}),
        currentPhase: phases[i % 3],
        testResults: { total: 30 + i, passing: 29 + i, failing: 1 },
        coverage: { lines: 60 + i, branches: 50, functions: 70 },
      }),
    );
    const s = run(...envs, ev('coverage_update', { agentId: 'coder-001', lines: 99.5 }));
    const t = s.tdd['coder-001']!;
    expect(t.phase).toBe(phases[19 % 3]);
    expect(t.tests).toEqual({ total: 49, passing: 48, failing: 1 });
    expect(t.coverage).toEqual({ lines: 99.5, branches: 50, functions: 70 });
    expect(s.phaseChanges).toHaveLength(LIMITS.phaseChanges);
    expect(s.phaseChanges[0]).toMatchObject({ from: phases[18 % 3], to: phases[19 % 3] });
  });
});

describe('reduce: workflows', () => {
  it('follows steps to completion and failure', () => {
    const s = run(
      ev('workflow_started', { workflowId: 'wf-1', name: 'feature-delivery', steps: ['plan', 'test'] }),
      ev('workflow_started', { workflowId: 'wf-2', name: 'release-train', steps: ['plan', 'deploy'] }),
      ev('workflow_step_complete', { workflowId: 'wf-1', step: 'plan', stepIndex: 0, status: 'success', durationMs: 1200 }),
      ev('workflow_step_complete', { workflowId: 'wf-2', step: 'plan', stepIndex: 0, status: 'failure' }),
      ev('workflow_failed', { workflowId: 'wf-2', error: 'plan failed', step: 'plan' }),
    );
    expect(s.workflows['wf-1']!.state).toBe('running');
    expect(s.workflows['wf-1']!.steps.map((x) => x.status)).toEqual(['success', 'running']);
    expect(s.workflows['wf-2']).toMatchObject({ state: 'failed', error: 'plan failed', failedStep: 'plan' });
    const done = reduce(s, { kind: 'event', env: ev('workflow_complete', { workflowId: 'wf-1', durationMs: 5000 }) });
    expect(done.workflows['wf-1']).toMatchObject({ state: 'complete', durationMs: 5000 });
    expect(done.workflows['wf-1']!.steps.every((x) => x.status === 'success')).toBe(true);
  });

  it('keeps running workflows and only the most recent finished ones', () => {
    const envs: Envelope[] = [ev('workflow_started', { workflowId: 'wf-keep', name: 'long' })];
    for (let i = 0; i < 30; i += 1) envs.push(ev('workflow_complete', { workflowId: `wf-${i}` }));
    const s = run(...envs);
    expect(s.workflows['wf-keep']?.state).toBe('running');
    expect(s.workflowOrder.filter((id) => s.workflows[id]!.state !== 'running')).toHaveLength(LIMITS.finishedWorkflows);
    expect(Object.keys(s.workflows)).toHaveLength(LIMITS.finishedWorkflows + 1);
  });
});

describe('reduce: system and GitHub', () => {
  it('updates an alert in place when it resolves, and sorts active alerts by severity', () => {
    const s = run(
      ev('system_notification', { message: 'hello', title: 'Hi', level: 'info' }, 1),
      ev('system_alert', { alertId: 'a1', severity: 'warning', message: 'disk' }, 2),
      ev('system_alert', { alertId: 'a2', severity: 'critical', message: 'cpu' }, 3),
      ev('system_alert', { alertId: 'a1', severity: 'warning', message: 'Resolved: disk', resolved: true }, 4),
    );
    expect(s.system).toHaveLength(3);
    expect(sortSystem(s.system).map((i) => i.key)).toEqual(['alert:a2', 'alert:a1', expect.stringMatching(/^note:/)]);
    expect(s.system.find((i) => i.key === 'alert:a1')?.resolved).toBe(true);
  });

  it('only keeps http(s) links', () => {
    expect(safeUrl('https://github.com/o/r/pull/1')).toBe('https://github.com/o/r/pull/1');
    expect(safeUrl('javascript:alert(1)')).toBeNull();
    expect(safeUrl('data:text/html,<b>x</b>')).toBeNull();
    expect(safeUrl('/relative')).toBeNull();
    const s = run(
      ev('github_pr_update', { repository: 'o/r', action: 'closed', number: 7, title: '<img src=x onerror=alert(1)>', url: 'javascript:alert(1)', merged: true }),
    );
    expect(s.github[0]).toMatchObject({ kind: 'pr', url: null, merged: true, title: '<img src=x onerror=alert(1)>' });
  });
});

describe('reduce: feed', () => {
  it('is newest first, bounded, with markers and gaps', () => {
    let s = initialState();
    for (let i = 0; i < LIMITS.feed + 20; i += 1) s = reduce(s, { kind: 'event', env: ev('agent_log', { agentId: 'a', level: 'info', message: `m${i}` }) });
    s = reduce(s, { kind: 'reset', reason: 'session_not_resumed', at: 5 });
    s = reduce(s, { kind: 'marker', text: 'Subscribed', at: 6 });
    expect(s.feed).toHaveLength(LIMITS.feed);
    expect(s.feed[0]!.type).toBe('marker');
    expect(s.feed[1]!.type).toBe('gap');
    expect(s.gaps).toBe(1);
    const seqs = s.feed.map((f) => f.seq);
    expect([...seqs].sort((a, b) => b - a)).toEqual(seqs);
  });
});

describe('reduce: snapshot events (the state when subscribing)', () => {
  it('fill the panels like live events, oldest first, and are marked in the feed', () => {
    const snap = (type: string, data: Record<string, unknown>, timestamp: number) => ({
      ...ev(type, data),
      timestamp,
      metadata: { snapshot: true },
    });
    let s = initialState();
    for (const env of [
      snap('agent_status', { agentId: 'coder-001', status: 'busy', currentTask: { id: 't1', progress: 40 } }, 1000),
      snap('workflow_started', { workflowId: 'wf-1', name: 'Release', steps: ['build', 'test'] }, 2000),
      snap('tdd_phase_change', { agentId: 'coder-001', previousPhase: 'red', currentPhase: 'green' }, 3000),
      snap('agent_status', { agentId: 'tester-001', status: 'idle' }, 4000),
    ]) {
      s = reduce(s, { kind: 'event', env });
    }
    expect(s.agentOrder).toEqual(['coder-001', 'tester-001']);
    expect(s.agents['coder-001']).toMatchObject({ status: 'busy', task: { id: 't1', progress: 40 }, updatedAt: 1000 });
    expect(s.agents['tester-001']).toMatchObject({ status: 'idle', updatedAt: 4000 });
    expect(s.workflows['wf-1']).toMatchObject({ state: 'running', name: 'Release', startedAt: 2000 });
    expect(s.tdd['coder-001']).toMatchObject({ phase: 'green' });
    expect(s.feed.map((f) => [f.type, f.snapshot])).toEqual([
      ['agent_status', true],
      ['tdd_phase_change', true],
      ['workflow_started', true],
      ['agent_status', true],
    ]);
    // A live event is not marked.
    s = reduce(s, { kind: 'event', env: ev('agent_status', { agentId: 'coder-001', status: 'idle' }) });
    expect(s.feed[0]!.snapshot).toBeUndefined();
    expect(s.agents['coder-001']!.status).toBe('idle');
  });

  it('a lost session says the current state is asked for again', () => {
    const s = reduce(initialState(), { kind: 'reset', reason: 'session_not_resumed', at: 5 });
    expect(s.feed[0]!.summary).toContain('the current state is asked for again');
    const lost = reduce(initialState(), { kind: 'reset', reason: 'history_lost', at: 5 });
    expect(lost.feed[0]!.summary).toContain('catch up as new events arrive');
  });
});

describe('subscriptions', () => {
  it('one subscription per category, unfiltered by default', () => {
    const specs = subscriptionSpecs(DEFAULT_FILTERS, null);
    expect(specs.agents).toEqual({ active: true, events: expect.arrayContaining(['agent_status', 'tdd_phase_change']) });
    expect(specs.github.active).toBe(true);
  });

  it('an agent filter filters the agent subscription and pauses the ones naming no agent', () => {
    const specs = subscriptionSpecs({ ...DEFAULT_FILTERS, agents: ['tester-001', 'coder-001'] }, null);
    expect(specs.agents).toMatchObject({ active: true, filters: { agentId: ['coder-001', 'tester-001'] } });
    expect(specs.workflows).toMatchObject({ active: false });
  });

  it('event type filters choose the subscribed types', () => {
    const specs = subscriptionSpecs({ agents: [], types: ['tdd_phase_change', 'system_alert'] }, null);
    expect(specs.agents).toEqual({ active: true, events: ['tdd_phase_change'] });
    expect(specs.system).toEqual({ active: true, events: ['system_alert'] });
    expect(specs.workflows).toMatchObject({ active: false, reason: 'no event types selected' });
    expect(ALL_TYPES).toHaveLength(18);
  });

  it('a credential limited to some agents scopes the agent subscription', () => {
    expect(agentScope(['read:*'])).toBeNull();
    expect(agentScope(['read:agent:*', 'read:system'])).toBeNull();
    expect(agentScope(['read:agent:coder-001', 'publish:agent:x', 'admin:agent:tester-001'])).toEqual(['coder-001', 'tester-001']);
    expect(agentScope(['read:system'])).toBeNull();
    const specs = subscriptionSpecs(DEFAULT_FILTERS, ['coder-001']);
    expect(specs.agents).toMatchObject({ filters: { agentId: ['coder-001'] } });
    expect(specs.system).toMatchObject({ active: true }); // sent; the gateway says forbidden
  });
});

describe('credentials', () => {
  it('reads a token or an API key from the fragment', () => {
    expect(parseFragment('#token=aaa.bbb.ccc')).toEqual({ kind: 'token', value: 'aaa.bbb.ccc' });
    expect(parseFragment('#api_key=k123')).toEqual({ kind: 'apiKey', value: 'k123' });
    expect(parseFragment('#section-2')).toBeNull();
    expect(parseFragment('')).toBeNull();
  });

  it('tells a JWT from an API key', () => {
    expect(guessKind('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig_-x')).toBe('token');
    expect(guessKind('ak_live_5f2c9e')).toBe('apiKey');
  });
});
