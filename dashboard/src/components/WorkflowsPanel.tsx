import { formatDuration, type WorkflowView } from '../state';
import type { CategorySubscription } from '../subscriptions';
import { Empty, formatClock, Panel, SubNotice } from './common';

function Steps({ wf }: { wf: WorkflowView }) {
  if (wf.steps.length === 0) return <span className="muted small">steps unknown (started before this page connected)</span>;
  return (
    <ol className="steps">
      {wf.steps.map((s, i) => (
        <li key={`${s.name}-${i}`} className={`step step-${s.status}`} title={`${s.name}: ${s.status}${s.durationMs !== undefined ? ` in ${formatDuration(s.durationMs)}` : ''}`}>
          <span className="step-icon" aria-hidden="true">
            {s.status === 'success' ? '✓' : s.status === 'failure' ? '✕' : s.status === 'skipped' ? '↷' : s.status === 'running' ? '●' : '○'}
          </span>
          {s.name}
        </li>
      ))}
    </ol>
  );
}

export function WorkflowsPanel({ workflows, sub, now }: { workflows: WorkflowView[]; sub: CategorySubscription; now: number }) {
  const running = workflows.filter((w) => w.state === 'running');
  const finished = workflows.filter((w) => w.state !== 'running').sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
  return (
    <Panel
      title="Workflows"
      id="workflows"
      extra={
        <span className="panel-meta">
          {running.length} running · {finished.filter((w) => w.state === 'complete').length} finished ·{' '}
          {finished.filter((w) => w.state === 'failed').length} failed
        </span>
      }
    >
      <SubNotice sub={sub} what="workflows" />
      <h3 className="subhead">Running</h3>
      {running.length === 0 ? (
        <Empty>No workflow is running.</Empty>
      ) : (
        <ul className="workflows">
          {running.map((w) => (
            <li key={w.id} className="wf wf-running" data-testid="workflow" data-state="running">
              <div className="wf-line">
                <span className="wf-name">{w.name ?? w.id}</span>
                {w.name && <span className="muted">{w.id}</span>}
                <span className="muted">running for {formatDuration(Math.max(0, now - w.startedAt))}</span>
              </div>
              <Steps wf={w} />
            </li>
          ))}
        </ul>
      )}
      <h3 className="subhead">Finished and failed</h3>
      {finished.length === 0 ? (
        <Empty>None yet.</Empty>
      ) : (
        <ul className="workflows">
          {finished.map((w) => (
            <li key={w.id} className={`wf wf-${w.state}`} data-testid="workflow" data-state={w.state}>
              <div className="wf-line">
                <span className={`pill pill-${w.state}`}>{w.state === 'complete' ? 'finished' : 'failed'}</span>
                <span className="wf-name">{w.name ?? w.id}</span>
                {w.name && <span className="muted">{w.id}</span>}
                {w.endedAt !== undefined && <time className="muted">{formatClock(w.endedAt)}</time>}
                {w.durationMs !== undefined && <span className="muted">{formatDuration(w.durationMs)}</span>}
              </div>
              {w.state === 'failed' && <div className="wf-error">{w.error}</div>}
              <Steps wf={w} />
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
