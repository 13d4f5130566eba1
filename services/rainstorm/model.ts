/**
 * Every wire shape of rainstormd's HTTP API, once: an Elysia `t` schema for each JSON body the
 * routes take (http.ts validates with them) and the static types of what goes over the wire both
 * ways (the leader, the workers and client.ts use them). A JSON answer that only a daemon makes
 * is declared as a schema too, so its type and its documentation stay in one place; nothing
 * validates answers at run time: client.ts imports the types only, so ctl never loads Elysia
 * (the few wire facts that are values, such as the x-job-id header, are client.ts's).
 *
 * The data plane is msgpack, not JSON: `Batch` below is its shape, and decodeBatch (worker.ts)
 * checks every field of it, with limits, before anything uses a batch.
 *
 * Leader routes: POST /jobs (JobSubmission -> an NDJSON stream of JobEvent, the job id in header
 * x-job-id), GET /jobs (JobSummary[]), POST /kill_job (KillJobRequest -> KillJobAnswer), GET
 * /jobs/:job/events (an NDJSON stream of JobEvent: `watching`, the recent past, then live, until
 * the job ends), GET /tasks (TaskList), POST /kill_task (KillTaskRequest -> KillTaskAnswer),
 * POST /leader/task_died (TaskDeath), POST /outputs (OutputsNotice). Worker routes: POST
 * /worker/start (TaskStart -> TaskStarted), /worker/routes (RoutesUpdate), /worker/stop_job
 * (StopJob -> JobStopped), /worker/retire (RetireTask -> TaskRetired), /worker/kill (KillPid ->
 * PidKilled), /worker/flush_outputs (FlushOutputs -> OutputsFlushed), GET /worker/tasks
 * (WorkerTask[]), POST /data (Batch). Errors: `{"error": "..."}` (ErrorBody,
 * services/shared/http.ts).
 */
import { t } from "elysia";

/** Most words of one job (POST /jobs): far more than any pipeline of MAX_STAGES stages needs. */
export const MAX_JOB_ARGS = 200;

// ---- shared pieces ---------------------------------------------------------------------------------

/**
 * Where a job's tuples go: `stages[s][i]` is the "host:port" of the worker running task i of
 * stage s (the last stage's tasks append their results to dest themselves). `version` increases
 * with every change; a worker ignores a table older than the one it has. The routes' form
 * (host:port, stage and task counts) is checked by the worker itself (checkRoutes).
 */
export const RoutesSchema = t.Object({
  version: t.Integer(),
  /** The term of the leader that made them (election.ts): a worker refuses routes of a lower term than it has seen. */
  term: t.Optional(t.Integer({ minimum: 0 })),
  stages: t.Array(t.Array(t.String())),
});
export type Routes = typeof RoutesSchema.static;

/** The `{"ok": true}` answer of a route that has nothing else to say. */
export interface Ok {
  ok: true;
}

// ---- leader: jobs ----------------------------------------------------------------------------------

/** POST /jobs: the words after `rainstorm` on ctl's command line (plan.ts parseJobArgs reads them). */
/**
 * POST /jobs. `job`, optional: the id the submitter chose for the job (JOB_ID_PATTERN, refused with
 * 409 when in use). Knowing it before any answer, a submitter whose leader dies before it answered
 * can ask the next leader for the job: it runs there if it was journaled, and is unknown if not.
 */
export const JobSubmissionSchema = t.Object({ args: t.Array(t.String(), { maxItems: MAX_JOB_ARGS }), job: t.Optional(t.String({ maxLength: 64 })) });
export type JobSubmission = typeof JobSubmissionSchema.static;

/** Where a task was placed, in the `accepted` event. */
const PlacedTaskSchema = t.Object({ stage: t.Integer(), index: t.Integer(), node: t.String(), pid: t.Integer() });

/** A job's status: running until done (every result in dest), failed, or cancelled (kill_job). */
export const JobStatusSchema = t.Union([t.Literal("running"), t.Literal("done"), t.Literal("failed"), t.Literal("cancelled")]);

/** GET /jobs: one entry per job this leader has run or runs (finished ones stay listed until the leader forgets them). */
export const JobSummarySchema = t.Object({
  job: t.String(),
  status: JobStatusSchema,
  /** Each stage's operator and its arguments, "grep-wrapper SIGN_ 6". */
  stages: t.Array(t.String()),
  /** Tasks per stage now (autoscaling changes them). */
  tasks: t.Array(t.Integer()),
  src: t.String(),
  dest: t.String(),
  tuples_read: t.Integer(),
  tuples_out: t.Integer(),
  /** Input tuples per second from its start to its end (or to now while it runs). */
  tuples_per_s: t.Number(),
});
export type JobSummary = typeof JobSummarySchema.static;

