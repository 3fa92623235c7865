/// <reference types="vite/client" />
/**
 * Registers the app-shell service worker (./sw.ts, built to /sw.js).
 *
 * Production builds only: under `npm run dev` a worker would keep serving
 * stale modules. Browsers allow workers on secure contexts only (HTTPS, or
 * http://localhost / 127.0.0.1); elsewhere the dashboard simply runs without
 * one. A failed registration is logged, never shown: the page works without it.
 */
export const SERVICE_WORKER_URL = '/sw.js';

export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator) || !window.isSecureContext) return;
  const register = () => {
    navigator.serviceWorker.register(SERVICE_WORKER_URL, { scope: '/' }).catch((err: unknown) => {
      console.warn('dashboard: no service worker (the app shell is not kept offline):', err);
    });
  };
  // After `load`: the worker's precache fetches never compete with the page's own.
  if (document.readyState === 'complete') register();
  else window.addEventListener('load', register, { once: true });
}
