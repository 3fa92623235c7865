// The checker fails what the parser calls an error and passes a valid document,
// so `make test-asyncapi` passing on docs/asyncapi.yaml means something.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { checkAsyncApi, describe } from '../check.mjs';

const CHECK = fileURLToPath(new URL('../check.mjs', import.meta.url));

const VALID = `asyncapi: 3.0.0
info:
  title: Echo
  version: 1.0.0
channels:
  echo:
    address: /echo
    messages:
      ping:
        payload:
          type: object
operations:
  send:
    action: send
    channel:
      $ref: '#/channels/echo'
`;

// A reference that points nowhere; an operation action the schema does not allow.
const DANGLING = VALID.replace("$ref: '#/channels/echo'", "$ref: '#/channels/nowhere'");
const INVALID = VALID.replace('action: send', 'action: shout');

test('a valid document has no error diagnostics', async () => {
  const { document, errors } = await checkAsyncApi(VALID, 'valid.yaml');
  assert.deepEqual(errors.map(describe), []);
  assert.equal(document?.version(), '3.0.0');
});

test('a dangling reference is an error', async () => {
  const { errors } = await checkAsyncApi(DANGLING, 'dangling.yaml');
  assert.match(errors.map(describe).join('\n'), /invalid-ref .*nowhere/);
});

test('a value the AsyncAPI schema forbids is an error', async () => {
  const { errors } = await checkAsyncApi(INVALID, 'invalid.yaml');
  assert.match(errors.map(describe).join('\n'), /operations\.send\.action/);
});

// Exit 0 on a valid file is what `npm test` shows next, on docs/asyncapi.yaml.
test('the command exits 1 on a document with errors', () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'asyncapi-check-')), 'invalid.yaml');
  writeFileSync(file, INVALID);
  const run = spawnSync(process.execPath, [CHECK, file], { encoding: 'utf8' });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stdout, /invalid\.yaml: error .*operations\.send\.action/);
  assert.match(run.stdout, /: errors: 1,/);
});
