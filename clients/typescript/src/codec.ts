import { ProtocolError } from './errors.js';
import type { Envelope } from './types.js';

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

/** What a WebSocket `message` event's `data` may be in browsers and Node. */
export type RawFrame = string | ArrayBuffer | ArrayBufferView | Blob;

/** True when decoding `raw` needs no await (plain text frames). */
export function isTextFrame(raw: RawFrame): raw is string {
  return typeof raw === 'string';
}

async function toBytes(raw: Exclude<RawFrame, string>): Promise<Uint8Array> {
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw);
  if (ArrayBuffer.isView(raw)) return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  if (typeof Blob !== 'undefined' && raw instanceof Blob) return new Uint8Array(await raw.arrayBuffer());
  throw new ProtocolError('invalid_frame', 'unsupported binary frame type');
}

/**
 * gunzip with the platform's DecompressionStream (browsers, Node >= 18), so
 * the browser build has no dependency. `maxBytes` caps the output: a small
 * frame must not inflate into an unbounded string.
 */
export async function gunzipText(bytes: Uint8Array, maxBytes: number): Promise<string> {
  if (typeof DecompressionStream === 'undefined') {
    throw new ProtocolError('invalid_frame', 'gzip frame received but DecompressionStream is unavailable');
  }
  const stream = new DecompressionStream('gzip');
  const writer = stream.writable.getWriter();
  // Errors surface on the reader; these promises only must not go unhandled.
  writer.write(bytes as Uint8Array<ArrayBuffer>).catch(() => undefined);
  writer.close().catch(() => undefined);
  const reader = stream.readable.getReader();
  const decoder = new TextDecoder();
  let total = 0;
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new ProtocolError('invalid_frame', `decompressed frame exceeds ${maxBytes} bytes`);
      }
      text += decoder.decode(value, { stream: true });
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('invalid_frame', 'corrupt gzip frame', { cause: err });
  }
  return text + decoder.decode();
}

/** Binary frame -> JSON text: gzip when it starts with the gzip magic, else UTF-8. */
export async function binaryFrameToText(raw: Exclude<RawFrame, string>, maxBytes: number): Promise<string> {
  const bytes = await toBytes(raw);
  if (bytes.length >= 2 && bytes[0] === GZIP_MAGIC_0 && bytes[1] === GZIP_MAGIC_1) {
    return gunzipText(bytes, maxBytes);
  }
  return new TextDecoder().decode(bytes);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProtocolError('invalid_frame', 'frame is not valid JSON', { cause: err });
  }
}

/** Shape-checks one parsed envelope; `what` names it in the error ("frame", "batch item 2"). */
function asEnvelope(value: unknown, what: string): Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('invalid_frame', `${what} is not a JSON object`);
  }
  const env = value as Record<string, unknown>;
  if (typeof env.type !== 'string' || env.type === '') {
    throw new ProtocolError('invalid_frame', `${what} has no type`);
  }
  if (typeof env.data !== 'object' || env.data === null || Array.isArray(env.data)) {
    env.data = {};
  }
  return env as Envelope;
}

/** Parses and shape-checks one frame; throws ProtocolError when it is not an envelope. */
export function parseEnvelope(text: string): Envelope {
  return asEnvelope(parseJson(text), 'frame');
}

/**
 * Parses a frame into the envelopes it carries, in order: one for a plain
 * frame, each element for a batch (a JSON array of envelopes, protocol 1.1,
 * sent to clients that opt in with `batch`). A malformed element becomes a
 * ProtocolError in its place, so the rest are still delivered, exactly as
 * a malformed single frame is reported and skipped. Throws ProtocolError
 * when the text is not JSON at all.
 */
export function parseFrame(text: string): Array<Envelope | ProtocolError> {
  const value = parseJson(text);
  if (!Array.isArray(value)) return [asEnvelope(value, 'frame')];
  return value.map((item, i) => {
    try {
      return asEnvelope(item, `batch item ${i}`);
    } catch (err) {
      return err as ProtocolError;
    }
  });
}

const encoder = new TextEncoder();

/** UTF-8 size of a frame, as the server's `maxFrameBytes` counts it. */
export function byteLength(text: string): number {
  // Fast path: ASCII strings are as long in bytes as in UTF-16 code units.
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(text) ? text.length : encoder.encode(text).length;
}
