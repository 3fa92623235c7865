/**
 * The publish form's logic on plain values: reading the edited `data`,
 * turning JSON Schema errors (Ajv's) into the gateway's path notation
 * (`data.currentTask.progress`, `data.steps[0].name`, the same paths its 422
 * answers carry), and a starting `data` for a type built from its schema.
 */
import type { ErrorObject } from 'ajv';

import { obj, type Obj } from '../state/coerce';

export interface Problem {
  /** The failing field as the gateway names it; "" is the envelope itself. */
  path: string;
  message: string;
}

export type Parsed = { ok: true; data: Obj } | { ok: false; problem: Problem };

/** The edited text as the event's `data`: JSON, and an object. */
export function parseData(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: { path: 'data', message: `not valid JSON: ${e instanceof Error ? e.message : String(e)}` } };
  }
  const data = obj(value);
  if (!data) return { ok: false, problem: { path: 'data', message: 'must be a JSON object' } };
  return { ok: true, data };
}

/** The envelope checked before sending. The gateway assigns the id and timestamp of what is sent;
 * placeholders stand in for them here so the schema's `required` is met. */
export function envelopeForValidation(type: string, data: Obj, nowMs: number): Obj {
  return { id: 'preview', type, timestamp: Math.floor(nowMs), data };
}

/** `/data/steps/0/name` -> `data.steps[0].name` (RFC 6901 escapes undone). */
export function pointerToPath(pointer: string): string {
  if (!pointer) return '';
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out = out ? `${out}.${part}` : part;
  }
  return out;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** One Ajv error as a problem at the field it is about. */
export function problemOf(error: ErrorObject): Problem {
  const at = pointerToPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: join(at, String(params.missingProperty)), message: 'required' };
    case 'additionalProperties':
      return { path: join(at, String(params.additionalProperty)), message: 'is not allowed here' };
    case 'enum':
      return { path: at, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path: at, message: `must be ${JSON.stringify(params.allowedValue)}` };
    default:
      return { path: at, message: error.message ?? error.keyword };
  }
}

/** Problems to show, once each, at most `limit` (a union type's branches can each add several). */
export function problemsOf(errors: readonly ErrorObject[] | null | undefined, limit = 8): Problem[] {
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const e of errors ?? []) {
    // "must match a schema in anyOf" only repeats what the branches said.
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const p = problemOf(e);
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
    if (out.length >= limit) break;
  }
  return out;
}

type Schema = Obj;

/** Follows a local `$ref` (`#/$defs/AgentStatusData`) inside the document `root`. */
function resolve(schema: Schema, root: Schema): Schema {
  let current = schema;
  for (let hops = 0; hops < 8 && typeof current.$ref === 'string' && current.$ref.startsWith('#/'); hops++) {
    let target: unknown = root;
    for (const part of current.$ref.slice(2).split('/')) target = obj(target)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    const next = obj(target);
    if (!next) break;
    current = next;
  }
  return current;
}

function exampleValue(key: string, schema: Schema, root: Schema, depth: number): unknown {
  const s = resolve(schema, root);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  const variants = (Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : null)?.map(obj).filter((v): v is Obj => !!v);
  if (variants?.length) return exampleValue(key, variants[0]!, root, depth);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string':
      if (key === 'repository') return 'octo/app';
      if (/Id$/.test(key)) return `${key.slice(0, -2)}-001`;
      return 'example';
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return depth > 4 ? {} : exampleObject(s, root, depth + 1);
    default:
      return null;
  }
}

function exampleObject(schema: Schema, root: Schema, depth: number): Obj {
  const props = obj(schema.properties) ?? {};
  const out: Obj = {};
  for (const key of Array.isArray(schema.required) ? schema.required.map(String) : []) {
    out[key] = exampleValue(key, obj(props[key]) ?? {}, root, depth);
  }
  return out;
}

/** A starting `data` for a type: its schema's required fields with plausible values. */
export function exampleData(envelopeSchema: unknown): Obj {
  const root = obj(envelopeSchema);
  if (!root) return {};
  const data = obj(obj(root.properties)?.data);
  return data ? exampleObject(resolve(data, root), root, 0) : {};
}
