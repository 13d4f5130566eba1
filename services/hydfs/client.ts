/**
 * THE client of hydfsd's public API (the routes of http.ts, the shapes of model.ts), over
 * ClusterHttp: ctl, RainStorm's leader and workers, the tests and the benchmarks all call hydfsd
 * through it.
 *
 * Writes are idempotent: each carries this client's id and its own next sequence number, and a
 * retried write reuses its number, so however many attempts (and coordinators) saw it, HyDFS
 * applies it once.
 *
 * Retry rules (RetryRules, named data; DAEMON_RULES by default): an answer that another
 * coordinator or a later attempt may not give is retried: any 5xx (503: a coordinator whose
 * membership view is not current yet, or too few replicas reachable; 502/504; 500), a network
 * error or a timeout. Each such failure moves on to the next coordinator of `bases()` at once;
 * after a round over all of them the client pauses as its RetryPolicy says (shared/retry.ts:
 * backoff doubling, no attempt started after the deadline) and starts a new round. Final
 * answers: success, a 404 where the call reads "no such file" (HyDFS says 404 only when a quorum
 * of replicas says so), and every other 4xx. Error answers are read with readError, so hydfsd's
 * own words reach the caller.
 */
import { type ClusterHttp, type Deadline, readError, retryableStatus, whyFailed } from "../shared/http.ts";
import { type Attempt, DAEMON_RETRY, REAL_TIME, RetriesExhausted, type RetryDeps, type RetryPolicy, retrying } from "../shared/retry.ts";
import type { DeleteAnswer, ListMemIdsAnswer, ListStoreAnswer, LsAnswer, MergeAnswer, StatAnswer, WriteAnswer, WriteKind } from "./model.ts";

/** Deadline of one call by default: a task log append or a sink batch is small, so this bounds a stuck coordinator. */
export const CALL_TIMEOUT_MS = 30_000;

/** How insistent a call is: the policy of its rounds, which answers and failures are worth another attempt. */
export interface RetryRules {
  policy: RetryPolicy;
  /** Whether an answer with this status is worth another attempt (here or at the next coordinator). */
  retryStatus: (status: number) => boolean;
  /**
   * A transport failure (refused, timed out, cut short): retried like a retryable status
   * ("policy"), once at once outside the policy ("once": ctl's upload, whose stall already used
   * its --timeout), or not at all ("never": a call that must not repeat).
   */
  transport: "policy" | "once" | "never";
}

/** A daemon writing to HyDFS (RainStorm's sink and task logs): every 5xx and transport failure, under DAEMON_RETRY. */
export const DAEMON_RULES: RetryRules = { policy: DAEMON_RETRY, retryStatus: retryableStatus, transport: "policy" };

/** One attempt, whatever it answers: tests that look at each answer, and callers with their own fallback. */
export const ONE_ATTEMPT: RetryRules = {
  policy: { deadlineMs: 0, maxAttempts: 1, firstBackoffMs: 0, maxBackoffMs: 0 },
  retryStatus: () => false,
  transport: "never",
};

/**
 * A call that failed. `status`: hydfsd's answer (undefined: no answer: refused, timed out, cut
 * short); `reason`: its message (readError) or why no answer came; `last`: when the rules gave
 * up retrying, the last attempt's failure; `cause`: what an attempt threw, when not a
 * HydfsCallError.
 */
export class HydfsCallError extends Error {
  readonly status?: number;
  readonly reason: string;
  readonly body?: unknown;
  readonly last?: HydfsCallError;

  constructor(message: string, fields: { status?: number; reason: string; body?: unknown; last?: HydfsCallError; cause?: unknown }) {
    super(message, { cause: fields.cause });
    this.status = fields.status;
    this.reason = fields.reason;
    this.body = fields.body;
    this.last = fields.last;
  }
}

