/**
 * The broadcast queue: member ids whose news is still being piggybacked, with how often each
 * has been sent. The least-sent go first; an id leaves after `limit` sends. The entry itself is
 * read at send time, so a later change of the same member replaces the older news.
 */
export class BroadcastQueue {
  private readonly sent = new Map<string, number>();

  /** Queue (or re-queue) news of `id`; `alreadySent` > 0 leaves it fewer sends before the limit. */
  enqueue(id: string, alreadySent = 0): void {
    this.sent.set(id, alreadySent);
  }

  delete(id: string): void {
    this.sent.delete(id);
  }

  get size(): number {
    return this.sent.size;
  }

  /** Up to `max` ids with the fewest sends; counts this send and drops ids that reach `limit`. */
  take(max: number, limit: number): string[] {
    if (this.sent.size === 0 || max <= 0) return [];
    const chosen = [...this.sent.entries()].sort((a, b) => a[1] - b[1]).slice(0, max);
    for (const [id, count] of chosen) {
      if (count + 1 >= limit) this.sent.delete(id);
      else this.sent.set(id, count + 1);
    }
    return chosen.map(([id]) => id);
  }
}
