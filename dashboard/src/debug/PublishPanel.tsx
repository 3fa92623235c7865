import { useEffect, useMemo, useState } from 'react';

import { EVENT_TYPES } from '@autosdlc/ws-client';
import type { ValidateFunction } from 'ajv';
import { fingerprints, validators } from 'virtual:event-validators';

import { Panel } from '../components/common';
import type { GatewayApi } from './api';
import { fingerprint } from './fingerprint';
import type { ApiError } from './model';
import { ApiErrorNotice } from './notices';
import { envelopeForValidation, exampleData, parseData, problemsOf, type Problem } from './publish';

/** What is known of the chosen type's schema, as the gateway serves it. */
type SchemaState =
  | { status: 'loading' }
  | { status: 'ready'; validate: ValidateFunction; description: string; example: object }
  /** The gateway serves another schema than this build compiled: only the gateway can check. */
  | { status: 'mismatch'; description: string; example: object }
  | { status: 'unavailable'; error: ApiError };

type Outcome = { kind: 'accepted'; ids: string[] } | { kind: 'rejected'; error: ApiError } | null;

const DEFAULT_TYPE = 'system_notification';

/**
 * Publish one event through `POST /api/v1/events`. The edited `data` is
 * checked against `/schemas/<type>.json` (with the validator this build
 * compiled from that very schema, its fingerprint compared) before it may be
 * sent; "let the gateway validate" sends it anyway, to see the gateway's own
 * answer. A 4xx shows the gateway's code, message and the failing path.
 */
export function PublishPanel({ api, now }: { api: GatewayApi; now: () => number }) {
  const [type, setType] = useState<string>(DEFAULT_TYPE);
  const [text, setText] = useState('{}');
  const [schema, setSchema] = useState<SchemaState>({ status: 'loading' });
  const [skipCheck, setSkipCheck] = useState(false);
  const [sending, setSending] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>(null);

  useEffect(() => {
    let current = true;
    setSchema({ status: 'loading' });
    void api.schema(type).then((res) => {
      if (!current) return;
      if (!res.ok) {
        setSchema({ status: 'unavailable', error: res.error });
        return;
      }
      const description = String((res.value as { description?: unknown } | null)?.description ?? '');
      const example = exampleData(res.value);
      const validate = validators[type];
      if (validate && fingerprints[type] === fingerprint(res.value)) setSchema({ status: 'ready', validate, description, example });
      else setSchema({ status: 'mismatch', description, example });
      setText((old) => (old.trim() === '{}' || old.trim() === '' ? JSON.stringify(example, null, 2) : old));
    });
    return () => {
      current = false;
    };
  }, [api, type]);

  const parsed = useMemo(() => parseData(text), [text]);
  const problems: Problem[] = useMemo(() => {
    if (!parsed.ok) return [parsed.problem];
    if (schema.status !== 'ready') return [];
    const envelope = envelopeForValidation(type, parsed.data, now());
    return schema.validate(envelope) ? [] : problemsOf(schema.validate.errors);
  }, [parsed, schema, type, now]);
  // Unparsable data cannot be sent at all; schema problems only until "let the gateway validate".
  const blocked = !parsed.ok || (problems.length > 0 && !skipCheck) || sending;

  const send = async () => {
    if (!parsed.ok) return;
    setSending(true);
    setOutcome(null);
    const res = await api.publish({ type, data: parsed.data });
    setSending(false);
    setOutcome(res.ok ? { kind: 'accepted', ids: res.value.ids } : { kind: 'rejected', error: res.error });
  };

  return (
    <Panel title="Publish an event" id="debug-publish">
      <form
        className="publish"
        onSubmit={(e) => {
          e.preventDefault();
          if (!blocked) void send();
        }}
      >
        <div className="debug-controls">
          <label>
            Type
            <select
              value={type}
              data-testid="publish-type"
              onChange={(e) => {
                setType(e.target.value);
                setText('{}'); // the new type's example fills it in
                setOutcome(null);
              }}
            >
              {EVENT_TYPES.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            className="secondary"
            disabled={schema.status !== 'ready' && schema.status !== 'mismatch'}
            onClick={() => schema.status === 'ready' || schema.status === 'mismatch' ? setText(JSON.stringify(schema.example, null, 2)) : undefined}
          >
            Example
          </button>
        </div>
        <p className="muted small" data-testid="publish-schema" data-status={schema.status}>
          {schema.status === 'loading' && `Loading /schemas/${type}.json…`}
          {schema.status === 'ready' && (
            <>
              Checked against <code>/schemas/{type}.json</code>
              {schema.description && ` — ${schema.description}`}
            </>
          )}
          {schema.status === 'mismatch' && (
            <>
              The gateway's <code>/schemas/{type}.json</code> is not the one this dashboard was built with: the gateway checks it when sent.
            </>
          )}
        </p>
        {schema.status === 'unavailable' && <ApiErrorNotice error={schema.error} />}
        <label className="publish-data">
          <span>
            <code>data</code> (JSON)
          </span>
          <textarea
            value={text}
            rows={10}
            spellCheck={false}
            data-testid="publish-data"
            aria-invalid={problems.length > 0}
            onChange={(e) => {
              setText(e.target.value);
              setOutcome(null);
            }}
          />
        </label>
        {problems.length > 0 && (
          <ul className="problems" data-testid="publish-problems" aria-label="Problems found before sending">
            {problems.map((p) => (
              <li key={`${p.path}|${p.message}`} data-testid="publish-problem" data-path={p.path}>
                <code>{p.path || '(envelope)'}</code> {p.message}
              </li>
            ))}
          </ul>
        )}
        <div className="debug-controls">
          <label className="inline">
            <input type="checkbox" checked={skipCheck} onChange={(e) => setSkipCheck(e.target.checked)} data-testid="publish-skip-check" />
            Let the gateway validate (send even when the check here fails)
          </label>
          <span className="spacer" />
          <button type="submit" className="primary" disabled={blocked} data-testid="publish-send">
            {sending ? 'Sending…' : 'Publish'}
          </button>
        </div>
        <div aria-live="polite">
          {outcome?.kind === 'accepted' && (
            <p className="notice notice-ok" data-testid="publish-result" data-outcome="accepted">
              Accepted: <code>{outcome.ids.join(', ')}</code>
            </p>
          )}
          {outcome?.kind === 'rejected' && (
            <div data-testid="publish-result" data-outcome="rejected" data-path={outcome.error.path ?? ''}>
              <ApiErrorNotice error={outcome.error} />
            </div>
          )}
        </div>
      </form>
    </Panel>
  );
}
