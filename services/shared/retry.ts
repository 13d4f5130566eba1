/**
 * Retry and backoff as named data. Every client of a daemon API (hydfs/client.ts,
 * rainstorm/client.ts, ctl) retries through `retrying` with one of the policies below, so how
 * often and how long a caller insists is declared once, next to why.
 *
 * The rule: an attempt either gives a value, throws a final error (a caller's own mistake, a
 * 4xx: retrying cannot help), or says `retry` (503 "not ready", 5xx, a timeout, a refused
 * connection: another attempt, possibly at another node, may succeed). Attempts stop at the
 * first value or final error, after `maxAttempts`, or when the next one would start after
 * `deadlineMs` since the first. Pauses grow from `firstBackoffMs`, doubling, up to
 * `maxBackoffMs`. The clock and the sleep are passed in, so the loop runs on virtual time in
 * tests.
 */

export interface RetryPolicy {
  /** No attempt starts later than this after the first (ms). */
  deadlineMs: number;
  /** At most this many attempts in all (Infinity: the deadline alone bounds them). */
  maxAttempts: number;
  /** Pause after the first failed attempt (ms); doubles after each further one. */
  firstBackoffMs: number;
  /** Longest pause between attempts (ms). */
  maxBackoffMs: number;
}

/**
 * A daemon writing to HyDFS (RainStorm's sink and task logs): 30 s outlasts a restarted node's
 * join (an introducer waits up to rejoin_wait_ms, 5 s by default) and the detection of a dead
 * coordinator; longer keeps a task (and the batches behind it) waiting that much longer before
 * its job hears of the error. Pauses from 100 ms up to 2 s catch a coordinator that just became
 * ready without hammering one that is down.
 */
export const DAEMON_RETRY: RetryPolicy = { deadlineMs: 30_000, maxAttempts: Infinity, firstBackoffMs: 100, maxBackoffMs: 2000 };

/**
 * ctl, a person waiting: attempts end with --timeout (the caller overrides deadlineMs with it).
 * With the default 3000 ms ctl retries for about 2 s; 8 attempts (pauses 0.25 + 0.5 + 1 + 4 x
 * 2 s) let a --timeout of 10000 ride out an introducer's rejoin_wait_ms (5 s by default). More
 * attempts report real trouble later.
 */
export const CTL_RETRY: RetryPolicy = { deadlineMs: 3000, maxAttempts: 8, firstBackoffMs: 250, maxBackoffMs: 2000 };

/** The pause after `failed` failed attempts (1 = only the first): the doubling backoff, capped. */
export function backoffMs(policy: RetryPolicy, failed: number): number {
  return Math.min(policy.firstBackoffMs * 2 ** Math.max(0, failed - 1), policy.maxBackoffMs);
}

/**
 * The pause before the next attempt after `failed` failed ones, or undefined to give up: out of
 * attempts, or the next attempt would start at or after the deadline.
 */
export function nextPauseMs(policy: RetryPolicy, failed: number, elapsedMs: number): number | undefined {
  if (failed >= policy.maxAttempts) return undefined;
  const pause = backoffMs(policy, failed);
  return elapsedMs + pause < policy.deadlineMs ? pause : undefined;
}

/** One attempt's outcome: a value, or a retryable failure saying why. Final failures are thrown. */
export type Attempt<T> = { value: T } | { retry: string; status?: number };

/** Every attempt failed in a retryable way: `last` says how the last one failed. */
export class RetriesExhausted extends Error {
  constructor(
    readonly what: string,
    readonly attempts: number,
    readonly last: string,
    readonly status?: number,
  ) {
    super(`${what}: gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}; last: ${last}`);
  }
}

export interface RetryDeps {
  nowMs: () => number;
  sleep: (ms: number) => Promise<unknown>;
  /** Told before each pause (ctl prints `retrying: ...`). */
  onRetry?: (why: string, pauseMs: number) => void;
}

/** Real time: performance.now and Bun.sleep. */
export const REAL_TIME: RetryDeps = { nowMs: () => performance.now(), sleep: (ms) => Bun.sleep(ms) };

/**
 * Run `attempt` (given the number of attempts before it) until it gives a value or throws, or
 * the policy gives up (RetriesExhausted, carrying the last retryable status).
 */
export async function retrying<T>(
  what: string,
  policy: RetryPolicy,
  attempt: (previous: number) => Promise<Attempt<T>>,
  deps: RetryDeps = REAL_TIME,
): Promise<T> {
  const started = deps.nowMs();
  for (let failed = 0; ;) {
    const r = await attempt(failed);
    if ("value" in r) return r.value;
    failed++;
    const pause = nextPauseMs(policy, failed, deps.nowMs() - started);
    if (pause === undefined) throw new RetriesExhausted(what, failed, r.retry, r.status);
    deps.onRetry?.(r.retry, pause);
    await deps.sleep(pause);
  }
}
