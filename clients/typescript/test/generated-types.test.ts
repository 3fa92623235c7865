/**
 * src/generated/messages.ts must be exactly what scripts/gen-types.mjs writes
 * from the gateway's JSON Schemas now (the drift check), and the hand-written
 * lists in src/types.ts must name exactly the types that have a schema.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, expectTypeOf, it } from 'vitest';

import { MESSAGE_TYPES, type MessageDataMap } from '../src/generated/messages.js';
import {
  CONTROL_TYPES,
  EVENT_TYPES,
  type AgentLogData,
  type AuthRequestData,
  type ConnectionLimits,
  type DataByType,
  type EnvelopeOf,
  type GithubWorkflowUpdateData,
  type ServerErrorCode,
  type SubscriptionFilters,
} from '../src/types.js';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const generator = join(packageDir, 'scripts', 'gen-types.mjs');
const generatedFile = join(packageDir, 'src', 'generated', 'messages.ts');
const schemasDir = process.env.AUTOSDLC_SCHEMAS_DIR ?? join(packageDir, '..', '..', 'src', 'autosdlc_ws', 'schemas');

async function generate(env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [generator, '--stdout'], {
    cwd: packageDir,
    env: { ...process.env, ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

describe('types generated from the JSON Schemas', () => {
  it('src/generated/messages.ts is up to date (otherwise run `npm run gen:types`)', async () => {
    if (!existsSync(schemasDir)) {
      throw new Error(`JSON Schemas not found at ${schemasDir}: the drift check needs the repository checkout`);
    }
    const expected = await generate();
    const actual = readFileSync(generatedFile, 'utf8');
    // A plain equality check first so the failure message says what to do.
    if (actual !== expected) {
      expect.fail(
        'src/generated/messages.ts differs from what scripts/gen-types.mjs generates from the schemas: run `npm run gen:types`',
      );
    }
  });

  it('notices when a schema changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'autosdlc-schemas-'));
    try {
      cpSync(schemasDir, dir, { recursive: true });
      const path = join(dir, 'agent_log.json');
      const schema = JSON.parse(readFileSync(path, 'utf8'));
      schema.$defs.AgentLogData.properties.lineNumber = { type: 'integer', minimum: 1 };
      writeFileSync(path, JSON.stringify(schema));
      const text = await generate({ AUTOSDLC_SCHEMAS_DIR: dir });
      expect(text).toMatch(/lineNumber\?: number;/);
      await expect(
        run(process.execPath, [generator, '--check'], { cwd: packageDir, env: { ...process.env, AUTOSDLC_SCHEMAS_DIR: dir } }),
      ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('npm run gen:types') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses two different $defs with the same name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'autosdlc-schemas-'));
    try {
      cpSync(schemasDir, dir, { recursive: true });
      const path = join(dir, 'ping.json');
      const schema = JSON.parse(readFileSync(path, 'utf8'));
      schema.$defs.Metadata.properties.extra = { type: 'string' };
      writeFileSync(path, JSON.stringify(schema));
      await expect(generate({ AUTOSDLC_SCHEMAS_DIR: dir })).rejects.toMatchObject({
        stderr: expect.stringContaining('$defs/Metadata differs'),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has one entry per schema file, split exactly into control and event types', () => {
    expect(MESSAGE_TYPES).toHaveLength(29);
    if (existsSync(schemasDir)) {
      const files = readdirSync(schemasDir).filter((f) => f.endsWith('.json'));
      expect(files.map((f) => f.replace(/\.json$/, '')).sort()).toEqual([...MESSAGE_TYPES].sort());
    }
    expect([...CONTROL_TYPES, ...EVENT_TYPES].sort()).toEqual([...MESSAGE_TYPES].sort());
    expectTypeOf<keyof DataByType>().toEqualTypeOf<keyof MessageDataMap>();
    expectTypeOf<(typeof MESSAGE_TYPES)[number]>().toEqualTypeOf<keyof MessageDataMap>();
  });

  it('keeps schema field names, enums and nullability typed, and extra fields allowed', () => {
    // an open value (protocol 1.1): the documented values, or any newer string
    expectTypeOf<AgentLogData['level']>().toEqualTypeOf<'debug' | 'info' | 'warning' | 'error' | (string & {})>();
    expectTypeOf<'debug'>().toMatchTypeOf<AgentLogData['level']>();
    expectTypeOf<'trace'>().toMatchTypeOf<AgentLogData['level']>();
    expectTypeOf<number>().not.toMatchTypeOf<AgentLogData['level']>();
    expectTypeOf<EnvelopeOf<'agent_log'>['data']>().toEqualTypeOf<AgentLogData>();
    expectTypeOf<GithubWorkflowUpdateData['conclusion']>().toEqualTypeOf<string | null>();
    expectTypeOf<GithubWorkflowUpdateData['headBranch']>().toEqualTypeOf<string | null | undefined>();
    expectTypeOf<AuthRequestData['compression']>().toEqualTypeOf<'gzip' | 'none' | undefined>();
    expectTypeOf<ConnectionLimits['maxFrameBytes']>().toEqualTypeOf<number>();
    expectTypeOf<ServerErrorCode>().toMatchTypeOf<string>();
    expectTypeOf<'forbidden'>().toMatchTypeOf<ServerErrorCode>();
    expectTypeOf<SubscriptionFilters['agentId']>().toEqualTypeOf<string | string[] | undefined>();

    // Forward compatibility: a newer gateway may add fields; known ones stay typed.
    const log: AgentLogData = { agentId: 'a1', level: 'info', message: 'hi', lineNumber: 3 };
    expectTypeOf(log.agentId).toEqualTypeOf<string>();
    expectTypeOf(log.lineNumber).toEqualTypeOf<unknown>();
    // Filters are closed in the schema (a typo is refused by the server).
    // @ts-expect-error unknown filter key
    const bad: SubscriptionFilters = { agentID: 'a1' };
    expect(bad).toBeTruthy();
  });
});
