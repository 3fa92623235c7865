import { useId, useState, type FormEvent } from 'react';

import { guessKind, type Credential, type CredentialKind } from '../credentials';

type KindChoice = 'auto' | CredentialKind;

export function Login({ error, onSubmit }: { error: string | null; onSubmit: (c: Credential, remember: boolean) => void }) {
  const [value, setValue] = useState('');
  const [kind, setKind] = useState<KindChoice>('auto');
  const [remember, setRemember] = useState(true);
  const id = useId();
  const trimmed = value.trim();
  const resolved: CredentialKind = kind === 'auto' ? guessKind(trimmed) : kind;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (trimmed) onSubmit({ kind: resolved, value: trimmed }, remember);
  };

  return (
    <main className="login">
      <form className="login-card" aria-label="Sign in" onSubmit={submit}>
        <h1>AutoSDLC gateway</h1>
        <p className="muted">Live agents, TDD cycles, workflows and alerts.</p>
        {error && (
          <p className="login-error" role="alert">
            {error}
          </p>
        )}
        <label htmlFor={`${id}-cred`}>Token or API key</label>
        <textarea
          id={`${id}-cred`}
          name="credential"
          rows={4}
          autoComplete="off"
          autoCapitalize="off"
          spellCheck={false}
          placeholder="eyJhbGciOi… or an API key"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          autoFocus
        />
        <fieldset className="login-kind">
          <legend>It is</legend>
          {(['auto', 'token', 'apiKey'] as const).map((k) => (
            <label key={k}>
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} />
              {k === 'auto' ? `detect (${trimmed ? (resolved === 'token' ? 'JWT' : 'API key') : '—'})` : k === 'token' ? 'a JWT' : 'an API key'}
            </label>
          ))}
        </fieldset>
        <label className="login-remember">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} />
          Remember in this tab (sessionStorage; cleared when the tab closes)
        </label>
        <button type="submit" className="primary" disabled={!trimmed}>
          Sign in
        </button>
        <p className="muted small">
          The credential is sent over the WebSocket as an <code>auth_request</code>, never in a URL. <code>make run</code>{' '}
          prints a link with <code>#token=…</code>; or mint one with{' '}
          <code>autosdlc-ws token create --sub me --permission 'read:*'</code>.
        </p>
      </form>
    </main>
  );
}
