/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';

import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// The gateway to proxy to in `npm run dev` (the `make run` default).
const gateway = process.env.AUTOSDLC_WS_URL ?? 'http://127.0.0.1:8765';

export default defineConfig({
  plugins: [react()],
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
