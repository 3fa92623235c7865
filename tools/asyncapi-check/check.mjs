// Parses an AsyncAPI document with the official parser (@asyncapi/parser, the one
// AsyncAPI Studio and the CLI use: schema validation plus its Spectral ruleset).
// Diagnostics of severity error fail; warnings and hints are reported, not fatal.
// Usage: node check.mjs ../../docs/asyncapi.yaml   (make test-asyncapi)
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { DiagnosticSeverity, Parser } from '@asyncapi/parser';

const SEVERITY_NAMES = ['error', 'warning', 'information', 'hint'];

/**
 * Parses `text` (YAML or JSON) and sorts the parser's diagnostics by severity.
 * `document` is undefined when the parser rejected the document.
 */
export async function checkAsyncApi(text, source) {
  const { document, diagnostics } = await new Parser().parse(text, { source });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const others = diagnostics.filter((d) => d.severity !== DiagnosticSeverity.Error);
  return { document, errors, others };
}

/** One diagnostic as a line: `severity code at path (line N): message`. */
export function describe(diagnostic) {
  const where = diagnostic.path?.length ? ` at ${diagnostic.path.join('.')}` : '';
  const line = diagnostic.range ? ` (line ${diagnostic.range.start.line + 1})` : '';
  const severity = SEVERITY_NAMES[diagnostic.severity] ?? String(diagnostic.severity);
  return `${severity} ${diagnostic.code}${where}${line}: ${diagnostic.message}`;
}

async function main(file) {
  const source = path.resolve(file);
  const { document, errors, others } = await checkAsyncApi(await readFile(source, 'utf8'), source);
  for (const diagnostic of [...errors, ...others]) console.log(`${file}: ${describe(diagnostic)}`);
  const version = document ? ` (AsyncAPI ${document.version()}, ${document.messages().length} messages)` : '';
  console.log(`${file}: errors: ${errors.length}, warnings and hints: ${others.length}${version}`);
  return errors.length === 0 && document !== undefined ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  if (process.argv.length !== 3) {
    console.error('usage: node check.mjs <asyncapi.yaml>');
    process.exit(2);
  }
  process.exitCode = await main(process.argv[2]);
}
