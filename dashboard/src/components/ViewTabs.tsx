export type ViewKey = 'live' | 'debug';

const VIEWS: { key: ViewKey; label: string }[] = [
  { key: 'live', label: 'Live' },
  { key: 'debug', label: 'Debug' },
];

/** Live view / Debug view switch, shown to admin credentials only. */
export function ViewTabs({ view, onChange }: { view: ViewKey; onChange: (view: ViewKey) => void }) {
  return (
    <nav className="view-tabs" role="tablist" aria-label="Views">
      {VIEWS.map((v) => (
        <button
          key={v.key}
          type="button"
          role="tab"
          aria-selected={view === v.key}
          className={view === v.key ? 'view-tab view-tab-active' : 'view-tab'}
          data-testid={`tab-${v.key}`}
          onClick={() => onChange(v.key)}
        >
          {v.label}
        </button>
      ))}
    </nav>
  );
}
