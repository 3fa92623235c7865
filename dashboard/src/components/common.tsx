import type { ReactNode } from 'react';

import type { CategorySubscription } from '../subscriptions';

export function formatClock(ms: number): string {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

export function Bar({
  value,
  label,
  tone = 'blue',
  showValue = false,
}: {
  value: number;
  label: string;
  tone?: string;
  showValue?: boolean;
}) {
  const v = Math.max(0, Math.min(100, value));
  return (
    <div className="bar-row">
      <div
        className={`bar bar-${tone}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(v)}
      >
        <div className="bar-fill" style={{ width: `${v}%` }} />
      </div>
      {showValue && <span className="bar-value">{Math.round(v * 10) / 10}%</span>}
    </div>
  );
}

/** What a panel shows about its subscription: nothing when active, else why not. */
export function SubNotice({ sub, what }: { sub: CategorySubscription; what: string }) {
  if (sub.status === 'active') return null;
  if (sub.status === 'error') {
    if (sub.error?.code === 'forbidden') {
      return (
        <p className="notice notice-forbidden" data-testid="forbidden">
          <strong>forbidden</strong> — this credential may not read {what}.
        </p>
      );
    }
    return (
      <p className="notice notice-error">
        Subscription refused: {sub.error?.code ?? 'error'} {sub.error?.message ? `— ${sub.error.message}` : ''}
      </p>
    );
  }
  if (sub.status === 'off') return <p className="notice">Not subscribed: {sub.reason ?? 'off'}.</p>;
  return <p className="notice">Subscribing…</p>;
}

export function Panel({
  title,
  id,
  extra,
  children,
}: {
  title: string;
  id: string;
  extra?: ReactNode;
  children: ReactNode;
}) {
  return (
    <section className="panel" aria-labelledby={`${id}-title`} data-testid={`panel-${id}`}>
      <header className="panel-head">
        <h2 id={`${id}-title`}>{title}</h2>
        {extra}
      </header>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}