/**
 * One line of POST /jobs' and GET /jobs/:job/events' answers (application/x-ndjson): the job's
 * events in order. `accepted` comes first; `output` carries result lines `key\tvalue` as they
 * reach dest (`from` and `seq`: which last-stage task appended them, and its notice number,
 * OutputsNotice); the stream ends after `done`, `failed` or `cancelled` (kill_job: dest keeps what
 * was written). A watch (GET /jobs/:job/events) begins with `watching` (where the job is, and how
 * many recent events follow before the live ones); `dropped` tells a watcher that read too
 * slowly how many events it missed at that point.
 */
export const JobEventSchema = t.Union([
  t.Object({ event: t.Literal("accepted"), job: t.String(), tasks: t.Array(PlacedTaskSchema) }),
  t.Object({ event: t.Literal("output"), lines: t.Array(t.String()), from: t.Optional(t.String()), seq: t.Optional(t.Integer()) }),
  t.Object({ event: t.Literal("task_restarted"), stage: t.Integer(), index: t.Integer(), node: t.String(), pid: t.Integer(), reason: t.String() }),
  t.Object({ event: t.Literal("scaled"), stage: t.Integer(), from: t.Integer(), to: t.Integer(), avg_rate_per_task: t.Number(), reason: t.String() }),
  t.Object({
    event: t.Literal("done"),
    job: t.String(),
    tuples_read: t.Integer(),
    tuples_out: t.Integer(),
    duration_ms: t.Integer(),
    tuples_per_s: t.Number(),
    dest: t.String(),
  }),
  t.Object({ event: t.Literal("failed"), job: t.String(), error: t.String() }),
  t.Object({ event: t.Literal("cancelled"), job: t.String(), tuples_read: t.Integer(), tuples_out: t.Integer(), dest: t.String() }),
  t.Object({ event: t.Literal("watching"), summary: JobSummarySchema, replayed: t.Integer() }),
  t.Object({ event: t.Literal("dropped"), events: t.Integer() }),
]);
export type JobEvent = typeof JobEventSchema.static;

/** POST /kill_job: cancel a running job. */
export const KillJobRequestSchema = t.Object({ job: t.String({ minLength: 1 }) });
export type KillJobRequest = typeof KillJobRequestSchema.static;

/** POST /kill_job's answer, once every task of the job is stopped: what it had done; dest keeps what was written. */
export const KillJobAnswerSchema = t.Object({
  job: t.String(),
  status: t.Literal("cancelled"),
  tuples_read: t.Integer(),
  tuples_out: t.Integer(),
  dest: t.String(),
});
export type KillJobAnswer = typeof KillJobAnswerSchema.static;

// ---- leader: list_tasks, kill_task, task deaths ---------------------------------------------------

/** One task of a running job in GET /tasks; `rate` is its input tuples/s, null when its worker did not say. */
export const ListedTaskSchema = t.Object({
  job: t.String(),
  stage: t.Integer(),
  task: t.Integer(),
  node: t.String(),
  pid: t.Integer(),
  op: t.String(),
  args: t.Array(t.String()),
  rate: t.Union([t.Number(), t.Null()]),
  restarts: t.Integer(),
  /** Why the task last restarted (as in its task_restarted event); absent until it has. */
  last_restart_reason: t.Optional(t.String()),
  /** The task's stderr log on its worker. */
  log: t.String(),
});
export type ListedTask = typeof ListedTaskSchema.static;

/** GET /tasks. */
export const TaskListSchema = t.Object({ tasks: t.Array(ListedTaskSchema) });
export type TaskList = typeof TaskListSchema.static;

/** POST /kill_task: the node (host) a task runs on and its operator's pid. */
export const KillTaskRequestSchema = t.Object({ node: t.String(), pid: t.Integer({ minimum: 1 }) });
export type KillTaskRequest = typeof KillTaskRequestSchema.static;

/** POST /kill_task's answer: the task whose operator was killed (the leader restarts it). */
export const KillTaskAnswerSchema = t.Object({ job: t.String(), stage: t.Integer(), task: t.Integer(), node: t.String(), pid: t.Integer() });
export type KillTaskAnswer = typeof KillTaskAnswerSchema.static;

/** POST /leader/task_died: a worker's report that a task's operator died unasked (the leader restarts it). */
export const TaskDeathSchema = t.Object({ job: t.String(), stage: t.Integer(), index: t.Integer(), pid: t.Integer(), reason: t.String() });
export type TaskDeath = typeof TaskDeathSchema.static;