/** An error answer as a HydfsCallError: `<what>: <status> <hydfsd's message>`. */
export async function answerError(what: string, res: Response): Promise<HydfsCallError> {
  const e = await readError(res);
  return new HydfsCallError(`${what}: ${e.status} ${e.message}`, { status: e.status, reason: e.message, body: e.body });
}

/** Per call: which coordinator, how insistent, each attempt's deadline, who hears of retries. */
export interface CallOptions {
  /** Only this coordinator (base URL), not the client's list: a node's own view (liststore, getfromreplica). */
  at?: string;
  rules?: RetryRules;
  /** Each attempt's deadline (default: the client's callTimeoutMs). */
  deadline?: () => Deadline;
  /** Told before each further attempt: the failure, and the pause before it (ctl prints `retrying: ...`). */
  onRetry?: (failure: HydfsCallError, pauseMs: number) => void;
}

export interface HydfsClientOptions {
  http: ClusterHttp;
  /** Coordinator base URLs (`http://host:port`), tried in order; any node can coordinate any call. */
  bases: () => string[];
  /** The writer's stable id; its sequence numbers start at 1. Default: a fresh `client-<uuid>`. */
  clientId?: string;
  /** Default DAEMON_RULES. */
  rules?: RetryRules;
  /** Deadline of one attempt. Default CALL_TIMEOUT_MS. */
  callTimeoutMs?: number;
  /** The clock and sleep of the retry loop (virtual in tests). */
  deps?: RetryDeps;
}

const q = encodeURIComponent;

/** The path and query of a create or append under (client, seq). */
export function writePath(kind: WriteKind, name: string, clientId: string, seq: number): string {
  return `/${kind}?name=${q(name)}&client=${q(clientId)}&seq=${seq}`;
}

export class HydfsClient {
  readonly clientId: string;
  private seq = 0;
  private readonly http: ClusterHttp;
  private readonly bases: () => string[];
  private readonly rules: RetryRules;
  private readonly callTimeoutMs: number;
  private readonly deps: RetryDeps;

  constructor(opts: HydfsClientOptions) {
    this.http = opts.http;
    this.bases = opts.bases;
    this.clientId = opts.clientId ?? `client-${crypto.randomUUID()}`;
    this.rules = opts.rules ?? DAEMON_RULES;
    this.callTimeoutMs = opts.callTimeoutMs ?? CALL_TIMEOUT_MS;
    this.deps = opts.deps ?? REAL_TIME;
  }

  /** Reserve this client's next sequence number (a write and all its retries share one). */
  nextSeq(): number {
    return ++this.seq;
  }

  /** One file of this client: reads and writes name it once. */
  file(name: string): HydfsFile {
    return new HydfsFile(this, name);
  }

  // ---- one attempt ---------------------------------------------------------------------------

  /** One request to one hydfsd, as is: no retry, no status check. The building block of every call. */
  request(
    base: string,
    method: string,
    path: string,
    init: { body?: RequestInit["body"]; headers?: RequestInit["headers"]; deadline?: Deadline } = {},
  ): Promise<Response> {
    return this.http.fetch(`${base}${path}`, { method, body: init.body, headers: init.headers, ...(init.deadline ?? { timeoutMs: this.callTimeoutMs }) });
  }

  // ---- the retry loop --------------------------------------------------------------------------

