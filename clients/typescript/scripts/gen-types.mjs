#!/usr/bin/env node
// Generates src/generated/messages.ts from the gateway's JSON Schemas
// (src/autosdlc_ws/schemas/*.json in the repository, one per message type,
// draft 2020-12, generated there from the Python models).
//
//   node scripts/gen-types.mjs            write src/generated/messages.ts
//   node scripts/gen-types.mjs --check    exit 1 when the file is out of date
//   node scripts/gen-types.mjs --stdout   print what would be written
//
// The schemas directory can be overridden with AUTOSDLC_SCHEMAS_DIR.
//
// json-schema-to-typescript renders the types. This script only prepares its
// input and checks the assumptions the hand-written src/types.ts makes:
// - every schema is an envelope {id, type (const = file name), timestamp, data, metadata}
//   of the same shape, with `data` a $ref into $defs;
// - $defs with the same name (Metadata, ...) are identical in every file, so
//   they merge into one declaration;
// - an `anyOf` whose branches only list `required` keys (auth_request: token
//   or apiKey) cannot be expressed on an open interface without losing the
//   field types; it is dropped and described in the doc comment instead;
// - an open value (protocol 1.1: a status-, level- or severity-like field) is an
//   `anyOf` of a titled string `enum` (the documented values) and any short
//   string; rendered as-is it would collapse to `string`, so it becomes
//   `KnownX | (string & {})` (editors still suggest the known values) with
//   `KnownX` exported as its own type.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compile } from 'json-schema-to-typescript';

const here = dirname(fileURLToPath(import.meta.url));
export const packageDir = resolve(here, '..');
export const outputFile = join(packageDir, 'src', 'generated', 'messages.ts');
export const defaultSchemasDir = resolve(packageDir, '..', '..', 'src', 'autosdlc_ws', 'schemas');

const ENVELOPE_KEYS = ['data', 'id', 'metadata', 'timestamp', 'type'];

/** JSON with sorted keys, to compare schema fragments by value. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function fail(message) {
  throw new Error(`gen-types: ${message}`);
}

function loadSchemas(dir) {
  if (!existsSync(dir)) {
    fail(`schemas directory not found: ${dir} (set AUTOSDLC_SCHEMAS_DIR)`);
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) fail(`no *.json schemas in ${dir}`);
  return files.map((file) => ({ file, type: basename(file, '.json'), schema: JSON.parse(readFileSync(join(dir, file), 'utf8')) }));
}

/** The envelope part of a schema (everything but `type` and `data`), to check it is the same everywhere. */
function envelopeShape(schema) {
  const props = { ...schema.properties };
  delete props.type;
  delete props.data;
  return canonical({ properties: props, required: schema.required, additionalProperties: schema.additionalProperties });
}

function onlyRequiredBranches(anyOf) {
  return (
    Array.isArray(anyOf) &&
    anyOf.length > 0 &&
    anyOf.every((b) => b && typeof b === 'object' && Object.keys(b).length === 1 && Array.isArray(b.required))
  );
}

const CONSTRAINTS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'format'];

/** Validation keywords of a property as doc tags (the renderer keeps only descriptions). */
function constraintTags(prop) {
  const branches = Array.isArray(prop.anyOf) ? prop.anyOf.filter((b) => b.type !== 'null') : [prop];
  if (branches.length !== 1) return [];
  const target = branches[0];
  const tags = target.type === 'integer' ? ['@integer'] : [];
  return tags.concat(CONSTRAINTS.filter((k) => target[k] !== undefined).map((k) => `@${k} ${target[k]}`));
}

/** The documented-values branch of an open value's `anyOf`, or null when `prop` is not one. */
function openValue(prop) {
  const branches = prop.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) return null;
  const [known, rest] = branches;
  const isKnown = known && typeof known.title === 'string' && known.type === 'string' && Array.isArray(known.enum);
  const isRest = rest && rest.type === 'string' && Object.keys(rest).every((k) => k === 'type' || k === 'maxLength');
  return isKnown && isRest ? { known, maxLength: rest.maxLength } : null;
}

/** Rewrites what the renderer cannot type usefully; see the header comment.
 * `hoist(name, schema)` receives the named types an open value refers to. */
function prepareDef(def, hoist) {
  const out = structuredClone(def);
  for (const [name, prop] of Object.entries(out.properties ?? {})) {
    if (!prop || typeof prop !== 'object' || prop.$ref) continue;
    const open = openValue(prop);
    if (open) {
      const { title, ...known } = open.known;
      hoist(title, { ...known, title, description: `Documented values of an open field (any string up to ${open.maxLength} characters is accepted).` });
      const note = `One of {@link ${title}}, or a newer value (any string up to ${open.maxLength} characters).`;
      out.properties[name] = { tsType: `${title} | (string & {})`, description: [prop.description, note].filter(Boolean).join('\n\n') };
      continue;
    }
    const tags = constraintTags(prop);
    if (tags.length > 0) prop.description = [prop.description, tags.join('\n')].filter(Boolean).join('\n\n');
  }
  if (onlyRequiredBranches(out.anyOf)) {
    const alternatives = out.anyOf.map((b) => b.required.map((k) => `\`${k}\``).join(' and ')).join(' or ');
    delete out.anyOf;
    const note = `At least one of ${alternatives} is required.`;
    out.description = out.description ? `${out.description}\n\n${note}` : note;
  }
  return out;
}

