/**
 * One socket and what the client learned on it. Wires the socket's events
 * to the client: frames are decoded (gzip is async) and handed over in
 * arrival order, and the close is queued behind frames still decoding. A
 * reconnect makes a new Connection, so callbacks of a dead one are ignored.
 */
import { binaryFrameToText, isTextFrame, parseFrame, type RawFrame } from './codec.js';
import { DEFAULTS, type ClientConfig } from './config.js';
import { ProtocolError, type AutoSDLCError } from './errors.js';
import { currentCredentials, hasCredentials, upgradeUrl, type Credentials, type ResumePoint } from './handshake.js';
import { asClientError, type InboundSerializer } from './inbound.js';
import {
  watchUpgradeResponse,
  type UpgradeRefusal,
  type WebSocketConstructor,
  type WebSocketLike,
} from './transport.js';
import type { ConnectData, DisconnectData, Envelope } from './types.js';

export interface Connection {
  ws: WebSocketLike;
  credentials: Credentials;
  /** Credentials travel in an auth_request (not the URL). */
  inBand: boolean;
  /** The sessionId we asked to resume, if any. */
  resumeFrom: string | null;
  opened: boolean;
  handshakeDone: boolean;
  /** The last `connect` frame seen; authoritative once auth_success arrives. */
  lastConnect: ConnectData | null;
  disconnect: DisconnectData | null;
  refusal: UpgradeRefusal;
  errorMessage?: string;
  /** Set when the client let go of it: its late events are ignored. */
  dead: boolean;
}

export interface ConnectionEvents {
  open(conn: Connection): void;
  /** Anything arrived (before decoding): the link is alive. */
  activity(conn: Connection): void;
  envelope(conn: Connection, env: Envelope): void;
  close(conn: Connection, code: number, reason: string): void;
  /** A frame that could not be decoded or parsed. */
  badFrame(error: AutoSDLCError): void;
}

export interface ConnectionInit {
  credentials: Credentials;
  inBand: boolean;
  resumeFrom: string | null;
  maxDecompressedBytes: number;
}

/** Takes over a freshly created socket. */
export function attachConnection(
  ws: WebSocketLike,
  init: ConnectionInit,
  inbound: InboundSerializer,
  events: ConnectionEvents,
): Connection {
  const conn: Connection = {
    ws,
    credentials: init.credentials,
    inBand: init.inBand,
    resumeFrom: init.resumeFrom,
    opened: false,
    handshakeDone: false,
    lastConnect: null,
    disconnect: null,
    refusal: {},
    dead: false,
  };
  try {
    ws.binaryType = 'arraybuffer';
  } catch {
    // Some implementations do not allow it; Blob frames are decoded too.
  }
  // A batch's envelopes one by one, each as if it were its own frame; the
  // client may let go of the connection half-way (say, on auth_failure).
  const deliver = (text: string) => {
    if (conn.dead) return;
    let items: Array<Envelope | ProtocolError>;
    try {
      items = parseFrame(text);
    } catch (err) {
      events.badFrame(asClientError(err));
      return;
    }
    for (const item of items) {
      if (conn.dead) return;
      if (item instanceof ProtocolError) events.badFrame(item);
      else events.envelope(conn, item);
    }
  };
  ws.onopen = () => {
    if (!conn.dead) events.open(conn);
  };
  ws.onmessage = (event: { data: RawFrame }) => {
    if (conn.dead) return;
    // Anything at all proves the connection alive; say so before decoding.
    events.activity(conn);
    const raw = event.data;
    inbound.run(() => {
      if (isTextFrame(raw)) return deliver(raw);
      return binaryFrameToText(raw, init.maxDecompressedBytes).then(deliver, (err) =>
        events.badFrame(asClientError(err)),
      );
    });
  };
  ws.onerror = (event: { message?: string; error?: { message?: string } }) => {
    const msg = event?.error?.message ?? event?.message;
    if (typeof msg === 'string') conn.errorMessage = msg;
  };
  ws.onclose = (event: { code?: number; reason?: string }) => {
    const code = typeof event?.code === 'number' ? event.code : 1006;
    const reason = typeof event?.reason === 'string' ? event.reason : '';
    // Queued behind frames still being decoded, so they are handled first.
    inbound.run(() => events.close(conn, code, reason));
  };
  watchUpgradeResponse(ws, conn.refusal);
  return conn;
}

export interface AttemptOptions {
  config: ClientConfig;
  WebSocket: WebSocketConstructor;
  resume: ResumePoint;
  inbound: InboundSerializer;
  events: ConnectionEvents;
  /** close() or a stop happened while getToken was pending: give up quietly. */
  isStale(): boolean;
  /** getToken threw or rejected. */
  credentialsFailed(err: unknown): void;
  /** The socket could not even be created (a malformed URL): retrying cannot help. */
  cannotOpen(err: unknown): void;
  /** The socket exists and is wired; the attempt is under way. */
  started(conn: Connection): void;
}

/**
 * One connection attempt: asks for the current credential (getToken may be
 * async), builds the upgrade URL, creates the socket and wires it.
 */
export function startAttempt(o: AttemptOptions): void {
  let creds: Credentials | Promise<Credentials>;
  try {
    creds = currentCredentials(o.config);
  } catch (err) {
    o.credentialsFailed(err);
    return;
  }
  if (creds instanceof Promise) {
    creds.then(
      (c) => {
        if (!o.isStale()) createSocket(o, c);
      },
      (err) => {
        if (!o.isStale()) o.credentialsFailed(err);
      },
    );
    return;
  }
  createSocket(o, creds);
}

function createSocket(o: AttemptOptions, creds: Credentials): void {
  const authInUrl = o.config.authInUrl ?? DEFAULTS.authInUrl;
  const inBand = hasCredentials(creds) && !authInUrl;
  const url = upgradeUrl(o.config.url, creds, o.resume, {
    inBand,
    authInUrl,
    compression: o.config.compression,
    batch: o.config.batch === true,
  });
  let ws: WebSocketLike;
  try {
    ws = new o.WebSocket(url, o.config.protocols);
  } catch (err) {
    o.cannotOpen(err);
    return;
  }
  const init: ConnectionInit = {
    credentials: creds,
    inBand,
    resumeFrom: o.resume.sessionId,
    maxDecompressedBytes: o.config.maxDecompressedBytes ?? DEFAULTS.maxDecompressedBytes,
  };
  o.started(attachConnection(ws, init, o.inbound, o.events));
}