  /**
   * Run `once` against the coordinators in order, round after round as the rules say, until it
   * gives a value or a final error. `once` throws a HydfsCallError for an answer (answerError)
   * or anything for a transport failure; a final error is thrown as is (a transport one as a
   * HydfsCallError naming the coordinator), and giving up throws a HydfsCallError naming the
   * deadline, the attempts and the last failure (its `last`).
   */
  async insist<T>(what: string, once: (base: string) => Promise<T>, opts: CallOptions = {}): Promise<T> {
    const rules = opts.rules ?? this.rules;
    const started = this.deps.nowMs();
    let attempts = 0;
    let last: { failure: HydfsCallError; base: string } | undefined;
    let transportRetried = false;
    const round = async (): Promise<Attempt<T>> => {
      for (const base of opts.at !== undefined ? [opts.at] : this.bases()) {
        // The one "once" retry of a transport failure goes at once, whatever the deadline.
        for (let atOnce = false; ;) {
          // No attempt starts after the deadline, but the first always does.
          if (!atOnce && attempts > 0 && this.deps.nowMs() - started >= rules.policy.deadlineMs) break;
          attempts++;
          try {
            return { value: await once(base) };
          } catch (err) {
            const failure =
              err instanceof HydfsCallError ? err : new HydfsCallError(`${what} via ${base}: ${whyFailed(err)}`, { reason: whyFailed(err), cause: err });
            const transport = failure.status === undefined;
            if (!transport && !rules.retryStatus(failure.status!)) throw failure;
            if (transport && (rules.transport === "never" || (rules.transport === "once" && transportRetried))) throw failure;
            last = { failure, base };
            if (!(transport && rules.transport === "once")) break;
            transportRetried = atOnce = true;
            opts.onRetry?.(failure, 0);
          }
        }
      }
      return { retry: lastWhy(last), status: last?.failure.status };
    };
    try {
      const onRetry = (_why: string, pauseMs: number) => {
        if (last) opts.onRetry?.(last.failure, pauseMs);
      };
      return await retrying(what, rules.policy, round, { ...this.deps, onRetry });
    } catch (err) {
      if (!(err instanceof RetriesExhausted)) throw err;
      const why = lastWhy(last);
      throw new HydfsCallError(`${what}: no coordinator could serve it within ${rules.policy.deadlineMs} ms (${attempts} attempts); last: ${why}`, {
        status: last?.failure.status,
        reason: why,
        body: last?.failure.body,
        last: last?.failure,
      });
    }
  }

  /** A JSON call: its answer, or a HydfsCallError. */
  json<T>(what: string, method: string, path: string, opts: CallOptions = {}): Promise<T> {
    return this.insist(
      what,
      async (base) => {
        const res = await this.request(base, method, path, { deadline: opts.deadline?.() });
        if (!res.ok) throw await answerError(what, res);
        return (await res.json()) as T;
      },
      opts,
    );
  }

  // ---- the API -------------------------------------------------------------------------------

  /**
   * create (409 when the name exists) or append under this client's id and its next sequence
   * number (or the given `seq`), retried with that same number. `body` may be a function giving
   * a fresh body for each attempt (a stream can be sent only once).
   */
  write(
    kind: WriteKind,
    name: string,
    body: RequestInit["body"] | (() => RequestInit["body"]),
    opts: CallOptions & { seq?: number; clientId?: string } = {},
  ): Promise<WriteAnswer> {
    const path = writePath(kind, name, opts.clientId ?? this.clientId, opts.seq ?? this.nextSeq());
    const what = `${kind} of ${name}`;
    return this.insist(
      what,
      async (base) => {
        const res = await this.request(base, "POST", path, { body: typeof body === "function" ? body() : body, deadline: opts.deadline?.() });
        if (!res.ok) throw await answerError(what, res);
        return (await res.json()) as WriteAnswer;
      },
      opts,
    );
  }

  /**
   * The file's bytes as an open answer (the body streams; `x-hydfs-size` and `x-hydfs-ops` say
   * how much), or undefined when it does not exist. Retried until the answer starts.
   */
  open(name: string, opts: CallOptions = {}): Promise<Response | undefined> {
    return this.openAt("/get", `reading ${name}`, name, opts);
  }

  /** The raw copy one replica (`opts.at`) holds, or undefined when it has none. */
  openFromReplica(name: string, opts: CallOptions & { at: string }): Promise<Response | undefined> {
    return this.openAt("/getfromreplica", `getfromreplica ${name}`, name, opts);
  }