/** Most result lines in one output notice (a task's notice holds one dest append's lines). */
export const MAX_NOTICE_LINES = 1_000_000;

/**
 * POST /outputs: a last-stage task appended `lines` (results `key\tvalue`, without "\n") to
 * dest. `from` names the appender: `s<stage>t<index>` under exactly-once (the same across the
 * task's restarts), `s<stage>t<index>-<pid>` under at-least-once (one per incarnation). `seq`
 * grows with each notice of one `from` (exactly-once: the task log's record number), and `total`
 * is every line that `from` has put in dest so far; `lines` are its lines total-lines.length+1 ..
 * total (a worker may send a task's consecutive notices as one). The leader counts the latest
 * `total` per `from`, streams the lines it has not had, and ignores a `seq` it has had (a
 * resend). `lines` may be empty: the notice then carries only the count (a worker's notice queue
 * was full).
 */
export const OutputsNoticeSchema = t.Object({
  job: t.String(),
  stage: t.Integer({ minimum: 0 }),
  index: t.Integer({ minimum: 0 }),
  from: t.String(),
  seq: t.Integer({ minimum: 1 }),
  total: t.Integer({ minimum: 0 }),
  lines: t.Array(t.String(), { maxItems: MAX_NOTICE_LINES }),
});
export type OutputsNotice = typeof OutputsNoticeSchema.static;

// ---- worker ----------------------------------------------------------------------------------------

/**
 * POST /worker/start: start (or restart) task `index` of `stage` with operator `op args...`.
 * `exactlyOnce`: log every batch to HyDFS before forwarding and drop repeated inputs. The worker
 * checks every field again itself (checkTaskStart, operatorFile) before it makes a path or
 * starts a process.
 */
export const TaskStartSchema = t.Object({
  job: t.String(),
  stage: t.Integer({ minimum: 0 }),
  index: t.Integer({ minimum: 0 }),
  op: t.String(),
  args: t.Array(t.String()),
  routes: RoutesSchema,
  exactlyOnce: t.Optional(t.Boolean()),
  /** The job's dest: a task of the last stage appends its results there (required for it, absent for the others). */
  dest: t.Optional(t.String()),
});
export type TaskStart = typeof TaskStartSchema.static;

/** POST /worker/start's answer: the operator's pid and the task's stderr log. */
export const TaskStartedSchema = t.Object({ pid: t.Integer(), logPath: t.String() });
export type TaskStarted = typeof TaskStartedSchema.static;

/** POST /worker/routes: a job's new routes. */
export const RoutesUpdateSchema = t.Object({ job: t.String(), routes: RoutesSchema });
export type RoutesUpdate = typeof RoutesUpdateSchema.static;

/** POST /worker/stop_job: stop the job's tasks here; `end_of_stream` lets each operator finish first. */
export const StopJobSchema = t.Object({
  job: t.String(),
  end_of_stream: t.Optional(t.Boolean()),
  /** The sending leader's term (election.ts): a worker that has seen a higher one refuses the call (409). */
  term: t.Optional(t.Integer({ minimum: 0 })),
});
export type StopJob = typeof StopJobSchema.static;

/** POST /worker/stop_job's answer: how many tasks stopped. */
export const JobStoppedSchema = t.Object({ stopped: t.Integer() });
export type JobStopped = typeof JobStoppedSchema.static;

/** POST /worker/retire: autoscaling removed this task; stop it once idle. */
export const RetireTaskSchema = t.Object({
  job: t.String(),
  stage: t.Integer({ minimum: 0 }),
  index: t.Integer({ minimum: 0 }),
  /** The sending leader's term (election.ts): a worker that has seen a higher one refuses the call (409). */
  term: t.Optional(t.Integer({ minimum: 0 })),
});
export type RetireTask = typeof RetireTaskSchema.static;

/** POST /worker/retire's answer: the task's input count when it stopped. */
export const TaskRetiredSchema = t.Object({ retired: t.Literal(true), inputs: t.Integer() });
export type TaskRetired = typeof TaskRetiredSchema.static;

/** POST /worker/kill: kill one operator process of this worker. */
export const KillPidSchema = t.Object({
  pid: t.Integer({ minimum: 1 }),
  /** The sending leader's term (election.ts): a worker that has seen a higher one refuses the call (409). */
  term: t.Optional(t.Integer({ minimum: 0 })),
});

/**
 * GET /leader on any rainstormd: the leader its membership view elects ("host:port", null while
 * none), the highest term it knows, and whether that is this node.
 */
