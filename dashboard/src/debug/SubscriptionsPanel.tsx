import { Empty, Panel } from '../components/common';
import type { ApiResult } from './api';
import type { Completeness, SubscriptionCounts } from './model';
import { ApiErrorNotice, PartialNotice } from './notices';

/** Rows shown per list; the rest is summed in one line. */
const SHOWN = 12;

function CountList({ title, rows, testId }: { title: string; rows: { name: string; subscribers: number }[]; testId: string }) {
  const max = Math.max(1, ...rows.map((r) => r.subscribers));
  const rest = rows.slice(SHOWN);
  return (
    <div className="count-list">
      <h3>{title}</h3>
      {rows.length === 0 ? (
        <Empty>None.</Empty>
      ) : (
        <ul>
          {rows.slice(0, SHOWN).map((r) => (
            <li key={r.name} data-testid={testId} data-name={r.name} data-count={r.subscribers}>
              <code>{r.name}</code>
              <meter min={0} max={max} value={r.subscribers} aria-label={`${r.name}: ${r.subscribers} connections`} />
              <span className="num">{r.subscribers}</span>
            </li>
          ))}
          {rest.length > 0 && (
            <li className="muted">…and {rest.length} more</li>
          )}
        </ul>
      )}
    </div>
  );
}

/** How many connections subscribe to each resource and each event type, across the deployment. */
export function SubscriptionsPanel({ answer }: { answer: ApiResult<SubscriptionCounts & Completeness> | null }) {
  return (
    <Panel title="Subscriptions" id="debug-subscriptions" extra={<span className="panel-meta">connections per resource / type</span>}>
      {answer && !answer.ok && <ApiErrorNotice error={answer.error} />}
      {answer?.ok && <PartialNotice answer={answer.value} />}
      {!answer ? (
        <Empty>Asking the gateway…</Empty>
      ) : (
        answer.ok && (
          <div className="counts">
            <CountList title="By resource" testId="sub-resource" rows={answer.value.resources.map((r) => ({ name: r.resource, subscribers: r.subscribers }))} />
            <CountList title="By event type" testId="sub-type" rows={answer.value.types.map((t) => ({ name: t.type, subscribers: t.subscribers }))} />
          </div>
        )
      )}
    </Panel>
  );
}