  private openAt(route: "/get" | "/getfromreplica", what: string, name: string, opts: CallOptions): Promise<Response | undefined> {
    return this.insist(
      what,
      async (base) => {
        const res = await this.request(base, "GET", `${route}?name=${q(name)}`, { deadline: opts.deadline?.() });
        if (res.status === 404) {
          await res.body?.cancel();
          return undefined;
        }
        if (!res.ok) throw await answerError(what, res);
        return res;
      },
      opts,
    );
  }

  /** The file's bytes as text, or undefined when it does not exist; a body cut short is retried too. */
  readText(name: string, opts: CallOptions = {}): Promise<string | undefined> {
    const what = `reading ${name}`;
    return this.insist(
      what,
      async (base) => {
        const res = await this.request(base, "GET", `/get?name=${q(name)}`, { deadline: opts.deadline?.() });
        if (res.ok) return await res.text();
        if (res.status === 404) return undefined;
        throw await answerError(what, res);
      },
      opts,
    );
  }

  /** Size and operations of a live file, or undefined when it is missing or deleted. */
  async stat(name: string, opts: CallOptions = {}): Promise<StatAnswer | undefined> {
    try {
      return await this.json<StatAnswer>(`stat of ${name}`, "GET", `/stat?name=${q(name)}`, opts);
    } catch (err) {
      if (err instanceof HydfsCallError && err.status === 404) return undefined;
      throw err;
    }
  }

  ls(name: string, opts: CallOptions = {}): Promise<LsAnswer> {
    return this.json(`ls ${name}`, "GET", `/ls?name=${q(name)}`, opts);
  }

  liststore(opts: CallOptions = {}): Promise<ListStoreAnswer> {
    return this.json("liststore", "GET", "/liststore", opts);
  }

  listMemIds(opts: CallOptions = {}): Promise<ListMemIdsAnswer> {
    return this.json("list_mem_ids", "GET", "/list_mem_ids", opts);
  }

  merge(name: string, opts: CallOptions = {}): Promise<MergeAnswer> {
    return this.json(`merge ${name}`, "POST", `/merge?name=${q(name)}`, opts);
  }

  /** Delete everywhere (404: no such file). */
  delete(name: string, opts: CallOptions = {}): Promise<DeleteAnswer> {
    return this.json(`delete ${name}`, "POST", `/delete?name=${q(name)}`, opts);
  }

  /**
   * The node (`opts.at`) appends a file of its local-files directory under a fresh sequence
   * number of its own: not safe to repeat, so pass rules that retry no answer that may have
   * been applied.
   */
  multiappendLocal(name: string, local: string, opts: CallOptions): Promise<WriteAnswer> {
    return this.json(`multiappend ${name}`, "POST", `/multiappend_local?name=${q(name)}&local=${q(local)}`, opts);
  }

  /** The node's metrics in Prometheus' text format. */
  metrics(opts: CallOptions = {}): Promise<string> {
    return this.insist(
      "metrics",
      async (base) => {
        const res = await this.request(base, "GET", "/metrics", { deadline: opts.deadline?.() });
        if (!res.ok) throw await answerError("metrics", res);
        return await res.text();
      },
      opts,
    );
  }
}

/** One file of one client, as RainStorm's sink and task logs use it: read it, create it, append to it. */
export class HydfsFile {
  constructor(
    readonly client: HydfsClient,
    readonly name: string,
  ) {}

  /** The file's bytes as text, or undefined when it does not exist. */
  read(): Promise<string | undefined> {
    return this.client.readText(this.name);
  }

  /** create (409 when the name exists) or append, retried with the same sequence number. */
  async write(kind: WriteKind, body: string): Promise<void> {
    await this.client.write(kind, this.name, body);
  }
}

/** The last failure as the final error says it: `<coordinator>: <status> <reason>`. */
function lastWhy(last: { failure: HydfsCallError; base: string } | undefined): string {
  if (!last) return "no HyDFS coordinator known";
  return `${last.base}: ${last.failure.status !== undefined ? `${last.failure.status} ` : ""}${last.failure.reason}`;
}