export const LeaderInfoSchema = t.Object({ leader: t.Union([t.String(), t.Null()]), term: t.Integer(), self: t.Boolean() });
export type LeaderInfo = typeof LeaderInfoSchema.static;

export type KillPid = typeof KillPidSchema.static;

/** POST /worker/adopt: a new leader announces its term and asks for the tasks this worker runs. */
export const AdoptSchema = t.Object({ term: t.Integer({ minimum: 1 }) });
export type Adopt = typeof AdoptSchema.static;

/** POST /worker/adopt's answer: the tasks running there, and the sources (each job's, with where it is). */
export interface Adopted {
  tasks: WorkerTask[];
  sources: { job: string; read: number; acked: number }[];
}

/**
 * POST /worker/source: run a job's source on this worker (source_task.ts): read `src` from HyDFS,
 * skip the lines up to `fromLine` (acknowledged before: a restart or a takeover), send the rest to
 * stage 0 along `routes` (whose term fences a stale leader), paced by `inputRate` (0: as fast as
 * the pipeline takes them) or `rateSchedule`.
 */
export const SourceStartSchema = t.Object({
  job: t.String(),
  src: t.String({ minLength: 1, maxLength: 4096 }),
  fromLine: t.Integer({ minimum: 0 }),
  inputRate: t.Number({ minimum: 0 }),
  rateSchedule: t.Optional(t.Array(t.Object({ ratePerSec: t.Number({ minimum: 0 }), durationMs: t.Number({ minimum: 0 }) }), { maxItems: 100 })),
  routes: RoutesSchema,
});
export type SourceStart = typeof SourceStartSchema.static;

/**
 * POST /leader/source: a source's report to the leader: lines `read` (skipped ones included),
 * every line up to `acked` has its results in dest, and its `state`; `addr` is the reporting
 * worker (the leader ignores a source it has moved elsewhere).
 */
export const SourceReportSchema = t.Object({
  job: t.String(),
  addr: t.String(),
  read: t.Integer({ minimum: 0 }),
  acked: t.Integer({ minimum: 0 }),
  state: t.Union([t.Literal("running"), t.Literal("done"), t.Literal("failed")]),
  error: t.Optional(t.String({ maxLength: 4096 })),
});
export type SourceReport = typeof SourceReportSchema.static;

/** POST /worker/kill's answer: the pid and its task. */
export const PidKilledSchema = t.Object({ killed: t.Integer(), job: t.String(), stage: t.Integer(), index: t.Integer() });
export type PidKilled = typeof PidKilledSchema.static;

/** POST /worker/flush_outputs: answer once this worker has told the leader every output of the job (bounded by a timeout). */
export const FlushOutputsSchema = t.Object({ job: t.String() });
export type FlushOutputs = typeof FlushOutputsSchema.static;

/** POST /worker/flush_outputs' answer: whether the worker's notice queue holds nothing of the job (false: it timed out). */
export const OutputsFlushedSchema = t.Object({ flushed: t.Boolean() });
export type OutputsFlushed = typeof OutputsFlushedSchema.static;

/** One task of GET /worker/tasks: its operator, counters, and `ratePerSec` (inputs in the last full second). */
export const WorkerTaskSchema = t.Object({
  job: t.String(),
  stage: t.Integer(),
  index: t.Integer(),
  op: t.String(),
  args: t.Array(t.String()),
  pid: t.Integer(),
  ratePerSec: t.Number(),
  inputs: t.Integer(),
  outputs: t.Integer(),
  batches: t.Integer(),
  /** Input batches the task is working on. */
  active: t.Integer(),
  /** Input batches waiting for the task (backpressure). */
  waiting: t.Integer(),
  logPath: t.String(),
  alive: t.Boolean(),
  /** Exactly-once tasks: input ids held for deduplication (those above the source's acknowledged position, seen_ids.ts). */
  dedupIds: t.Optional(t.Integer()),
});
export type WorkerTask = typeof WorkerTaskSchema.static;

// ---- data plane (msgpack) -------------------------------------------------------------------------

/**
 * A batch on the wire to POST /data (msgpack map, fields in this order): `count` tuples for task
 * `index` of `stage`, as tuple lines (`id TAB key TAB value`, ops/protocol.ts tupleLine), written
 * to a built-in operator's stdin as they come (as JSON input lines to any other). decodeBatch
 * (worker.ts) checks all of it.
 */
export interface Batch {
  job: string;
  stage: number;
  index: number;
  count: number;
  lines: string;
  /**
   * The source's acknowledged position as the sender knows it (every line of src up to it is
   * processed by every stage): exactly-once tasks forget the ids below it (seen_ids.ts). Absent: none known.
   */
  floor?: number;
}
