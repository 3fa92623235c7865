// Size of the browser build as an app's bundler ships it, checked against the
// budgets in README.md (section "Size").
//
//   npm run size                       build, then measure this checkout's dist/
//   node scripts/size.mjs --from DIR   measure the package as installed in project DIR
//
// Each bundle is what esbuild makes of one import statement in an app: the
// package resolved by name through its `exports` map (the `browser` and
// `import` conditions, so dist/*.js), bundled for the browser, minified, React
// left external (a peer dependency), then gzip level 9. Exit 1 when a bundle
// is over its budget, or when README.md and this list disagree on the bundles.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The bundles with a budget: a name (as in README.md) and the app's import. */
export const BUNDLES = [
  { name: '@autosdlc/ws-client', source: "export * from '@autosdlc/ws-client';" },
  {
    name: '@autosdlc/ws-client (client only)',
    source: "export { AutoSDLCWebSocketClient } from '@autosdlc/ws-client';",
  },
  { name: '@autosdlc/ws-client/react (with core)', source: "export * from '@autosdlc/ws-client/react';" },
];

/** Minified and gzipped bytes of each bundle, resolving the package from `resolveDir`. */
export async function measureBundles(resolveDir) {
  const sizes = [];
  for (const { name, source } of BUNDLES) {
    const result = await build({
      stdin: { contents: source, resolveDir, loader: 'js', sourcefile: 'app.js' },
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
    sizes.push({ name, minified: code.length, gzipped: gzipSync(code, { level: 9 }).length });
  }
  return sizes;
}

const BUDGET_START = '<!-- size-budget:start -->';
const BUDGET_END = '<!-- size-budget:end -->';

/**
 * The budgets from the README's table between the size-budget markers: rows
 * `| \`name\` | ... | 12,345 B |`, the budget (gzipped bytes) in the last column.
 */
export function readBudgets(readme) {
  const start = readme.indexOf(BUDGET_START);
  const end = readme.indexOf(BUDGET_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${BUDGET_START} ... ${BUDGET_END} section`);
  const budgets = new Map();
  for (const line of readme.slice(start, end).split('\n')) {
    const row = /^\|\s*`([^`]+)`\s*\|.*\|\s*([\d,]+)\s*B\s*\|\s*$/.exec(line.trim());
    if (row) budgets.set(row[1], Number(row[2].replaceAll(',', '')));
  }
  return budgets;
}

/** One message per problem: a bundle over budget, without a budget, or a budget for no bundle. */
export function budgetProblems(sizes, budgets) {
  const problems = [];
  for (const { name, gzipped } of sizes) {
    const budget = budgets.get(name);
    if (budget === undefined) problems.push(`${name}: no budget in README.md`);
    else if (gzipped > budget) problems.push(`${name}: ${gzipped} B gzipped, over its budget of ${budget} B`);
  }
  for (const name of budgets.keys()) {
    if (!sizes.some((size) => size.name === name)) problems.push(`README.md budgets "${name}", which is not measured`);
  }
  return problems;
}

async function main() {
  const fromIndex = process.argv.indexOf('--from');
  // Without --from the package resolves itself by name (a self-reference through `exports`).
  const resolveDir = fromIndex > 0 ? resolve(process.argv[fromIndex + 1]) : packageDir;
  const sizes = await measureBundles(resolveDir);
  const budgets = readBudgets(readFileSync(join(packageDir, 'README.md'), 'utf8'));
  for (const { name, minified, gzipped } of sizes) {
    console.log(`${name}: ${minified} B minified, ${gzipped} B gzipped (budget ${budgets.get(name) ?? 'none'} B)`);
  }
  const problems = budgetProblems(sizes, budgets);
  for (const problem of problems) console.error(`size budget: ${problem}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
