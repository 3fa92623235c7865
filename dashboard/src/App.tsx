import { useEffect, useState } from 'react';

import { Dashboard } from './components/Dashboard';
import { Login } from './components/Login';
import { saveCredential, takeFragmentCredential, type Credential } from './credentials';

export function App({ initial }: { initial: Credential | null }) {
  const [credential, setCredential] = useState<Credential | null>(initial);
  const [loginError, setLoginError] = useState<string | null>(null);
  // Bumped by "Reconnect" after the client stopped: remounting gives a fresh client.
  const [generation, setGeneration] = useState(0);

  // A `#token=` link opened on an already loaded page is only a hash change:
  // take the credential from it too (and clear the fragment again).
  useEffect(() => {
    const onHash = () => {
      const cred = takeFragmentCredential();
      if (!cred) return;
      saveCredential(cred);
      setLoginError(null);
      setCredential(cred);
      setGeneration((g) => g + 1);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  if (!credential) {
    return (
      <Login
        error={loginError}
        onSubmit={(cred, remember) => {
          saveCredential(remember ? cred : null);
          setLoginError(null);
          setCredential(cred);
        }}
      />
    );
  }
  return (
    <Dashboard
      key={generation}
      credential={credential}
      onSignOut={() => {
        saveCredential(null);
        setLoginError(null);
        setCredential(null);
      }}
      onCredentialRejected={(message) => {
        saveCredential(null);
        setLoginError(message);
        setCredential(null);
      }}
      onReconnect={() => setGeneration((g) => g + 1)}
    />
  );
}
