/**
 * The publish form's validators, compiled at build time from the repository's
 * schemas (scripts/event-validators.ts), on the design document's examples
 * and on broken copies of them: the paths match what the gateway's 422 names.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';
import { fingerprints, validators } from 'virtual:event-validators';

import { EVENT_TYPES } from '@autosdlc/ws-client';
import { fingerprint } from '../src/debug/fingerprint';
import { envelopeForValidation, exampleData, problemsOf } from '../src/debug/publish';
import { validatorModule } from '../scripts/event-validators';
import { REPO } from '../scripts/harness.mjs';

const schemaOf = (type: string): unknown =>
  JSON.parse(readFileSync(path.join(REPO, 'src', 'autosdlc_ws', 'schemas', `${type}.json`), 'utf8'));
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(REPO, 'tests', 'fixtures', 'events', name), 'utf8'));

function check(type: string, envelope: unknown) {
  const validate = validators[type]!;
  const ok = validate(envelope);
  return { ok, problems: problemsOf(validate.errors) };
}

describe('compiled event validators', () => {
  it('exist for every event type, each with the fingerprint of the schema the gateway serves', () => {
    expect(Object.keys(validators).sort()).toEqual([...EVENT_TYPES].sort());
    for (const type of EVENT_TYPES) expect(fingerprints[type], type).toBe(fingerprint(schemaOf(type)));
  });

  it("accept the design document's examples", () => {
    for (const [file, type] of [['agent_status.json', 'agent_status'], ['tdd_phase_change.json', 'tdd_phase_change']] as const) {
      const env = fixture(file);
      expect(check(type, env), file).toEqual({ ok: true, problems: [] });
    }
  });

  it('name the failing field the way the gateway does', () => {
    const env = fixture('agent_status.json');
    const data = env.data as Record<string, unknown>;
    expect(check('agent_status', { ...env, data: { ...data, status: 42 } }).problems).toContainEqual({
      path: 'data.status',
      message: 'must be string',
    });
    const { agentId: _drop, ...withoutAgent } = data;
    expect(check('agent_status', { ...env, data: withoutAgent }).problems).toContainEqual({ path: 'data.agentId', message: 'required' });
    const task = { ...(data.currentTask as object), progress: 250 };
    expect(check('agent_status', { ...env, data: { ...data, currentTask: task } }).problems).toContainEqual({
      path: 'data.currentTask.progress',
      message: 'must be <= 100',
    });
    // the envelope's own type must be the schema's
    expect(check('agent_status', { ...env, type: 'agent_log' }).problems).toContainEqual({ path: 'type', message: 'must be "agent_status"' });
  });

  it('count string lengths in code points, as the gateway does', () => {
    const env = fixture('agent_status.json');
    const astral = '😀'.repeat(128); // 256 UTF-16 units, 128 code points: maxLength 128 holds
    expect(check('agent_status', { ...env, data: { ...(env.data as object), agentId: astral } }).ok).toBe(true);
    expect(check('agent_status', { ...env, data: { ...(env.data as object), agentId: `${astral}x` } }).ok).toBe(false);
  });

  it("a type's example data, built from its schema, passes its validator", () => {
    for (const type of EVENT_TYPES) {
      const data = exampleData(schemaOf(type));
      expect(check(type, envelopeForValidation(type, data, 1_700_000_000_000)), `${type}: ${JSON.stringify(data)}`).toEqual({
        ok: true,
        problems: [],
      });
    }
  });

  it('the build refuses a schema of another draft, or without $id', () => {
    expect(() => validatorModule({ x: { $schema: 'http://json-schema.org/draft-07/schema#', $id: 'x' } })).toThrow(/2020-12/);
    expect(() => validatorModule({ x: { $schema: 'https://json-schema.org/draft/2020-12/schema' } })).toThrow(/\$id/);
  });
});
