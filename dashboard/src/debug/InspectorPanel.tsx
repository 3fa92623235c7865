import { useEffect, useMemo, useState } from 'react';

import { Empty, formatClock, Panel } from '../components/common';
import { FeedLines } from '../components/FeedPanel';
import { LIMITS, type FeedItem } from '../state';
import { copyText } from './clipboard';
import { arrivedSincePause, feedTypes, filterFeed, formatEnvelope, LIVE, NO_FILTER, pause, visibleFeed, type InspectorFilter, type PauseState } from './inspector';

export interface InspectorPanelProps {
  feed: readonly FeedItem[];
  selected: FeedItem | null;
  onSelect: (item: FeedItem | null) => void;
}

/**
 * The live feed with its envelopes: filter by type, resource and free text,
 * pause (the lines stay put while events keep arriving underneath) and
 * resume, and a picked line's whole envelope as formatted JSON to copy.
 */
export function InspectorPanel({ feed, selected, onSelect }: InspectorPanelProps) {
  const [filter, setFilter] = useState<InspectorFilter>(NO_FILTER);
  const [pauseState, setPauseState] = useState<PauseState>(LIVE);
  const [copied, setCopied] = useState<'copied' | 'failed' | null>(null);

  const shown = visibleFeed(feed, pauseState);
  const lines = useMemo(() => filterFeed(shown, filter), [shown, filter]);
  const types = useMemo(() => feedTypes(shown), [shown]);
  const newer = arrivedSincePause(feed, pauseState);
  const json = selected?.envelope ? formatEnvelope(selected.envelope) : null;
  useEffect(() => setCopied(null), [selected?.seq]);

  const copy = async () => {
    if (json === null) return;
    setCopied((await copyText(json)) ? 'copied' : 'failed');
  };

  return (
    <Panel
      title="Message inspector"
      id="debug-inspector"
      extra={
        <button
          type="button"
          className="secondary"
          aria-pressed={pauseState.paused}
          data-testid="inspector-pause"
          onClick={() => setPauseState(pauseState.paused ? LIVE : pause(feed))}
        >
          {pauseState.paused ? `Resume${newer ? ` (${newer}${newer >= LIMITS.feed ? '+' : ''} new)` : ''}` : 'Pause'}
        </button>
      }
    >
      <div className="debug-controls" role="search">
        <label>
          Type
          <select value={filter.type} onChange={(e) => setFilter({ ...filter, type: e.target.value })} data-testid="inspector-type">
            <option value="">all types</option>
            {[...new Set([...types, ...(filter.type ? [filter.type] : [])])].map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Resource
          <input type="search" value={filter.resource} placeholder="agent:coder-001, repo:…" onChange={(e) => setFilter({ ...filter, resource: e.target.value })} data-testid="inspector-resource" />
        </label>
        <label>
          Text
          <input type="search" value={filter.text} placeholder="anywhere in the envelope" onChange={(e) => setFilter({ ...filter, text: e.target.value })} data-testid="inspector-text" />
        </label>
      </div>
      <div className="inspector">
        <div className="inspector-list" data-testid="inspector-feed" data-paused={pauseState.paused}>
          {lines.length === 0 ? (
            <Empty>{shown.length ? 'No event matches the filter.' : 'Waiting for events…'}</Empty>
          ) : (
            <FeedLines feed={lines} onSelect={onSelect} selectedSeq={selected?.seq ?? null} />
          )}
        </div>
        <div className="inspector-detail" aria-live="polite">
          {selected && json !== null ? (
            <>
              <div className="inspector-head">
                <span>
                  <code>{selected.type}</code> <span className="muted">{formatClock(selected.at)}</span>
                </span>
                <span className="spacer" />
                {copied && (
                  <span className={copied === 'copied' ? 'ok small' : 'warn small'} data-testid="copy-status">
                    {copied === 'copied' ? 'Copied' : 'Copy failed: select the text'}
                  </span>
                )}
                <button type="button" className="secondary" onClick={() => void copy()} data-testid="copy-envelope">
                  Copy JSON
                </button>
                <button type="button" className="secondary" onClick={() => onSelect(null)}>
                  Close
                </button>
              </div>
              <pre className="envelope" data-testid="envelope-json" tabIndex={0}>
                {json}
              </pre>
            </>
          ) : (
            <Empty>Pick an event to see its whole envelope.</Empty>
          )}
        </div>
      </div>
    </Panel>
  );
}
