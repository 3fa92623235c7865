import type { GithubItem } from '../state';
import type { CategorySubscription } from '../subscriptions';
import { Empty, formatClock, Panel, SubNotice } from './common';

function label(i: GithubItem): string {
  const ref = i.number !== undefined ? `${i.kind === 'pr' ? 'PR' : i.kind === 'issue' ? 'issue' : 'run'} #${i.number}` : i.kind;
  return `${ref} ${i.title}`;
}

export function GithubPanel({ items, sub }: { items: GithubItem[]; sub: CategorySubscription }) {
  return (
    <Panel title="GitHub" id="github">
      <SubNotice sub={sub} what="repositories" />
      {items.length === 0 ? (
        sub.status === 'error' ? null : <Empty>No GitHub activity yet.</Empty>
      ) : (
        <ul className="github">
          {items.map((i) => (
            <li key={i.id} className={`gh gh-${i.kind}`} data-testid="github-item">
              <span className={`gh-action gh-${i.merged ? 'merged' : i.action}`}>{i.merged ? 'merged' : i.action}</span>
              {i.url ? (
                <a href={i.url} target="_blank" rel="noopener noreferrer">
                  {label(i)}
                </a>
              ) : (
                <span>{label(i)}</span>
              )}
              <span className="gh-meta muted">
                {i.repository}
                {i.actor ? ` · ${i.actor}` : ''} · {formatClock(i.at)}
              </span>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
