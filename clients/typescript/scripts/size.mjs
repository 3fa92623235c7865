// Size of the browser build as an app bundler would ship it: minified ESM,
// gzip -9. React stays external (a peer dependency).
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

const entries = [
  ['@autosdlc/ws-client', 'src/index.ts'],
  ['@autosdlc/ws-client (client only)', 'scripts/size-client-only.ts'],
  ['@autosdlc/ws-client/react (with core)', 'src/react.ts'],
];

for (const [name, entry] of entries) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: ['react'],
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].contents;
  const gz = gzipSync(code, { level: 9 });
  console.log(`${name}: ${code.length} B minified, ${gz.length} B gzipped`);
}
