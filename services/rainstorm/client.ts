/**
 * THE client of rainstormd's HTTP API (model.ts has every shape): the leader's job API (submit a
 * job and stream its events, list, watch and kill jobs, list_tasks, kill_task, task deaths, output notices) and the
 * worker API the leader and the workers call (start, routes, stop, retire, kill, task lists, flushing output notices,
 * batches). ctl, the
 * daemons, the tests and the benchmarks all call through it, over ClusterHttp (signing, a
 * deadline on every call).
 *
 * Addresses are "host:port" of a rainstormd. Errors: a network failure is ClusterHttp's
 * HttpCallError (`why` says what happened), a non-2xx answer a RainstormHttpError carrying the
 * daemon's own words (readError). A call is retried only when it is safe to repeat and the
 * caller asks for it with a RetryPolicy (services/shared/retry.ts): then a 5xx or a network
 * failure is tried again, a 4xx never (the caller's mistake). Submitting or killing a job,
 * starting, retiring or killing a task are never retried here: a repeat would do it twice.
 */
import { type ClusterHttp, HttpCallError, readError, retryableStatus } from "../shared/http.ts";
import { readLines } from "../shared/lines.ts";
import { encodeBatch } from "./wire_checks.ts";
import { REAL_TIME, type RetryDeps, type RetryPolicy, retrying } from "../shared/retry.ts";
import type {
  Adopt,
  Adopted,
  SourceReport,
  SourceStart,
  Batch,
  JobEvent,
  JobStopped,
  JobSubmission,
  JobSummary,
  KillJobAnswer,
  KillJobRequest,
  KillPid,
  KillTaskAnswer,
  KillTaskRequest,
  LeaderInfo,
  Ok,
  OutputsFlushed,
  OutputsNotice,
  PidKilled,
  RetireTask,
  Routes,
  RoutesUpdate,
  StopJob,
  TaskDeath,
  TaskList,
  ListedTask,
  TaskRetired,
  TaskStart,
  TaskStarted,
  WorkerTask,
} from "./model.ts";

/** The header of POST /jobs' answer that names the job (http.ts sets it). */
export const JOB_ID_HEADER = "x-job-id";

/** Whether a job's stream ends after this event: done, failed or cancelled. */
export function isFinalEvent(ev: JobEvent): boolean {
  return ev.event === "done" || ev.event === "failed" || ev.event === "cancelled";
}

/** A leader's term as a body field: present only when the caller gives one. */
const termOf = (opts: { term?: number }) => (opts.term === undefined ? {} : { term: opts.term });

/** The content type of a batch (msgpack, model.ts Batch). */
const BATCH_CONTENT_TYPE = "application/msgpack";

/** A call the caller gives no deadline: the leader's calls to workers have always had 5 s; a live worker answers in milliseconds. */
export const CALL_TIMEOUT_MS = 5000;

/** A rainstormd's non-2xx answer: its status, its own words (`error`) and its body. */
export class RainstormHttpError extends Error {
  constructor(
    /** "host:port" of the daemon. */
    readonly addr: string,
    readonly path: string,
    readonly status: number,
    /** The daemon's message: the JSON body's `error`, else its text (readError). */
    readonly error: string,
    readonly body: unknown,
  ) {
    super(`${addr}${path}: ${status} ${error}`);
  }
}

/** How long one call may take, and whether (and how) to repeat it. */
export interface CallOptions {
  /** Per attempt (default CALL_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Repeat a 5xx or a network failure under this policy (only where the call is safe to repeat). */
  retry?: RetryPolicy;
}

/**
 * How long POST /jobs may take. `acceptWithinMs`: the leader must accept or refuse within it,
 * then the events stream as long as the job runs (ctl). `totalMs`: the whole call, stream
 * included, ends after it (tests: a job that never ends fails them).
 */
export type SubmitDeadline = { acceptWithinMs: number; totalMs?: undefined } | { totalMs: number; acceptWithinMs?: undefined };

/** An accepted (or watched) job: its id (header x-job-id, submissions only) and its events, in order, until it ends. */
export interface JobStream {
  jobId: string | null;
  events: AsyncGenerator<JobEvent>;
}

const JSON_HEADERS = { "content-type": "application/json" };

export class RainstormClient {
  constructor(
    private readonly http: ClusterHttp,
    /** The clock and sleep of retries (tests pass virtual ones). */
    private readonly time: RetryDeps = REAL_TIME,
  ) {}

  // ---- leader --------------------------------------------------------------------------------------

  /** POST /jobs: submit a job (never retried: a repeat would run it twice). */
  async submitJob(leader: string, args: string[], deadline: SubmitDeadline, job?: string): Promise<JobStream> {
    const init = { method: "POST", headers: JSON_HEADERS, body: JSON.stringify((job === undefined ? { args } : { args, job }) satisfies JobSubmission) };
    return this.openStream(leader, "/jobs", init, deadline);
  }

