/**
 * A bounded window of asynchronous pushes (a streamed upload's chunks on their way to the
 * replicas): at most `limit` run at once, `add` waits for room, and the first failure is kept,
 * stops further adds and is thrown by `drain`, which always waits for every push still running
 * (so nothing outlives the upload it belongs to).
 */
export class PushWindow {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`push window limit ${limit}: expected a positive integer`);
  }

  /** Pushes running now. */
  get running(): number {
    return this.inFlight.size;
  }

  /** Start `push` once fewer than `limit` run; throws the first failure of an earlier push instead. */
  async add(push: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.limit && !this.failure) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const p: Promise<void> = push()
      .catch((err) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Wait for every running push; then throw the first failure, if any. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}
