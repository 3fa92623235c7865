import { severityCounts, sortSystem, type Severity, type SystemItem } from '../state';
import type { CategorySubscription } from '../subscriptions';
import { Empty, formatClock, Panel, SubNotice } from './common';

const SEVERITIES: Severity[] = ['critical', 'error', 'warning', 'info'];

export function SystemPanel({ items, sub }: { items: SystemItem[]; sub: CategorySubscription }) {
  const counts = severityCounts(items.filter((i) => i.kind === 'alert'));
  const sorted = sortSystem(items);
  return (
    <Panel
      title="Alerts & notifications"
      id="system"
      extra={
        <span className="sev-counts" aria-label="active alerts by severity">
          {SEVERITIES.map((s) => (
            <span key={s} className={`sev-count sev-${s} ${counts[s] ? '' : 'zero'}`} title={`${counts[s]} active ${s} alerts`}>
              {counts[s]} {s}
            </span>
          ))}
        </span>
      }
    >
      <SubNotice sub={sub} what="system events" />
      {sorted.length === 0 ? (
        sub.status === 'error' ? null : <Empty>All quiet.</Empty>
      ) : (
        <ul className="system">
          {sorted.map((i) => (
            <li
              key={i.key}
              className={`sys sys-${i.severity} ${i.resolved ? 'resolved' : ''}`}
              data-testid="system-item"
              data-kind={i.kind}
              data-severity={i.severity}
            >
              <div className="sys-line">
                <span className={`sev sev-${i.severity}`}>{i.resolved ? 'resolved' : i.severity}</span>
                <span className="sys-kind muted">{i.kind}</span>
                {i.title && <strong className="sys-title">{i.title}</strong>}
                <time className="muted">{formatClock(i.at)}</time>
              </div>
              <div className="sys-msg">{i.message}</div>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
