// Starts what the dashboard needs to show something real: the gateway
// (python -m autosdlc_ws serve), the simulator and headless Chromium.
// Used by the e2e test (test/e2e.test.ts) and scripts/screenshot.mjs.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const STATIC_INDEX = path.join(REPO, 'src', 'autosdlc_ws', 'static', 'index.html');
export const PYTHON = process.env.AUTOSDLC_PYTHON ?? path.join(REPO, '.venv', 'bin', 'python');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** redis-server for the tests that need their own: REDIS_SERVER_PATH, else the first on PATH. */
export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? onPath('redis-server') ?? '/usr/bin/redis-server';

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Problems that make the browser tests impossible here, or null. `redis`: the test also needs redis-server. */
export function missingPrerequisites({ redis = false } = {}) {
  const missing = [];
  if (redis && !existsSync(REDIS_SERVER)) missing.push(`${REDIS_SERVER} (apt-get install -y redis-server)`);
  if (!existsSync(PYTHON)) missing.push(`${PYTHON} (run \`make test\` or create the venv first)`);
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (apt-get install -y chromium)`);
  if (!existsSync(STATIC_INDEX)) missing.push(`${STATIC_INDEX} (npm run build)`);
  return missing.length ? missing : null;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function newSecret() {
  return `e2e-${randomBytes(24).toString('hex')}`;
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 JWT as `autosdlc-ws token create` mints it (sub, permissions, iat, exp). */
export function mintToken(secret, sub, permissions, ttlS = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const body = b64url({ sub, permissions, iat: now, exp: now + ttlS });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A child process whose output is kept (the tail is shown when something fails). */
function spawnLogged(name, args, env, command = PYTHON) {
  const proc = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const keep = (chunk) => {
    for (const line of String(chunk).split('\n')) if (line) lines.push(`[${name}] ${line}`);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  proc.output = lines;
  proc.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return proc;
}

async function waitHealthy(base, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`gateway at ${base} did not become healthy:\n${proc.output.slice(-30).join('\n')}`);
}

/** `python -m autosdlc_ws serve --port <port> [args…]`, resolved once /healthz answers. */
export async function startGateway({ port, secret, args = [], env = {}, timeoutMs = 20_000 }) {
  const proc = spawnLogged('gateway', ['-m', 'autosdlc_ws', 'serve', '--host', '127.0.0.1', '--port', String(port), ...args], {
    AUTOSDLC_WS_JWT_SECRET: secret,
    ...env,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(base, proc, timeoutMs);
  return { proc, port, base };
}

/**
 * A private redis-server on `port` (no persistence, bound to 127.0.0.1), as
 * the Python tests start theirs (tests/redis/conftest.py): never a shared one.
 * Resolved once it answers PING.
 */
export async function startRedis({ port, timeoutMs = 10_000 }) {
  const proc = spawnLogged('redis', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, REDIS_SERVER);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    if (await redisPing(port)) return { proc, url: `redis://127.0.0.1:${port}/0` };
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server on ${port} did not start:\n${proc.output.slice(-20).join('\n')}`);
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port }, () => sock.write('PING\r\n'));
    sock.setTimeout(500, () => sock.destroy());
    sock.once('data', (d) => {
      resolve(String(d).startsWith('+PONG'));
      sock.destroy();
    });
    sock.once('error', () => resolve(false));
    sock.once('close', () => resolve(false));
  });
}

/** `python -m autosdlc_ws simulate` publishing to the gateway over HTTP. */
export function startSimulator({ base, token, rate = 5, seed = 1, agents = 3 }) {
  return spawnLogged('simulator', [
    '-m', 'autosdlc_ws', 'simulate', '--url', base, '--token', token,
    '--rate', String(rate), '--seed', String(seed), '--agents', String(agents),
  ]);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(proc, graceMs = 10_000) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  try {
    await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}
