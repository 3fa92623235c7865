import type { FeedItem } from '../state';
import { Empty, formatClock, Panel } from './common';

export function FeedPanel({ feed }: { feed: FeedItem[] }) {
  return (
    <Panel title="Live feed" id="feed" extra={<span className="panel-meta">newest first · last {feed.length}</span>}>
      {feed.length === 0 ? (
        <Empty>Waiting for events…</Empty>
      ) : (
        <ol className="feed" aria-live="off">
          {feed.map((f) =>
            f.type === 'marker' || f.type === 'gap' ? (
              <li key={f.seq} className={`feed-${f.type}`} data-testid="feed-marker" data-seq={f.seq} data-kind={f.type}>
                <time>{formatClock(f.at)}</time> {f.summary}
              </li>
            ) : (
              <li
                key={f.seq}
                className={`feed-item ${f.severity ? `feed-${f.severity}` : ''}`}
                data-testid="feed-item"
                data-seq={f.seq}
                data-type={f.type}
                data-agent={f.agentId ?? ''}
              >
                <time className="muted">{formatClock(f.at)}</time>
                <span className="feed-type">{f.type}</span>
                {f.agentId && <span className="feed-agent">{f.agentId}</span>}
                <span className="feed-text">{f.summary}</span>
              </li>
            ),
          )}
        </ol>
      )}
    </Panel>
  );
}
