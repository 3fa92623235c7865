/**
 * Times in the admin API are the gateway's clock (epoch ms); ages shown in
 * the browser are "now minus then". A laptop whose clock is off by a minute
 * would show every node as stale, so the offset is estimated from the HTTP
 * `Date` header of each answer (1 s resolution) and applied only when it is
 * larger than that resolution could explain.
 */

/** Offsets below this are rounding of the Date header, not skew. */
const DATE_RESOLUTION_MS = 2000;

/** Server clock minus browser clock, in ms (0 when unknown or within the header's resolution). */
export function clockOffset(dateHeader: string | null, receivedAtMs: number): number {
  if (!dateHeader) return 0;
  const server = Date.parse(dateHeader);
  if (!Number.isFinite(server)) return 0;
  const offset = server - receivedAtMs;
  return Math.abs(offset) > DATE_RESOLUTION_MS ? offset : 0;
}

/** A duration as an operator reads it: "850 ms", "12 s", "5 min", "3 h 20 min", "2 d 4 h". */
export function formatAge(ms: number): string {
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)} ms`;
  const s = Math.floor(v / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Byte counts of the connections table: "0 B", "1.5 KiB", "3.2 MiB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}
