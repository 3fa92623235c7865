let counter = 0;

/** Unique message id; random UUIDs where the runtime has them. */
export function newId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c && typeof c.randomUUID === 'function') return `c-${c.randomUUID()}`;
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `c-${Date.now().toString(36)}-${counter.toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}
