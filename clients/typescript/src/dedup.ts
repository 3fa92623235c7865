/**
 * Remembers the last `capacity` event ids. Resume already replays "without
 * duplicates"; this is the second line of defence for the overlap between a
 * replay and live events, or a server that replays one event too many.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Records `id`; returns false when it was seen recently (a duplicate). */
  add(id: string): boolean {
    if (this.ids.has(id)) {
      // Refresh recency so a burst of repeats keeps the id remembered.
      this.ids.delete(id);
      this.ids.add(id);
      return false;
    }
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      // Sets iterate in insertion order: the first one is the oldest.
      const oldest = this.ids.values().next().value as string;
      this.ids.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}