/** Builds one schema whose root is the type -> data map, with every $def merged. */
export function combine(entries) {
  const defs = new Map();
  const defOrigin = new Map();
  let envelope = null;
  const map = { properties: {}, required: [] };
  for (const { file, type, schema } of entries) {
    if (schema.$schema !== 'https://json-schema.org/draft/2020-12/schema') {
      fail(`${file}: expected draft 2020-12, got ${schema.$schema}`);
    }
    if (schema.properties?.type?.const !== type) fail(`${file}: properties.type.const must be "${type}"`);
    const ref = schema.properties?.data?.$ref;
    if (typeof ref !== 'string' || !ref.startsWith('#/$defs/')) fail(`${file}: properties.data must be a $ref into $defs`);
    const keys = Object.keys(schema.properties).sort();
    if (canonical(keys) !== canonical(ENVELOPE_KEYS)) {
      fail(`${file}: envelope properties ${keys.join(', ')} differ from ${ENVELOPE_KEYS.join(', ')}; update src/types.ts (Envelope) and this script`);
    }
    const shape = envelopeShape(schema);
    if (envelope === null) envelope = { file, shape };
    else if (envelope.shape !== shape) {
      fail(`${file}: envelope differs from ${envelope.file}; update src/types.ts (Envelope) and this script`);
    }
    const addDef = (name, prepared) => {
      if (defs.has(name)) {
        if (canonical(defs.get(name)) !== canonical(prepared)) {
          fail(`$defs/${name} differs between ${defOrigin.get(name)} and ${file}: give one of them another title`);
        }
      } else {
        defs.set(name, prepared);
        defOrigin.set(name, file);
      }
    };
    for (const [name, def] of Object.entries(schema.$defs ?? {})) {
      addDef(name, prepareDef(def, addDef));
    }
    map.properties[type] = { $ref: ref };
    map.required.push(type);
  }
  // Types are named by `title`; keep the names the $defs keys promise.
  for (const [name, def] of defs) {
    if (def.title !== undefined && def.title !== name) fail(`$defs/${name} has title ${def.title}`);
    def.title = name;
  }
  return {
    title: 'MessageDataMap',
    description: 'The `data` of every message type, keyed by `type` (one entry per schema).',
    type: 'object',
    properties: map.properties,
    required: map.required,
    additionalProperties: false,
    $defs: Object.fromEntries([...defs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
}

export async function generate(schemasDir = process.env.AUTOSDLC_SCHEMAS_DIR || defaultSchemasDir) {
  const entries = loadSchemas(schemasDir);
  const root = combine(entries);
  // json-schema-to-typescript emits unreachable definitions only from `definitions`.
  const text = JSON.stringify(root).replaceAll('"#/$defs/', '"#/definitions/');
  const schema = JSON.parse(text);
  schema.definitions = schema.$defs;
  delete schema.$defs;
  const body = await compile(schema, 'MessageDataMap', {
    bannerComment: '',
    additionalProperties: true,
    unreachableDefinitions: true,
    ignoreMinAndMaxItems: true,
    strictIndexSignatures: false,
    unknownAny: true,
    format: true,
    style: { singleQuote: true, printWidth: 100, trailingComma: 'all', semi: true, bracketSpacing: true, tabWidth: 2, useTabs: false },
  });
  const types = entries.map((e) => e.type);
  // Drop the renderer's "referenced via definition" notes: every type here is.
  const cleaned = body
    .replace(/\/\*\*\n \* This interface was referenced by `MessageDataMap`'s JSON-Schema\n \* via the `definition` "\w+"\.\n \*\/\n/g, '')
    .replace(/ \*\n \* This interface was referenced by `MessageDataMap`'s JSON-Schema\n \* via the `definition` "\w+"\.\n/g, '');
  if (cleaned.includes('This interface was referenced')) fail('unexpected renderer output; adjust the clean-up in gen-types.mjs');
  const source = relative(packageDir, schemasDir).split('\\').join('/');
  return [
    '/* eslint-disable */',
    '/**',
    ` * GENERATED by scripts/gen-types.mjs from ${source}/*.json: do not edit.`,
    ' * Run `npm run gen:types` after the schemas change; test/generated-types.test.ts',
    ' * fails while this file and the schemas disagree.',
    ' *',
    ' * Every `data` type is open (`[k: string]: unknown`): the schemas allow extra',
    ' * properties for forward compatibility, and the known fields stay typed.',
    ' */',
    '',
    cleaned.trimEnd(),
    '',
    '/** Every message type that has a schema, in file order. */',
    `export const MESSAGE_TYPES = [\n${types.map((t) => `  '${t}',`).join('\n')}\n] as const;`,
    '',
    '/** A message type that has a schema. */',
    'export type MessageTypeName = keyof MessageDataMap;',
    '',
  ].join('\n');
}

async function main(argv) {
  const text = await generate();
  if (argv.includes('--stdout')) {
    process.stdout.write(text);
    return 0;
  }
  const current = existsSync(outputFile) ? readFileSync(outputFile, 'utf8') : null;
  if (argv.includes('--check')) {
    if (current === text) return 0;
    console.error(`${relative(packageDir, outputFile)} is out of date with the JSON Schemas: run \`npm run gen:types\``);
    return 1;
  }
  if (current !== text) {
    mkdirSync(dirname(outputFile), { recursive: true });
    writeFileSync(outputFile, text);
    console.log(`wrote ${relative(packageDir, outputFile)}`);
  } else {
    console.log(`${relative(packageDir, outputFile)} is up to date`);
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    },
  );
}
