import type { PhaseChange, TddPhase, TddView } from '../state';
import type { CategorySubscription } from '../subscriptions';
import { Bar, Empty, formatClock, Panel, SubNotice } from './common';

const PHASES: TddPhase[] = ['red', 'green', 'refactor'];

function PhaseCycle({ phase }: { phase?: TddPhase }) {
  return (
    <ol className="cycle" aria-label={`phase ${phase ?? 'unknown'}`}>
      {PHASES.map((p) => (
        <li key={p} className={`cycle-step cyc-${p} ${p === phase ? 'current' : ''}`} aria-current={p === phase ? 'step' : undefined}>
          {p}
        </li>
      ))}
    </ol>
  );
}

function TddCard({ t }: { t: TddView }) {
  const tests = t.tests;
  const passPct = tests && tests.total > 0 ? (100 * tests.passing) / tests.total : 0;
  return (
    <article className="tdd" data-testid="tdd-card" data-agent={t.agentId} data-phase={t.phase ?? ''}>
      <header className="tdd-head">
        <span className="agent-id">{t.agentId}</span>
        {t.taskId && <span className="muted">{t.taskId}</span>}
        {t.phase ? <PhaseCycle phase={t.phase} /> : <span className="muted small">tests only</span>}
      </header>
      <div className="tdd-tests">
        {tests ? (
          <>
            <span className="count count-pass">{tests.passing} passing</span>
            <span className={`count ${tests.failing ? 'count-fail' : 'muted'}`}>{tests.failing} failing</span>
            {tests.skipped ? <span className="count muted">{tests.skipped} skipped</span> : null}
            <span className="muted">of {tests.total}</span>
          </>
        ) : (
          <span className="muted">no test results yet</span>
        )}
      </div>
      {tests && <Bar value={passPct} label={`${t.agentId} tests passing`} tone={tests.failing ? 'red' : 'green'} />}
      {t.coverage && (
        <div className="coverage">
          {(['lines', 'branches', 'functions'] as const).map((k) =>
            t.coverage?.[k] !== undefined ? (
              <div className="coverage-row" key={k}>
                <span className="coverage-label">{k}</span>
                <Bar value={t.coverage[k]!} label={`${t.agentId} ${k} coverage`} tone="green" showValue />
              </div>
            ) : null,
          )}
        </div>
      )}
    </article>
  );
}

export function TddPanel({
  tdd,
  order,
  changes,
  sub,
}: {
  tdd: Record<string, TddView>;
  order: string[];
  changes: PhaseChange[];
  sub: CategorySubscription;
}) {
  const cards = order.map((id) => tdd[id]).filter((t): t is TddView => Boolean(t));
  // Agents in a TDD cycle first.
  cards.sort((a, b) => Number(Boolean(b.phase)) - Number(Boolean(a.phase)));
  return (
    <Panel title="TDD" id="tdd">
      <SubNotice sub={sub} what="agents' TDD events" />
      {cards.length === 0 ? (
        <Empty>No TDD activity yet.</Empty>
      ) : (
        <div className="tdd-grid">
          {cards.map((t) => (
            <TddCard key={t.agentId} t={t} />
          ))}
        </div>
      )}
      <h3 className="subhead">Last phase changes</h3>
      {changes.length === 0 ? (
        <Empty>None yet.</Empty>
      ) : (
        <ul className="phase-changes">
          {changes.map((c) => (
            <li key={c.id} data-testid="phase-change" data-agent={c.agentId} data-phase={c.to}>
              <time className="muted">{formatClock(c.at)}</time>
              <span className="agent-id">{c.agentId}</span>
              {c.from ? <span className={`phase phase-${c.from}`}>{c.from}</span> : <span className="muted">start</span>}
              <span aria-hidden="true">→</span>
              <span className={`phase phase-${c.to}`}>{c.to}</span>
              {c.tests && (
                <span className="muted">
                  {c.tests.passing}/{c.tests.total} passing
                </span>
              )}
              {c.taskId && <span className="muted">{c.taskId}</span>}
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
