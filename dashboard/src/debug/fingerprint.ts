/**
 * A short fingerprint of a JSON value that does not depend on key order or
 * whitespace. The build compiles validators from the repository's schemas
 * and records each one's fingerprint; the publish form compares it with the
 * schema the gateway serves at `/schemas/<type>.json` before trusting the
 * compiled validator for it (a dashboard in `npm run dev` may talk to a
 * gateway of another version). Not a security measure: FNV-1a, 32 bits.
 *
 * Shared by the browser and the build (vite.config.ts): no DOM, no Node.
 */

/** JSON with object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function fingerprint(value: unknown): string {
  const text = canonicalJson(value);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
