/// <reference types="vitest/config" />
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

import { EVENT_TYPES } from '../clients/typescript/src/types.ts';
import { eventValidators } from './scripts/event-validators.ts';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

/** The service worker's output name: at the root, so its scope can be the whole dashboard (`/`). */
const SERVICE_WORKER = 'sw.js';

/** Files copied from public/assets/ (manifest, icons), relative to public/. */
function publicShellFiles(): string[] {
  const root = here('public');
  const dir = path.join(root, 'assets');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => path.relative(root, f).split(path.sep).join('/'));
}

/**
 * Writes this build's app shell into the service worker: the list of files it
 * precaches (the bundle's /assets files plus public/assets) and a version
 * hashed from their contents, so every deploy that changes the shell changes
 * sw.js and browsers install the new worker. Fails the build rather than ship
 * a worker without its list, or one that is not a single classic script.
 */
function serviceWorkerShell(): Plugin {
  return {
    name: 'autosdlc-service-worker-shell',
    apply: 'build',
    generateBundle(_options, bundle) {
      const sw = bundle[SERVICE_WORKER];
      if (!sw || sw.type !== 'chunk') return this.error(`${SERVICE_WORKER} is missing from the bundle`);
      if (sw.imports.length > 0 || sw.dynamicImports.length > 0) {
        return this.error(`${SERVICE_WORKER} must be one classic script, but it imports ${[...sw.imports, ...sw.dynamicImports].join(', ')}`);
      }
      const digest = createHash('sha256');
      const files: string[] = [];
      for (const [name, out] of Object.entries(bundle).sort(([a], [b]) => a.localeCompare(b))) {
        if (name === SERVICE_WORKER) continue;
        digest.update(name).update(out.type === 'chunk' ? out.code : out.source);
        if (name.startsWith('assets/')) files.push(`/${name}`);
      }
      for (const name of publicShellFiles().sort()) {
        digest.update(name).update(readFileSync(here(`public/${name}`)));
        files.push(`/${name}`);
      }
      const shell = JSON.stringify({ version: digest.digest('hex').slice(0, 16), files: files.sort() });
      const placeholder = /\b__AUTOSDLC_SHELL__\b/g;
      if (!placeholder.test(sw.code)) return this.error(`${SERVICE_WORKER} has no __AUTOSDLC_SHELL__ to fill in`);
      sw.code = sw.code.replace(placeholder, `(${shell})`);
    },
  };
}

// The gateway to proxy to in `npm run dev` (the `make run` default).
const gateway = process.env.AUTOSDLC_WS_URL ?? 'http://127.0.0.1:8765';

export default defineConfig({
  plugins: [
    react(),
    serviceWorkerShell(),
    // The publish form's validators, compiled from the schemas the gateway serves at /schemas/.
    eventValidators({ schemaDir: here('../src/autosdlc_ws/schemas'), types: EVENT_TYPES }),
  ],
  // Built into the Python package: the gateway serves static/index.html at `/`
  // and static/assets/ at `/assets` (src/autosdlc_ws/server/app.py).
  base: '/',
  build: {
    outDir: here('../src/autosdlc_ws/static'),
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // Keep everything in files: the gateway's page sends a strict CSP (no inline code).
    assetsInlineLimit: 0,
    rolldownOptions: {
      // The page, and the service worker (src/pwa/sw.ts) as its own entry.
      input: { index: here('index.html'), sw: here('src/pwa/sw.ts') },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? SERVICE_WORKER : 'assets/[name]-[hash].js'),
      },
    },
  },
  resolve: {
    // Built on the project's own client and hooks, from source: no separately
    // built dist/ is needed, and changes there show up here immediately.
    alias: [
      { find: /^@autosdlc\/ws-client\/react$/, replacement: here('../clients/typescript/src/react.ts') },
      { find: /^@autosdlc\/ws-client$/, replacement: here('../clients/typescript/src/index.ts') },
    ],
    // The client's react.ts lives outside this package: make it use our React.
    dedupe: ['react', 'react-dom'],
  },
  server: {
    fs: { allow: [here('..')] },
    proxy: {
      '/ws': { target: gateway.replace(/^http/, 'ws'), ws: true },
      '/healthz': gateway,
      // The Debug view's HTTP calls.
      '/api': gateway,
      '/schemas': gateway,
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 60_000,
    // The e2e test starts its own gateway and browser: no parallel files.
    fileParallelism: false,
  },
});
