import { Empty, Panel } from '../components/common';
import type { ApiResult } from './api';
import { formatAge } from './clock';
import type { ErrorGroup, Listing } from './model';
import { ApiErrorNotice, PartialNotice } from './notices';

/** Error groups of the whole deployment (by code and message type), with counts, rate and last seen. */
export function ErrorsPanel({ answer, serverNow }: { answer: ApiResult<Listing<ErrorGroup>> | null; serverNow: number }) {
  const groups = answer?.ok ? answer.value.items : [];
  const total = groups.reduce((n, g) => n + g.count, 0);
  return (
    <Panel title="Errors" id="debug-errors" extra={answer?.ok && <span className="panel-meta">{total} in {groups.length} groups</span>}>
      {answer && !answer.ok && <ApiErrorNotice error={answer.error} />}
      {answer?.ok && <PartialNotice answer={answer.value} />}
      {!answer ? (
        <Empty>Asking the gateway…</Empty>
      ) : groups.length === 0 ? (
        answer.ok && <Empty>No errors recorded.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="debug-table">
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Message type</th>
                <th scope="col" className="num">Count</th>
                <th scope="col" className="num">/min</th>
                <th scope="col">Last seen</th>
                <th scope="col">Last message</th>
                <th scope="col">Nodes</th>
              </tr>
            </thead>
            <tbody>
              {groups.map((g) => (
                <tr key={`${g.code}|${g.messageType}`} data-testid="error-group" data-code={g.code} className={g.alerting ? 'row-alerting' : undefined}>
                  <td>
                    <code>{g.code}</code>
                    {g.alerting && <span className="badge badge-alert">alerting</span>}
                  </td>
                  <td>{g.messageType || '—'}</td>
                  <td className="num">{g.count}</td>
                  <td className="num">{g.ratePerMin.toFixed(1)}</td>
                  <td>{g.lastAt !== null ? `${formatAge(serverNow - g.lastAt)} ago` : '—'}</td>
                  <td className="wrap">{g.lastMessage}</td>
                  <td className="muted small">{g.nodes.length}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}
