/**
 * Runs the real Python gateway (`python -m autosdlc_ws serve`) for the
 * integration tests, plus what they need around it: HS256 tokens, the HTTP
 * publish and admin APIs, a `ws` constructor that records frames, and a TCP
 * proxy that can cut connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

import type { AutoSDLCWebSocketClient, WebSocketConstructor } from '../../src/client.js';
import { scaled } from './timeouts.js';
import type { ConnectData, Envelope } from '../../src/types.js';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));

/** `../../.venv/bin/python` relative to the package; `make test` creates it. */
export function findPython(): string {
  const override = process.env.AUTOSDLC_PYTHON;
  if (override) {
    if (!existsSync(override)) throw new Error(`AUTOSDLC_PYTHON=${override} does not exist`);
    return override;
  }
  const python = resolve(packageDir, '..', '..', '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(
      `integration tests need the gateway's virtualenv at ${python}, which does not exist. ` +
        'Run `make test` from the repository root (it creates .venv first), or create it with ' +
        "`python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'`, or point AUTOSDLC_PYTHON at a python " +
        'that can import autosdlc_ws.',
    );
  }
  return python;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it holds; rejects after `timeoutMs` naming `what`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    }
    await sleep(10);
  }
}

/** Rejects with a message naming `what` when `promise` takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- credentials ---------------------------------------------------------------------

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** A minimal HS256 JWT, as the gateway's `token create` makes them. */
export function signJwt(secret: string, claims: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

export interface ApiKey {
  name: string;
  key: string;
  permissions: string[];
}

// ---- the gateway process ---------------------------------------------------------------

export interface GatewayOptions {
  secret?: string;
  apiKeys?: ApiKey[];
  /** Extra AUTOSDLC_WS_* settings. */
  env?: Record<string, string>;
}

export class Gateway {
  readonly secret: string;
  readonly apiKeys: ApiKey[];
  port = 0;
  private proc: ChildProcess | null = null;
  private output = '';
  private readonly python = findPython();
  private readonly extraEnv: Record<string, string>;

  constructor(options: GatewayOptions = {}) {
    this.secret = options.secret ?? `it-secret-${Math.random().toString(36).slice(2)}-0123456789abcdef0123`;
    this.apiKeys = options.apiKeys ?? [];
    this.extraEnv = options.env ?? {};
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** The last lines the server printed, for failure messages. */
  get log(): string {
    return this.output.slice(-4000);
  }

  token(sub: string, permissions: string[] = ['read:*', 'publish:*'], ttlS = 600): string {
    return signJwt(this.secret, { sub, permissions, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + ttlS });
  }

  /** Starts the server (on the same port as before when restarted) and waits for /healthz. */
  async start(timeoutMs = scaled(20_000)): Promise<void> {
    if (this.proc) throw new Error('gateway already running');
    if (this.port === 0) this.port = await freePort();
    const env: NodeJS.ProcessEnv = {};
    // Settings from the outer environment must not leak into the test server.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUTOSDLC_WS_')) env[k] = v;
    Object.assign(env, {
      PYTHONUNBUFFERED: '1',
      AUTOSDLC_WS_JWT_SECRET: this.secret,
      AUTOSDLC_WS_API_KEYS: JSON.stringify(
        this.apiKeys.map((k) => ({ name: k.name, sha256: sha256Hex(k.key), permissions: k.permissions })),
      ),
      AUTOSDLC_WS_SHUTDOWN_GRACE_S: '2',
      AUTOSDLC_WS_LOG_LEVEL: 'WARNING',
      ...this.extraEnv,
    });
    const proc = spawn(
      this.python,
      ['-m', 'autosdlc_ws', 'serve', '--host', '127.0.0.1', '--port', String(this.port)],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    // Never leave a gateway behind if the test run dies before afterAll.
    const killOnExit = () => proc.kill('SIGKILL');
    process.once('exit', killOnExit);
    proc.once('exit', () => process.removeListener('exit', killOnExit));
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
    let exited: string | null = null;
    proc.once('exit', (code, signal) => {
      exited = `exited with ${code ?? signal}`;
      if (this.proc === proc) this.proc = null;
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`gateway ${exited} before it was healthy:\n${this.log}`);
      try {
        const res = await fetch(`${this.httpUrl}/healthz`, { signal: AbortSignal.timeout(scaled(1000)) });
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`gateway not healthy on port ${this.port} after ${timeoutMs} ms:\n${this.log}`);
      }
      await sleep(50);
    }
  }

  /** SIGTERM (the server drains and closes with 1001), SIGKILL if it hangs. */
  async stop(timeoutMs = scaled(10_000)): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      this.proc = null;
      return;
    }
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    this.proc = null;
  }

  // ---- HTTP API ----

  async publish(events: unknown, auth: { token?: string; apiKey?: string }): Promise<string[]> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (auth.token) headers.authorization = `Bearer ${auth.token}`;
    if (auth.apiKey) headers['x-api-key'] = auth.apiKey;
    const res = await fetch(`${this.httpUrl}/api/v1/events`, { method: 'POST', headers, body: JSON.stringify(events) });
    const text = await res.text();
    if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${text}`);
    return (JSON.parse(text) as { ids: string[] }).ids;
  }

  async admin(method: 'GET' | 'DELETE', path: string, apiKey: string): Promise<any> {
    const res = await fetch(`${this.httpUrl}${path}`, { method, headers: { 'x-api-key': apiKey } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text);
  }
}

// ---- a `ws` constructor that records what happens ------------------------------------------

export interface Recorder {
  WebSocket: WebSocketConstructor;
  /** Every socket the client created, in order. */
  sockets: RecordedSocket[];
}

export interface RecordedSocket {
  url: string;
  sent: Envelope[];
  /** Frames as they arrived: binary (gzip) or text. */
  received: { binary: boolean; bytes: number }[];
  ws: WebSocket;
}

export function recorder(): Recorder {
  const sockets: RecordedSocket[] = [];
  class RecordingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      const rec: RecordedSocket = { url, sent: [], received: [], ws: this };
      sockets.push(rec);
      this.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
        rec.received.push({ binary: isBinary, bytes });
      });
      const send = this.send.bind(this) as (data: unknown, ...rest: unknown[]) => void;
      (this as { send: unknown }).send = (data: unknown, ...rest: unknown[]) => {
        if (typeof data === 'string') rec.sent.push(JSON.parse(data) as Envelope);
        send(data, ...rest);
      };
    }
  }
  return { WebSocket: RecordingWebSocket, sockets };
}

// ---- what the client saw ------------------------------------------------------------------

/** The `connect` frame that each successful handshake was based on (the last one before auth_success). */
export function trackHandshakes(client: AutoSDLCWebSocketClient): ConnectData[] {
  const handshakes: ConnectData[] = [];
  let last: ConnectData | null = null;
  client.on('connect', (e) => {
    last = e.data;
  });
  client.on('auth_success', () => {
    if (last) handshakes.push(last);
  });
  return handshakes;
}

// ---- a TCP proxy whose connections can be cut ---------------------------------------------------

export class CuttableProxy {
  port = 0;
  /** While true, new connections are reset before they reach the gateway. */
  refusing = false;
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((downstream) => {
      if (this.refusing) {
        downstream.on('error', () => {});
        downstream.resetAndDestroy();
        return;
      }
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [downstream, upstream];
      this.pairs.add(pair);
      const drop = () => {
        downstream.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      downstream.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      downstream.pipe(upstream);
      upstream.pipe(downstream);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get open(): number {
    return this.pairs.size;
  }

  /** Resets every proxied connection, as a network failure would: no close frame either way. */
  cut(): void {
    for (const [down, up] of this.pairs) {
      down.resetAndDestroy();
      up.resetAndDestroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
