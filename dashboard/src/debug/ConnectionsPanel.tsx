import { useEffect, useMemo, useState } from 'react';

import { Empty, Panel } from '../components/common';
import type { ApiResult, GatewayApi } from './api';
import { formatAge, formatSize } from './clock';
import { connectionResources, filterConnections, nextSort, sortConnections, type SortKey, type SortOrder } from './connections';
import type { ApiError, ConnectionInfo, Listing } from './model';
import { ApiErrorNotice, PartialNotice } from './notices';

const COLUMNS: { key: SortKey; label: string; numeric?: boolean }[] = [
  { key: 'connectionId', label: 'Connection' },
  { key: 'subject', label: 'Subject' },
  { key: 'nodeId', label: 'Node' },
  { key: 'remoteAddress', label: 'Remote' },
  { key: 'connectedAt', label: 'Connected' },
  { key: 'subscriptions', label: 'Subscriptions', numeric: true },
  { key: 'state', label: 'State' },
  { key: 'queueBytes', label: 'Queue', numeric: true },
  { key: 'bytesIn', label: 'In', numeric: true },
  { key: 'bytesOut', label: 'Out', numeric: true },
];

export interface ConnectionsPanelProps {
  api: GatewayApi;
  answer: ApiResult<Listing<ConnectionInfo>> | null;
  serverNow: number;
  /** This tab's own connection, marked in the table. */
  ownConnectionId: string | null;
  /** Poll again now (after a disconnect). */
  refresh: () => void;
}

/**
 * Every open connection of the deployment: filter by subject or by a resource
 * its subscriptions name, sort by any column, and disconnect one after a
 * confirmation (`DELETE /api/v1/connections/{id}`; its node closes it with
 * 1008). A closed row shows "closing…" until the next answers leave it out.
 */
export function ConnectionsPanel({ api, answer, serverNow, ownConnectionId, refresh }: ConnectionsPanelProps) {
  const [subject, setSubject] = useState('');
  const [resource, setResource] = useState('');
  const [order, setOrder] = useState<SortOrder>({ key: 'connectedAt', dir: 'asc' });
  const [confirming, setConfirming] = useState<string | null>(null);
  const [closing, setClosing] = useState<ReadonlySet<string>>(new Set());
  const [failure, setFailure] = useState<{ id: string; error: ApiError } | null>(null);

  const all = useMemo(() => (answer?.ok ? answer.value.items : []), [answer]);
  const rows = useMemo(() => sortConnections(filterConnections(all, { subject, resource }), order), [all, subject, resource, order]);

  // A closed connection stays marked until an answer no longer lists it.
  useEffect(() => {
    if (!answer?.ok || closing.size === 0) return;
    const listed = new Set(all.map((c) => c.connectionId));
    const still = [...closing].filter((id) => listed.has(id));
    if (still.length !== closing.size) setClosing(new Set(still));
  }, [answer, all, closing]);

  const disconnect = async (id: string) => {
    setConfirming(null);
    setFailure(null);
    const res = await api.disconnect(id);
    if (res.ok || res.error.status === 404) {
      setClosing((s) => new Set(s).add(id)); // a 404: already gone; the next answer drops it
    } else {
      setFailure({ id, error: res.error });
    }
    refresh();
  };

  return (
    <Panel
      title="Connections"
      id="debug-connections"
      extra={answer?.ok && <span className="panel-meta" data-testid="connections-count">{rows.length === all.length ? `${all.length}` : `${rows.length} of ${all.length}`}</span>}
    >
      <div className="debug-controls" role="search">
        <label>
          Subject
          <input type="search" value={subject} onChange={(e) => setSubject(e.target.value)} placeholder="part of a subject" data-testid="filter-subject" />
        </label>
        <label>
          Resource
          <input type="search" value={resource} onChange={(e) => setResource(e.target.value)} placeholder="agent:coder-001, repo:…, *" data-testid="filter-resource" />
        </label>
      </div>
      {answer && !answer.ok && <ApiErrorNotice error={answer.error} />}
      {answer?.ok && <PartialNotice answer={answer.value} />}
      {failure && (
        <div data-testid="disconnect-error">
          <ApiErrorNotice error={failure.error} />
        </div>
      )}
      {!answer ? (
        <Empty>Asking the gateway…</Empty>
      ) : rows.length === 0 ? (
        answer.ok && <Empty>{all.length ? 'No connection matches the filter.' : 'No open connection.'}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="debug-table" data-testid="connections-table">
            <thead>
              <tr>
                {COLUMNS.map((col) => (
                  <th
                    key={col.key}
                    scope="col"
                    className={col.numeric ? 'num' : undefined}
                    aria-sort={order.key === col.key ? (order.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
                  >
                    <button type="button" className="sort-button" onClick={() => setOrder((o) => nextSort(o, col.key))} data-sort={col.key}>
                      {col.label}
                      <span aria-hidden="true" className="sort-mark">
                        {order.key === col.key ? (order.dir === 'asc' ? '▲' : '▼') : ''}
                      </span>
                    </button>
                  </th>
                ))}
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => {
                const isClosing = closing.has(c.connectionId);
                const resources = connectionResources(c);
                return (
                  <tr
                    key={c.connectionId}
                    data-testid="connection-row"
                    data-connection={c.connectionId}
                    data-subject={c.subject ?? ''}
                    data-node={c.nodeId}
                    className={isClosing ? 'row-closing' : undefined}
                  >
                    <td>
                      <code>{c.connectionId}</code>
                      {c.connectionId === ownConnectionId && <span className="badge">this tab</span>}
                    </td>
                    <td>{c.subject ?? <span className="muted">not signed in</span>}</td>
                    <td>
                      <code className="small">{c.nodeId}</code>
                    </td>
                    <td>{c.remoteAddress}</td>
                    <td title={c.connectedAt !== null ? new Date(c.connectedAt).toISOString() : undefined}>
                      {c.connectedAt !== null ? `${formatAge(serverNow - c.connectedAt)} ago` : '—'}
                    </td>
                    <td className="num" title={c.subscriptions.map((s) => `${s.subscriptionId}: ${s.events.join(' ')}`).join('\n')}>
                      {c.subscriptions.length}
                      {resources.length > 0 && <span className="resources">{resources.join(' ')}</span>}
                    </td>
                    <td>
                      {isClosing ? 'closing…' : c.state}
                      <span className="muted small"> {[c.authKind, c.compression !== 'none' ? c.compression : null].filter(Boolean).join(' · ')}</span>
                    </td>
                    <td className="num">{formatSize(c.queueBytes)}</td>
                    <td className="num">{formatSize(c.bytesIn)}</td>
                    <td className="num">{formatSize(c.bytesOut)}</td>
                    <td className="actions">
                      {confirming === c.connectionId ? (
                        <span className="confirm" role="group" aria-label={`Disconnect ${c.connectionId}?`} data-testid="confirm-disconnect">
                          <span>Close it (1008)?</span>
                          <button type="button" className="danger" onClick={() => void disconnect(c.connectionId)} data-testid="confirm-yes">
                            Disconnect
                          </button>
                          <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                            Cancel
                          </button>
                        </span>
                      ) : (
                        <button
                          type="button"
                          className="secondary"
                          disabled={isClosing}
                          onClick={() => setConfirming(c.connectionId)}
                          data-testid="disconnect"
                        >
                          Disconnect…
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}
