import type { AutoSDLCError, ConnectionState } from '@autosdlc/ws-client';

import { formatClock } from './common';

export interface HeaderProps {
  connState: ConnectionState;
  nextRetryAt: number | null;
  now: number;
  error: AutoSDLCError | null;
  rate: number;
  total: number;
  subject: string | null;
  expiresAt: number | null;
  gaps: number;
  onSignOut: () => void;
  onReconnect: () => void;
}

function ConnectionBadge({ connState, nextRetryAt, now, error, onReconnect }: Pick<HeaderProps, 'connState' | 'nextRetryAt' | 'now' | 'error' | 'onReconnect'>) {
  let label: string;
  let detail: string | null = null;
  switch (connState) {
    case 'open':
      label = 'Connected';
      break;
    case 'connecting':
    case 'idle':
      label = 'Connecting…';
      break;
    case 'reconnecting':
      label = 'Reconnecting';
      if (nextRetryAt !== null) {
        const s = Math.max(0, (nextRetryAt - now) / 1000);
        detail = `next attempt in ${s.toFixed(1)} s (${formatClock(nextRetryAt)})`;
      } else {
        detail = 'attempting now…';
      }
      break;
    case 'closed':
    default:
      label = 'Disconnected';
      detail = error ? error.message : null;
      break;
  }
  return (
    <div className={`conn conn-${connState}`} data-testid="connection" data-state={connState} role="status" aria-live="polite">
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-label">{label}</span>
      {detail && <span className="conn-detail">{detail}</span>}
      {connState === 'closed' && (
        <button type="button" className="link-button" onClick={onReconnect}>
          Reconnect
        </button>
      )}
    </div>
  );
}

function formatExpiry(expiresAt: number, now: number): string {
  const left = expiresAt - now;
  if (left <= 0) return 'token expired';
  const min = Math.round(left / 60_000);
  if (min < 1) return 'token expires in under a minute';
  if (min < 120) return `token expires in ${min} min`;
  return `token expires in ${Math.round(min / 60)} h`;
}

export function Header(props: HeaderProps) {
  const { rate, total, subject, expiresAt, gaps, onSignOut } = props;
  return (
    <header className="topbar">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">◆</span>
        <span className="brand-name">AutoSDLC</span>
        <span className="brand-sub">event gateway</span>
      </div>
      <ConnectionBadge {...props} />
      <div className="stat" data-testid="event-rate" title="events per second over the last 10 s">
        <span className="stat-value">{rate.toFixed(1)}</span>
        <span className="stat-label">events/s</span>
      </div>
      <div className="stat" title="events received since the page loaded">
        <span className="stat-value" data-testid="event-total">{total}</span>
        <span className="stat-label">events</span>
      </div>
      {gaps > 0 && (
        <div className="stat stat-warn" title="times the gateway could not replay what was missed">
          <span className="stat-value">{gaps}</span>
          <span className="stat-label">gaps</span>
        </div>
      )}
      <div className="spacer" />
      <div className="who">
        {subject ? (
          <>
            signed in as <strong>{subject}</strong>
            {expiresAt !== null && <span className="muted"> · {formatExpiry(expiresAt, props.now)}</span>}
          </>
        ) : (
          <span className="muted">signing in…</span>
        )}
      </div>
      <button type="button" className="secondary" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}
