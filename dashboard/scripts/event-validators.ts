/**
 * Vite plugin: the module `virtual:event-validators`, JSON Schema validators
 * of the event types compiled at build time by Ajv (draft 2020-12, as the
 * schemas' `$schema` says) into plain code ("standalone" mode).
 *
 * Why at build time: Ajv compiles a schema by generating a function with
 * `new Function`, which the gateway's Content-Security-Policy
 * (`script-src 'self'`, no 'unsafe-eval') rightly forbids in the page.
 * Precompiled, the validators are ordinary code in the bundle. Each comes with
 * the fingerprint of the schema it was compiled from, so the page can check
 * that the gateway's `/schemas/<type>.json` is that same schema.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import Ajv2020 from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';
import type { Plugin } from 'vite';

import { fingerprint } from '../src/debug/fingerprint.ts';

const VIRTUAL_ID = 'virtual:event-validators';
const RESOLVED_ID = `\0${VIRTUAL_ID}`;
const DRAFT_2020 = 'https://json-schema.org/draft/2020-12/schema';
/** The one runtime helper Ajv's generated code `require`s (string length in code points, as the gateway counts). */
const UCS2LENGTH = 'require("ajv/dist/runtime/ucs2length").default';

/** The module's source: `validators` (type -> validate function) and `fingerprints` (type -> schema fingerprint). */
export function validatorModule(schemas: Readonly<Record<string, unknown>>): string {
  const ajv = new Ajv2020({ code: { source: true, esm: true }, allErrors: true, strict: false });
  const refs: Record<string, string> = {};
  const prints: Record<string, string> = {};
  for (const [type, schema] of Object.entries(schemas)) {
    const s = schema as { $id?: unknown; $schema?: unknown };
    if (s.$schema !== DRAFT_2020) throw new Error(`schema of ${type}: $schema is ${String(s.$schema)}, expected ${DRAFT_2020}`);
    if (typeof s.$id !== 'string') throw new Error(`schema of ${type} has no $id`);
    ajv.addSchema(schema as object);
    refs[type] = s.$id;
    prints[type] = fingerprint(schema);
  }
  let code = standaloneCode(ajv, refs).replaceAll(UCS2LENGTH, '__ucs2length');
  if (/\brequire\(/.test(code)) throw new Error(`Ajv's standalone code needs a runtime helper this plugin does not provide: ${code.match(/require\([^)]*\)/)![0]}`);
  code = code.replace(/^"use strict";/, '');
  const exportsList = Object.keys(refs).map((t) => `${JSON.stringify(t)}: ${t}`).join(', ');
  return [
    'import __ucs2lengthModule from "ajv/dist/runtime/ucs2length";',
    'const __ucs2length = __ucs2lengthModule.default ?? __ucs2lengthModule;',
    code,
    `export const validators = { ${exportsList} };`,
    `export const fingerprints = ${JSON.stringify(prints)};`,
  ].join('\n');
}

export function eventValidators(opts: { schemaDir: string; types: readonly string[] }): Plugin {
  return {
    name: 'autosdlc-event-validators',
    resolveId(id) {
      return id === VIRTUAL_ID ? RESOLVED_ID : null;
    },
    load(id) {
      if (id !== RESOLVED_ID) return null;
      const schemas: Record<string, unknown> = {};
      for (const type of opts.types) {
        if (!/^[a-z_]+$/.test(type)) throw new Error(`not a message type: ${type}`);
        const file = path.join(opts.schemaDir, `${type}.json`);
        this.addWatchFile(file);
        schemas[type] = JSON.parse(readFileSync(file, 'utf8'));
      }
      return validatorModule(schemas);
    },
  };
}
