/**
 * The npm package as a user gets it. `npm pack` (whose `prepack` builds dist/)
 * into a temp dir; a fresh project (`npm init -y`) installs the tarball; the
 * apps in test/package-consumer/ are type-checked with `tsc --strict` under
 * `moduleResolution` node16, nodenext and bundler, and the ES module and
 * CommonJS ones run under Node against the real gateway (connect, subscribe,
 * receive one published event, close). The browser bundle of the installed
 * package is held to the budgets in README.md.
 *
 * The tarball installs offline (it has no dependencies). What the apps need
 * besides it, and a user would install from the registry (`ws`, `react`,
 * their types, `@types/node`), is linked from this package's node_modules,
 * and tsc is this package's: the test needs no network.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Gateway, within } from './helpers/gateway.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const consumerSources = fileURLToPath(new URL('./package-consumer/', import.meta.url));
const tsc = join(packageDir, 'node_modules', 'typescript', 'bin', 'tsc');
const PACKAGE = '@autosdlc/ws-client';
const LINKED_FROM_DEV_DEPENDENCIES = ['ws', '@types/ws', '@types/node', 'react', '@types/react'];

/** Runs a command to completion; rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd} (${error.code ?? error.signal}):\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * The tarball, packed by `npm pack` as `npm publish` would pack it. dist/ is
 * removed first, as in a fresh clone: what the tarball ships, `prepack` built.
 */
async function pack(into: string): Promise<string> {
  rmSync(join(packageDir, 'dist'), { recursive: true, force: true });
  await run('npm', ['pack', '--pack-destination', into], packageDir);
  const tarballs = readdirSync(into).filter((name) => name.endsWith('.tgz'));
  if (tarballs.length !== 1) throw new Error(`npm pack left ${tarballs.length} tarballs in ${into}: ${tarballs.join(', ')}`);
  return join(into, tarballs[0]!);
}

/** A fresh project with the tarball installed and the consumer apps beside it. */
async function installConsumer(tarball: string, projectDir: string): Promise<void> {
  mkdirSync(projectDir);
  await run('npm', ['init', '-y'], projectDir);
  await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], projectDir);
  for (const name of LINKED_FROM_DEV_DEPENDENCIES) {
    const link = join(projectDir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(packageDir, 'node_modules', name), link, 'dir');
  }
  cpSync(consumerSources, projectDir, { recursive: true });
}

interface ConsumerRun {
  code: number | null;
  steps: Record<string, unknown>[];
  stderr: string;
  /** The id the gateway gave the published event. */
  publishedId: string | null;
}

/**
 * Runs a compiled consumer app with Node; once it reports `subscribed`,
 * publishes one agent_status for its agent through the gateway's HTTP API.
 */
async function runConsumer(gw: Gateway, script: string, cwd: string, agentId: string): Promise<ConsumerRun> {
  const child = spawn(process.execPath, [script], {
    cwd,
    env: { ...process.env, GATEWAY_URL: gw.wsUrl, GATEWAY_TOKEN: gw.token('npm-consumer', ['read:*']), AGENT_ID: agentId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const steps: Record<string, unknown>[] = [];
  let published: Promise<string[]> | null = null;
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (let newline = stdout.indexOf('\n'); newline >= 0; newline = stdout.indexOf('\n')) {
      const step = JSON.parse(stdout.slice(0, newline)) as Record<string, unknown>;
      stdout = stdout.slice(newline + 1);
      steps.push(step);
      if (step.step === 'subscribed' && !published) {
        const publisher = gw.token('npm-publisher', ['publish:*']);
        published = gw.publish({ type: 'agent_status', data: { agentId, status: 'idle' } }, { token: publisher });
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const code = await within(exited, 20_000, `${script} to exit`);
    const ids: string[] = (await published) ?? [];
    return { code, steps, stderr, publishedId: ids[0] ?? null };
  } finally {
    child.kill('SIGKILL');
  }
}

describe('the npm package, installed into a fresh project', { timeout: 60_000 }, () => {
  let workDir = '';
  let projectDir = '';
  let installedDir = '';
  const gw = new Gateway();
  let node16Compile: Promise<Error | null> | null = null;
  /**
   * `tsc -p tsconfig.node16.json`, once: it also writes the apps that the run
   * tests start (out/, written even when there are type errors, so that a run
   * test reports what Node says). Resolves with the type errors, if any.
   */
  const compileForNode = () =>
    (node16Compile ??= run(process.execPath, [tsc, '-p', 'tsconfig.node16.json'], projectDir).then(
      () => null,
      (error: Error) => error,
    ));

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'autosdlc-ws-client-package-'));
    projectDir = join(workDir, 'consumer');
    installedDir = join(projectDir, 'node_modules', ...PACKAGE.split('/'));
    const packAndInstall = pack(workDir).then((tarball) => installConsumer(tarball, projectDir));
    await Promise.all([packAndInstall, gw.start()]);
  }, 120_000);

  afterAll(async () => {
    await gw.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('ships both builds, their types and the sources the maps point at, and nothing else', () => {
    const shipped = readdirSync(installedDir).sort();
    expect(shipped).toEqual(['LICENSE', 'README.md', 'dist', 'package.json', 'src']);
    for (const entry of ['index', 'react']) {
      for (const extension of ['.js', '.cjs', '.d.ts', '.d.cts']) {
        expect(existsSync(join(installedDir, 'dist', `${entry}${extension}`)), `dist/${entry}${extension}`).toBe(true);
      }
    }
  });

  it.each(['node16', 'nodenext', 'bundler'])(
    'type-checks the consumer apps with tsc --strict under moduleResolution %s',
    async (resolution) => {
      if (resolution === 'node16') {
        const typeErrors = await compileForNode();
        if (typeErrors) throw typeErrors;
      } else {
        await run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], projectDir);
      }
    },
  );

  it('compiles the CommonJS app to require() calls of the package', async () => {
    await compileForNode();
    const compiled = readFileSync(join(projectDir, 'out', 'cjs.cjs'), 'utf8');
    expect(compiled).toContain(`require("${PACKAGE}")`);
    expect(compiled).toContain(`require("${PACKAGE}/react")`);
  });

  it.each([
    ['ES module', 'esm', 'out/esm.mjs'],
    ['CommonJS', 'cjs', 'out/cjs.cjs'],
  ])('runs the %s app under Node against a live gateway', async (_, consumer, script) => {
    await compileForNode();
    const agentId = `npm-${consumer}-${Date.now().toString(36)}`;
    const result = await runConsumer(gw, script, projectDir, agentId);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const step = (name: string) => result.steps.find((s) => s.step === name);
    expect(step('react')).toMatchObject({ consumer, useWebSocket: 'function', sharesCore: true });
    expect(step('subscribed')).toMatchObject({ consumer, subscriptionId: expect.any(String) });
    expect(result.publishedId).toEqual(expect.any(String));
    expect(step('received')).toEqual({ consumer, step: 'received', id: result.publishedId, agentId, status: 'idle' });
  });

  it('keeps the browser bundle of the installed package within the budgets in README.md', async () => {
    const report = await run(process.execPath, [join(packageDir, 'scripts', 'size.mjs'), '--from', projectDir], packageDir);
    expect(report).toMatch(/^@autosdlc\/ws-client: \d+ B minified, \d+ B gzipped \(budget \d+ B\)$/m);
  });
});
