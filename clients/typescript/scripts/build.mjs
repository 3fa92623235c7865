// Builds dist/ as the package ships it (`npm run build`; `npm pack` runs it via
// `prepack`):
//
//   dist/**/*.js    + .d.ts   ES modules and their types (tsc, tsconfig.build.json)
//   dist/**/*.cjs   + .d.cts  CommonJS, one file per source module (esbuild)
//
// The CommonJS build keeps one output file per module, with `require('./x.cjs')`
// between them, instead of bundling each entry point: `@autosdlc/ws-client/react`
// must share the core's module instances (`defaultRegistry`, the error classes
// for `instanceof`) with `@autosdlc/ws-client`, as the ES build does.
//
// The `.d.cts` files are the `.d.ts` files with their relative imports pointed
// at `.cjs`: under `moduleResolution` node16/nodenext TypeScript decides from
// the extension whether a declaration file describes CommonJS or an ES module,
// and a `require()` consumer must see CommonJS types all the way down.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(packageDir, 'src');
const distDir = join(packageDir, 'dist');

/** Every file under `dir` (relative paths are joined to `dir`). */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

/** `./x.js` / `../y/z.js` -> `.cjs`; package imports (`react`) stay as they are. */
export function toCjsSpecifier(specifier) {
  return /^\.\.?\//.test(specifier) ? specifier.replace(/\.js$/, '.cjs') : specifier;
}

/**
 * A `.d.ts` file's text as the matching `.d.cts`: relative module specifiers in
 * `import`/`export ... from '...'` and `import('...')` point at `.cjs`. The
 * `sourceMappingURL` comment keeps naming the `.d.ts.map`: the lines are the
 * same, so it maps the `.d.cts` to the sources as well.
 */
export function toDeclarationCts(text) {
  return text.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\2/g, (_, lead, quote, specifier) =>
    `${lead}${quote}${toCjsSpecifier(specifier)}${quote}`,
  );
}

function emitEsm() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(packageDir, 'tsconfig.build.json')], {
    cwd: packageDir,
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${result.status ?? result.signal})`);
}

/** Each source module on its own: relative imports are left external, renamed to `.cjs`. */
const relativeImportsAsCjs = {
  name: 'relative-imports-as-cjs',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\.?\// }, (args) =>
      args.kind === 'entry-point' ? undefined : { path: toCjsSpecifier(args.path), external: true },
    );
  },
};

async function emitCjs() {
  const entryPoints = walk(srcDir).filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'));
  await build({
    entryPoints,
    outdir: distDir,
    outbase: srcDir,
    outExtension: { '.js': '.cjs' },
    bundle: true, // only so that the plugin sees the imports; every one of them is external
    plugins: [relativeImportsAsCjs],
    packages: 'external',
    format: 'cjs',
    platform: 'neutral',
    target: 'es2022',
    sourcemap: true,
    sourcesContent: false, // the package ships src/, which the maps point at
    logLevel: 'warning',
  });
}

function emitDeclarationCts() {
  for (const path of walk(distDir)) {
    if (path.endsWith('.d.ts')) {
      writeFileSync(path.replace(/\.d\.ts$/, '.d.cts'), toDeclarationCts(readFileSync(path, 'utf8')));
    }
  }
}

async function main() {
  rmSync(distDir, { recursive: true, force: true });
  emitEsm();
  await emitCjs();
  emitDeclarationCts();
  const files = walk(distDir).map((path) => relative(packageDir, path));
  console.log(`built ${files.length} files into dist/ (ES modules, CommonJS, .d.ts, .d.cts)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
