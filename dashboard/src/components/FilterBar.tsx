import { ALL_TYPES, CATEGORIES, type CategoryKey, type Filters } from '../subscriptions';
import type { CategorySubscription } from '../subscriptions';

export interface FilterBarProps {
  filters: Filters;
  onChange: (f: Filters) => void;
  knownAgents: string[];
  /** Agents the credential is limited to, if any. */
  scope: string[] | null;
  subs: Record<CategoryKey, CategorySubscription>;
}

function statusText(sub: CategorySubscription): string {
  if (sub.status === 'error') return sub.error?.code ?? 'error';
  if (sub.status === 'off') return 'off';
  return sub.status;
}

export function FilterBar({ filters, onChange, knownAgents, scope, subs }: FilterBarProps) {
  const agents = [...new Set([...knownAgents, ...(scope ?? []), ...filters.agents])].sort();
  const selectedAgents = new Set(filters.agents);
  const selectedTypes = new Set(filters.types);

  const toggleAgent = (id: string) => {
    const next = new Set(selectedAgents);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    onChange({ ...filters, agents: [...next].sort() });
  };
  const setTypes = (types: Iterable<string>) => {
    const set = new Set(types);
    onChange({ ...filters, types: ALL_TYPES.filter((t) => set.has(t)) });
  };
  const toggleType = (t: string) => {
    const next = new Set(selectedTypes);
    if (next.has(t)) next.delete(t);
    else next.add(t);
    setTypes(next);
  };
  const typesLabel =
    filters.types.length === ALL_TYPES.length ? 'all event types' : `${filters.types.length} of ${ALL_TYPES.length} event types`;

  return (
    <div className="filterbar" aria-label="Subscription filters">
      <div className="filter-group" data-testid="agent-filter" role="group" aria-label="Agents">
        <span className="filter-label">Agents</span>
        <button
          type="button"
          className="chip"
          aria-pressed={filters.agents.length === 0}
          onClick={() => onChange({ ...filters, agents: [] })}
        >
          {scope ? `all I may read (${scope.length})` : 'all'}
        </button>
        {agents.map((id) => (
          <button
            type="button"
            key={id}
            className="chip"
            data-agent={id}
            aria-pressed={selectedAgents.has(id)}
            onClick={() => toggleAgent(id)}
          >
            {id}
          </button>
        ))}
        {agents.length === 0 && <span className="muted small">agents appear as their events arrive</span>}
      </div>
      <details className="filter-group types" data-testid="type-filter">
        <summary>
          <span className="filter-label">Events</span> {typesLabel}
        </summary>
        <div className="types-menu">
          <div className="types-actions">
            <button type="button" className="link-button" onClick={() => setTypes(ALL_TYPES)}>
              select all
            </button>
            <button type="button" className="link-button" onClick={() => setTypes([])}>
              clear
            </button>
          </div>
          {CATEGORIES.map((c) => (
            <fieldset key={c.key}>
              <legend>
                <label>
                  <input
                    type="checkbox"
                    checked={c.types.every((t) => selectedTypes.has(t))}
                    ref={(el) => {
                      if (el) el.indeterminate = c.types.some((t) => selectedTypes.has(t)) && !c.types.every((t) => selectedTypes.has(t));
                    }}
                    onChange={(e) =>
                      setTypes(
                        e.target.checked
                          ? [...selectedTypes, ...c.types]
                          : [...selectedTypes].filter((t) => !c.types.includes(t)),
                      )
                    }
                  />
                  {c.label}
                </label>
              </legend>
              {c.types.map((t) => (
                <label key={t} className="type-option">
                  <input type="checkbox" value={t} checked={selectedTypes.has(t)} onChange={() => toggleType(t)} />
                  <code>{t}</code>
                </label>
              ))}
            </fieldset>
          ))}
        </div>
      </details>
      <div className="filter-group subs" aria-label="Subscriptions">
        <span className="filter-label">Subscriptions</span>
        {CATEGORIES.map((c) => {
          const sub = subs[c.key];
          const text = statusText(sub);
          return (
            <span
              key={c.key}
              className={`sub sub-${sub.status} ${text === 'forbidden' ? 'sub-forbidden' : ''}`}
              data-testid="sub-status"
              data-category={c.key}
              data-status={sub.status}
              title={sub.status === 'off' ? sub.reason : sub.error ? sub.error.message : sub.subscriptionId ?? ''}
            >
              {c.label}: {text}
            </span>
          );
        })}
      </div>
      {filters.agents.length > 0 && (
        <p className="filter-hint small muted">
          Workflow, system and GitHub events name no agent, so they are not delivered while an agent filter is on.
        </p>
      )}
    </div>
  );
}
