import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './App';
import { loadCredential, saveCredential, takeFragmentCredential } from './credentials';
import { registerServiceWorker } from './pwa/register';
import './styles.css';

// Before anything renders: take `#token=…` out of the address bar.
const fromFragment = takeFragmentCredential();
if (fromFragment) saveCredential(fromFragment);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App initial={fromFragment ?? loadCredential()} />
  </StrictMode>,
);

registerServiceWorker();