  /**
   * GET /jobs/:job/events: watch a job from now on: `watching` (where it is), its recent events,
   * then the live ones until it ends (a 404 when the leader does not know the job).
   */
  watchJob(leader: string, job: string, deadline: SubmitDeadline): Promise<JobStream> {
    return this.openStream(leader, `/jobs/${encodeURIComponent(job)}/events`, { method: "GET" }, deadline);
  }

  /** POST /kill_job: cancel a running job; resolves once its tasks are stopped (404 unknown, 409 already ended). Not retried. */
  killJob(leader: string, job: string, opts: Omit<CallOptions, "retry"> = {}): Promise<KillJobAnswer> {
    return this.call(leader, "POST", "/kill_job", { job } satisfies KillJobRequest, opts);
  }

  /** A call answered with an NDJSON stream of job events, under `deadline` (see SubmitDeadline). */
  private async openStream(addr: string, path: string, init: Omit<RequestInit, "signal">, deadline: SubmitDeadline): Promise<JobStream> {
    const url = `http://${addr}${path}`;
    let res: Response;
    if (deadline.totalMs !== undefined) {
      res = await this.http.fetch(url, { ...init, timeoutMs: deadline.totalMs });
    } else {
      // Only the answer's start is due within the deadline: it is lifted once the stream begins.
      const accepted = new AbortController();
      const timer = setTimeout(() => accepted.abort(), deadline.acceptWithinMs);
      try {
        res = await this.http.fetch(url, { ...init, signal: accepted.signal });
      } catch (err) {
        if (accepted.signal.aborted) throw new HttpCallError(url, `no answer within ${deadline.acceptWithinMs} ms`);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    }
    if (!res.ok) throw await httpError(addr, path, res);
    return { jobId: res.headers.get(JOB_ID_HEADER), events: jobEvents(res.body!) };
  }

  /** GET /tasks: every task of the running jobs. */
  async listTasks(leader: string, opts: CallOptions = {}): Promise<ListedTask[]> {
    return (await this.call<TaskList>(leader, "GET", "/tasks", undefined, opts)).tasks;
  }

  /** GET /jobs: every job the leader knows. */
  jobs(leader: string, opts: CallOptions = {}): Promise<JobSummary[]> {
    return this.call(leader, "GET", "/jobs", undefined, opts);
  }

  /** POST /kill_task: kill the operator `pid` of a task on `node` (a host); the leader restarts the task. */
  killTask(leader: string, node: string, pid: number, opts: Omit<CallOptions, "retry"> = {}): Promise<KillTaskAnswer> {
    return this.call(leader, "POST", "/kill_task", { node, pid } satisfies KillTaskRequest, opts);
  }

  /** POST /leader/task_died: safe to repeat (the leader ignores a report about a pid it already replaced). */
  async reportTaskDied(leader: string, death: TaskDeath, opts: CallOptions = {}): Promise<void> {
    await this.call<Ok>(leader, "POST", "/leader/task_died", death, opts);
  }

  /**
   * POST /outputs: a last-stage task's output notice (safe to repeat: the leader drops a seq it
   * has had). Resolves whether the job's next notices should carry their lines (an answer without the field: yes). */
  async sendOutputs(leader: string, notice: OutputsNotice, opts: CallOptions = {}): Promise<boolean> {
    const answer = await this.call<{ ok: true; lines?: boolean }>(leader, "POST", "/outputs", notice, opts);
    return answer?.lines !== false;
  }

  // ---- worker --------------------------------------------------------------------------------------

  /** POST /worker/start: start (or restart) a task (never retried: a repeat restarts it). */
  startTask(worker: string, start: TaskStart, opts: Omit<CallOptions, "retry"> = {}): Promise<TaskStarted> {
    return this.call(worker, "POST", "/worker/start", start, opts);
  }

  /** POST /worker/routes: safe to repeat (a worker keeps the newest version). */
  async setRoutes(worker: string, job: string, routes: Routes, opts: CallOptions = {}): Promise<void> {
    await this.call<Ok>(worker, "POST", "/worker/routes", { job, routes } satisfies RoutesUpdate, opts);
  }

  /** POST /worker/stop_job: stop the job's tasks there; resolves with how many stopped. Safe to repeat. */
  async stopJob(worker: string, job: string, endOfStream: boolean, opts: CallOptions & { term?: number } = {}): Promise<number> {
    const body = { job, end_of_stream: endOfStream, ...termOf(opts) } satisfies StopJob;
    return (await this.call<JobStopped>(worker, "POST", "/worker/stop_job", body, opts)).stopped;
  }

  /**
   * POST /worker/retire: stop a task autoscaling removed, once it is idle (a 404 when it is not
   * there). The worker waits up to 30 s for that: give a timeoutMs above it.
   */
  retireTask(worker: string, job: string, stage: number, index: number, opts: Omit<CallOptions, "retry"> & { term?: number } = {}): Promise<TaskRetired> {
    return this.call(worker, "POST", "/worker/retire", { job, stage, index, ...termOf(opts) } satisfies RetireTask, opts);
  }

  /** POST /worker/kill: kill one operator process there, by pid. */
  killPid(worker: string, pid: number, opts: Omit<CallOptions, "retry"> & { term?: number } = {}): Promise<PidKilled> {
    return this.call(worker, "POST", "/worker/kill", { pid, ...termOf(opts) } satisfies KillPid, opts);
  }

  /** POST /worker/adopt: a new leader's term (a worker that has seen a higher one refuses, 409); answers the tasks and sources running there. */
  adopt(worker: string, term: number, opts: CallOptions = {}): Promise<Adopted> {
    return this.call(worker, "POST", "/worker/adopt", { term } satisfies Adopt, opts);
  }

  /** POST /worker/source: run a job's source on that worker (a repeat replaces the running one). */
  async startSource(worker: string, start: SourceStart, opts: Omit<CallOptions, "retry"> = {}): Promise<void> {
    await this.call<Ok>(worker, "POST", "/worker/source", start, opts);
  }

  /** POST /leader/source: a source's progress or end, to the leader. */
  async reportSource(leader: string, report: SourceReport, opts: Omit<CallOptions, "retry"> = {}): Promise<void> {
    await this.call<Ok>(leader, "POST", "/leader/source", report, opts);
  }

  /** GET /leader: the leader this node's view elects, and the highest term it knows. */
  leader(node: string, opts: CallOptions = {}): Promise<LeaderInfo> {
    return this.call(node, "GET", "/leader", undefined, opts);
  }

  /** POST /worker/flush_outputs: resolves once the worker has told the leader every output of `job` (flushed false: it gave up waiting). */
  async flushOutputs(worker: string, job: string, opts: CallOptions = {}): Promise<boolean> {
    return (await this.call<OutputsFlushed>(worker, "POST", "/worker/flush_outputs", { job }, opts)).flushed;
  }

  /** GET /worker/tasks: the tasks running there, with their counters. */
  workerTasks(worker: string, opts: CallOptions = {}): Promise<WorkerTask[]> {
    return this.call(worker, "GET", "/worker/tasks", undefined, opts);
  }

  /**
   * POST one msgpack batch to a task's worker (/data); resolves once it is acknowledged. One
   * attempt: the sender retries, re-reading the routes between attempts.
   */
  async sendBatch(target: string, batch: Batch, timeoutMs: number): Promise<void> {
    const path = "/data";
    const res = await this.http.fetch(`http://${target}${path}`, {
      method: "POST",
      headers: { "content-type": BATCH_CONTENT_TYPE },
      body: encodeBatch(batch),
      timeoutMs,
    });
    if (!res.ok) throw await httpError(target, path, res);
    await res.arrayBuffer();
  }

  // ---- one JSON call -------------------------------------------------------------------------------

  /** One JSON call; with `opts.retry`, repeated on 5xx and network failures (RetriesExhausted when they last). */
  private async call<T>(addr: string, method: "GET" | "POST", path: string, body: unknown, opts: CallOptions): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? CALL_TIMEOUT_MS;
    const once = async (): Promise<T> => {
      const res = await this.http.fetch(
        `http://${addr}${path}`,
        body === undefined ? { method, timeoutMs } : { method, headers: JSON_HEADERS, body: JSON.stringify(body), timeoutMs },
      );
      if (!res.ok) throw await httpError(addr, path, res);
      return (await res.json()) as T;
    };
    if (!opts.retry) return once();
    return retrying<T>(
      `${method} ${addr}${path}`,
      opts.retry,
      async () => {
        try {
          return { value: await once() };
        } catch (err) {
          if (err instanceof HttpCallError) return { retry: err.why };
          if (err instanceof RainstormHttpError && retryableStatus(err.status)) return { retry: `${err.status} ${err.error}`, status: err.status };
          throw err;
        }
      },
      this.time,
    );
  }
}

/** A non-2xx answer as a RainstormHttpError, in the daemon's own words. */
async function httpError(addr: string, path: string, res: Response): Promise<RainstormHttpError> {
  const { status, message, body } = await readError(res);
  return new RainstormHttpError(addr, path, status, message, body);
}

/** The events of POST /jobs' NDJSON answer, one per line, in order. */
async function* jobEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<JobEvent> {
  for await (const line of readLines(body)) {
    if (line) yield JSON.parse(line) as JobEvent;
  }
}
