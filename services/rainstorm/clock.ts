/**
 * Time as RainStorm's drivers use it: a monotonic now, a sleep and a one-shot timer. realClock is
 * the process's; the simulator passes a virtual one, so minutes of a job run in milliseconds and
 * replay from a seed.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  nowMs(): number;
  /** Wall-clock milliseconds since the epoch (names such as job ids). */
  wallMs(): number;
  sleep(ms: number): Promise<void>;
  /** Run `fn` once after `ms`. */
  after(ms: number, fn: () => void): { cancel(): void };
}

export const realClock: Clock = {
  nowMs: () => performance.now(),
  wallMs: () => Date.now(),
  sleep: (ms) => Bun.sleep(ms),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
