import type { KeyboardEvent } from 'react';

import type { FeedItem } from '../state';
import { Empty, formatClock, Panel } from './common';

export interface FeedLinesProps {
  feed: readonly FeedItem[];
  /** Given: event lines can be picked (click, Enter or Space) to inspect their envelope. */
  onSelect?: (item: FeedItem) => void;
  selectedSeq?: number | null;
}

/** The feed's lines, newest first. The dashboard's own lines (markers, gaps) cannot be picked. */
export function FeedLines({ feed, onSelect, selectedSeq = null }: FeedLinesProps) {
  const pick = (item: FeedItem) => onSelect?.(item);
  const onKey = (e: KeyboardEvent, item: FeedItem) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      pick(item);
    }
  };
  return (
    <ol className="feed" aria-live="off">
      {feed.map((f) =>
        f.type === 'marker' || f.type === 'gap' ? (
          <li key={f.seq} className={`feed-${f.type}`} data-testid="feed-marker" data-seq={f.seq} data-kind={f.type}>
            <time>{formatClock(f.at)}</time> {f.summary}
          </li>
        ) : (
          <li
            key={f.seq}
            className={`feed-item ${f.severity ? `feed-${f.severity}` : ''} ${onSelect ? 'feed-pickable' : ''} ${selectedSeq === f.seq ? 'feed-selected' : ''}`}
            data-testid="feed-item"
            data-seq={f.seq}
            data-type={f.type}
            data-agent={f.agentId ?? ''}
            data-snapshot={f.snapshot ? 'true' : undefined}
            {...(onSelect
              ? {
                  role: 'button',
                  tabIndex: 0,
                  'aria-pressed': selectedSeq === f.seq,
                  title: 'Inspect this envelope',
                  onClick: () => pick(f),
                  onKeyDown: (e: KeyboardEvent) => onKey(e, f),
                }
              : {})}
          >
            <time className="muted">{formatClock(f.at)}</time>
            <span className="feed-type">
              {f.type}
              {f.snapshot && (
                <span className="feed-snapshot" title="The state when the dashboard subscribed, not a live event">
                  state
                </span>
              )}
            </span>
            {f.agentId && <span className="feed-agent">{f.agentId}</span>}
            <span className="feed-text">{f.summary}</span>
          </li>
        ),
      )}
    </ol>
  );
}

export function FeedPanel({ feed, onSelect }: { feed: FeedItem[]; onSelect?: (item: FeedItem) => void }) {
  return (
    <Panel title="Live feed" id="feed" extra={<span className="panel-meta">newest first · last {feed.length}</span>}>
      {feed.length === 0 ? <Empty>Waiting for events…</Empty> : <FeedLines feed={feed} {...(onSelect ? { onSelect } : {})} />}
    </Panel>
  );
}
