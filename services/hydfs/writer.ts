/**
 * One writer of one HyDFS file, for daemons that write to HyDFS (RainStorm's sink and task
 * logs): a client id with its own sequence numbers, so a create or append retried after a
 * timeout reuses its number and HyDFS applies it once, and a list of coordinators to try in
 * order (the node's own hydfsd first; any other node can coordinate the same call).
 *
 * Retry policy (reads and writes alike): an answer that another coordinator or a later attempt
 * may not give is retried: any 5xx (503: a coordinator whose membership view is not current
 * yet, or too few replicas reachable; 502/504; 500), a network error or a timeout. Each such
 * failure moves on to the next coordinator of `bases()`; after a round over all of them the
 * writer pauses (backoff from RETRY_FIRST_BACKOFF_MS, doubling up to RETRY_MAX_BACKOFF_MS) and
 * starts a new round, until WRITE_RETRY_DEADLINE_MS has passed since the first attempt (no
 * attempt starts after it). A write keeps its sequence number throughout, so however many
 * coordinators saw it, HyDFS applies it once. Final answers: success, a 404 on read (no such
 * file: HyDFS says 404 only when a quorum of replicas says so), 409 and every other 4xx.
 */
import { type ClusterHttp, whyFailed } from "../shared/http.ts";

/** One read or write call; a task log append or a sink batch is small, so this bounds a stuck coordinator. */
const WRITER_TIMEOUT_MS = 30_000;
/**
 * How long one read or write keeps retrying retryable failures before it fails. 30 s outlasts
 * a restarted node's join (an introducer waits up to rejoin_wait_ms, 5 s by default) and the
 * detection of a dead coordinator; longer keeps a task (and the batches behind it) waiting that
 * much longer before its job hears of the error.
 */
export const WRITE_RETRY_DEADLINE_MS = 30_000;
/** First pause after a round of failed attempts over every coordinator; doubles each round. */
export const RETRY_FIRST_BACKOFF_MS = 100;
/** Longest pause between rounds: often enough to catch a coordinator that just became ready. */
export const RETRY_MAX_BACKOFF_MS = 2000;

export class HydfsWriteError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Whether an HTTP status is worth another attempt (through this or another coordinator). */
export function retryableStatus(status: number): boolean {
  return status >= 500 && status <= 599;
}

export interface HydfsWriterOptions {
  /** Give up retrying after this long (ms since the first attempt). Default WRITE_RETRY_DEADLINE_MS. */
  retryDeadlineMs?: number;
  /** First pause between rounds. Default RETRY_FIRST_BACKOFF_MS. */
  firstBackoffMs?: number;
  /** Longest pause between rounds. Default RETRY_MAX_BACKOFF_MS. */
  maxBackoffMs?: number;
  /** Timeout of one call. Default WRITER_TIMEOUT_MS. */
  callTimeoutMs?: number;
}

/** One attempt's outcome: the value, or a retryable failure (`why`, and the HTTP status if any). */
type Attempt<T> = { value: T } | { retry: string; status?: number };

export class HydfsWriter {
  private seq = 0;
  private readonly retryDeadlineMs: number;
  private readonly firstBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly callTimeoutMs: number;

  constructor(
    /** Coordinator base URLs, tried in order when one is unreachable or cannot serve. */
    private readonly bases: () => string[],
    private readonly http: ClusterHttp,
    readonly name: string,
    private readonly clientId: string,
    opts: HydfsWriterOptions = {},
  ) {
    this.retryDeadlineMs = opts.retryDeadlineMs ?? WRITE_RETRY_DEADLINE_MS;
    this.firstBackoffMs = opts.firstBackoffMs ?? RETRY_FIRST_BACKOFF_MS;
    this.maxBackoffMs = opts.maxBackoffMs ?? RETRY_MAX_BACKOFF_MS;
    this.callTimeoutMs = opts.callTimeoutMs ?? WRITER_TIMEOUT_MS;
  }

  /**
   * Run `attempt` against the coordinators in order, round after round with backoff, until one
   * gives a value or a final error (a HydfsWriteError it throws), or the deadline passes. Any
   * other error an attempt throws (network, timeout, a body cut short) is retryable.
   */
  private async retrying<T>(what: string, attempt: (base: string) => Promise<Attempt<T>>): Promise<T> {
    const started = performance.now();
    const deadline = started + this.retryDeadlineMs;
    let backoffMs = this.firstBackoffMs;
    let attempts = 0;
    let last = "no HyDFS coordinator known";
    let lastStatus: number | undefined;
    for (;;) {
      for (const base of this.bases()) {
        if (attempts > 0 && performance.now() >= deadline) break;
        attempts++;
        try {
          const r = await attempt(base);
          if ("value" in r) return r.value;
          last = `${base}: ${r.retry}`;
          lastStatus = r.status;
        } catch (err) {
          if (err instanceof HydfsWriteError) throw err;
          last = `${base}: ${whyFailed(err)}`;
          lastStatus = undefined;
        }
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new HydfsWriteError(`${what}: no coordinator could serve it within ${this.retryDeadlineMs} ms (${attempts} attempts); last: ${last}`, lastStatus);
      }
      await Bun.sleep(Math.min(backoffMs, left));
      backoffMs = Math.min(backoffMs * 2, this.maxBackoffMs);
    }
  }

  /** The file's bytes as text, or undefined when it does not exist. */
  read(): Promise<string | undefined> {
    const what = `reading ${this.name}`;
    return this.retrying(what, async (base): Promise<Attempt<string | undefined>> => {
      const res = await this.http.fetch(`${base}/get?name=${encodeURIComponent(this.name)}`, { timeoutMs: this.callTimeoutMs });
      if (res.ok) return { value: await res.text() };
      if (res.status === 404) return { value: undefined };
      const text = await res.text();
      if (retryableStatus(res.status)) return { retry: `${res.status} ${text}`, status: res.status };
      throw new HydfsWriteError(`${what}: ${res.status} ${text}`, res.status);
    });
  }

  /** create (409 when the name exists) or append, retried with the same sequence number. */
  write(kind: "create" | "append", body: string): Promise<void> {
    const seq = ++this.seq;
    const path = `/${kind}?name=${encodeURIComponent(this.name)}&client=${encodeURIComponent(this.clientId)}&seq=${seq}`;
    const what = `${kind} of ${this.name}`;
    return this.retrying(what, async (base): Promise<Attempt<void>> => {
      const res = await this.http.fetch(`${base}${path}`, { method: "POST", body, timeoutMs: this.callTimeoutMs });
      const text = await res.text();
      if (res.ok) return { value: undefined };
      if (retryableStatus(res.status)) return { retry: `${res.status} ${text}`, status: res.status };
      throw new HydfsWriteError(`${what}: ${res.status} ${text}`, res.status);
    });
  }
}
