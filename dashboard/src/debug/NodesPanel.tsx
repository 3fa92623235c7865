import { Empty, Panel } from '../components/common';
import type { ApiResult } from './api';
import { formatAge } from './clock';
import type { Listing, NodeInfo } from './model';
import { nodeHealth, sortNodes, type NodeHealth } from './nodes';
import { ApiErrorNotice, PartialNotice } from './notices';

const HEALTH_LABEL: Record<NodeHealth, string> = { ok: 'healthy', late: 'late', leaving: 'leaving', unknown: 'unknown' };

/** Every gateway process of the deployment: health (age of the last heartbeat), connections, uptime, version. */
export function NodesPanel({ answer, serverNow }: { answer: ApiResult<Listing<NodeInfo>> | null; serverNow: number }) {
  const nodes = answer?.ok ? sortNodes(answer.value.items) : [];
  const total = nodes.reduce((n, node) => n + node.connections, 0);
  return (
    <Panel title="Nodes" id="debug-nodes" extra={answer?.ok && <span className="panel-meta">{nodes.length} nodes · {total} connections</span>}>
      {answer && !answer.ok && <ApiErrorNotice error={answer.error} />}
      {answer?.ok && <PartialNotice answer={answer.value} />}
      {!answer ? (
        <Empty>Asking the gateway…</Empty>
      ) : nodes.length === 0 ? (
        answer.ok && <Empty>No node registered.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="debug-table">
            <thead>
              <tr>
                <th scope="col">Node</th>
                <th scope="col">Health</th>
                <th scope="col" className="num">Connections</th>
                <th scope="col">Uptime</th>
                <th scope="col">Version</th>
                <th scope="col">Host · pid</th>
              </tr>
            </thead>
            <tbody>
              {nodes.map((node) => {
                const health = nodeHealth(node, serverNow);
                return (
                  <tr key={node.nodeId} data-testid="node-row" data-node={node.nodeId} data-health={health}>
                    <td>
                      <code>{node.nodeId}</code>
                    </td>
                    <td>
                      <span className={`health health-${health}`}>{HEALTH_LABEL[health]}</span>{' '}
                      {node.lastSeen !== null && <span className="muted small">seen {formatAge(serverNow - node.lastSeen)} ago</span>}
                    </td>
                    <td className="num" data-testid="node-connections">
                      {node.connections}
                    </td>
                    <td>{node.startedAt !== null ? formatAge(serverNow - node.startedAt) : '—'}</td>
                    <td>{node.version || '—'}</td>
                    <td className="muted">
                      {node.host}
                      {node.pid !== null && ` · ${node.pid}`}
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
