import type { ApiError, Completeness } from './model';

/** Says that some nodes did not answer in time: what is shown is the rest of the deployment. */
export function PartialNotice({ answer }: { answer: Completeness | null }) {
  if (!answer?.partial) return null;
  const names = answer.missingNodes.length ? answer.missingNodes.join(', ') : 'some nodes';
  return (
    <p className="notice notice-partial" data-testid="partial">
      <strong>Partial</strong> — no answer in time from {names}; shown: the nodes that answered.
    </p>
  );
}

export function ApiErrorNotice({ error }: { error: ApiError }) {
  return (
    <p className="notice notice-error" data-testid="api-error" data-status={error.status}>
      <strong>{error.code}</strong> — {error.message}
      {error.path !== undefined && (
        <>
          {' '}
          at <code>{error.path || '(the whole body)'}</code>
        </>
      )}
    </p>
  );
}
