import { formatBytes, type AgentView } from '../state';
import type { CategorySubscription } from '../subscriptions';
import { Bar, Empty, Panel, SubNotice } from './common';

function AgentCard({ agent }: { agent: AgentView }) {
  const task = agent.task;
  return (
    <article className={`agent agent-${agent.status}`} data-testid="agent-card" data-agent={agent.id} data-status={agent.status}>
      <header className="agent-head">
        <span className="agent-id">{agent.id}</span>
        {agent.type && <span className="agent-type">{agent.type}</span>}
        <span className={`pill pill-${agent.status}`}>{agent.status}</span>
      </header>
      <div className="agent-task">
        {task ? (
          <>
            <div className="task-line">
              <span className="task-id">{task.id}</span>
              {task.type && <span className="muted">{task.type.replace(/_/g, ' ')}</span>}
              <span className="task-pct">{Math.round(task.progress)}%</span>
            </div>
            <Bar key={task.id} value={task.progress} label={`${agent.id} task progress`} tone={agent.status === 'error' ? 'red' : 'blue'} />
            {task.message && <div className="task-msg">{task.message}</div>}
          </>
        ) : (
          <>
            <div className="task-line muted">
              {agent.lastTask ? (
                <>
                  no task · last <span className="task-id">{agent.lastTask.id}</span> {agent.lastTask.status}
                </>
              ) : (
                'no current task'
              )}
            </div>
            <Bar key="no-task" value={0} label={`${agent.id} task progress`} tone="grey" />
            {agent.lastTask?.status === 'failed' && agent.lastTask.message && (
              <div className="task-msg task-msg-error">{agent.lastTask.message}</div>
            )}
          </>
        )}
      </div>
      <dl className="agent-metrics">
        <div>
          <dt>CPU</dt>
          <dd>
            <Bar value={agent.cpu ?? 0} label={`${agent.id} CPU`} tone={(agent.cpu ?? 0) > 85 ? 'amber' : 'teal'} />
            <span className="metric-value">{agent.cpu !== undefined ? `${agent.cpu.toFixed(0)}%` : '—'}</span>
          </dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd className="metric-value">{formatBytes(agent.memory)}</dd>
        </div>
        <div>
          <dt>Done</dt>
          <dd className="metric-value" data-testid="tasks-completed">
            {agent.tasksCompleted ?? '—'}
          </dd>
        </div>
      </dl>
      {agent.lastLog && (
        <div className={`agent-log log-${agent.lastLog.level}`} title={agent.lastLog.message}>
          <span className="log-level">{agent.lastLog.level}</span> {agent.lastLog.message}
        </div>
      )}
    </article>
  );
}

export function AgentsPanel({ agents, sub }: { agents: AgentView[]; sub: CategorySubscription; now: number }) {
  const busy = agents.filter((a) => a.status === 'busy').length;
  const errors = agents.filter((a) => a.status === 'error').length;
  return (
    <Panel
      title="Agents"
      id="agents"
      extra={
        agents.length > 0 && (
          <span className="panel-meta">
            {agents.length} agents · {busy} busy{errors ? ` · ${errors} in error` : ''}
          </span>
        )
      }
    >
      <SubNotice sub={sub} what="agents" />
      {agents.length === 0 ? (
        sub.status === 'error' ? null : <Empty>No agent has reported yet.</Empty>
      ) : (
        <div className="agents">
          {agents.map((a) => (
            <AgentCard key={a.id} agent={a} />
          ))}
        </div>
      )}
    </Panel>
  );
}
