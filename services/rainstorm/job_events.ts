/**
 * The vocabulary of the job state machine (job_machine.ts): a job as it keeps it, the events it
 * takes and the commands it gives, and what the machine's parts (job_end.ts, job_outputs.ts,
 * job_scaling.ts) see of it.
 */
import type { AutoscalePolicy, AutoscaleConfig, ScalingDecision } from "./autoscale.ts";
import type { JobEvent } from "./model.ts";
import type { JournalRecord, JournaledJob } from "./journal.ts";
import type { JobSpec } from "./plan.ts";
import type { Routes, TaskStart } from "./worker.ts";

export interface MachineConfig {
  /** The leader's rainstorm address: where the source sends from. */
  selfAddr: string;
  /** A task that died more often than this fails its job (rainstorm.max_task_restarts). */
  maxTaskRestarts: number;
  /** Exactly-once task logs are removed this long after their job ended (rainstorm.log_retention_ms). */
  logRetentionMs: number;
  /** This leader's term (election.ts): carried by its routes, so workers refuse a stale leader's. */
  term: number;
}

/** A task of a job as the leader places it, and where and as what it runs now. */
export interface TaskInfo {
  stage: number;
  index: number;
  op: string;
  args: string[];
  /** Worker address "host:port". */
  addr: string;
  pid: number;
  logPath: string;
  restarts: number;
  /** Why the task last restarted (its task_restarted event's reason), for list_tasks. */
  lastRestartReason?: string;
}

/** A job runs until it is done (every result in dest), failed, or cancelled (kill_job). */
export type JobStatus = "running" | "done" | "failed" | "cancelled";

export interface MachineJob {
  id: string;
  spec: JobSpec;
  status: JobStatus;
  /** Every first start answered: the submitter got `accepted`. */
  accepted: boolean;
  startedMs: number;
  /** When it ended (done, failed or cancelled); its tuples/s are measured up to then. */
  endedMs?: number;
  tuplesRead: number;
  tuplesOut: number;
  tasks: TaskInfo[][];
  /**
   * Where the job's source runs (source_task.ts, on a worker), the position up to which every line
   * is acknowledged, and when that was last journaled. Undefined until the job is accepted.
   */
  source?: { addr: string; acked: number; journaledMs: number };
  routes: Routes;
  /**
   * The latest output notice of each appender to dest (`from`: a last-stage task, per incarnation
   * under at-least-once): its seq (older ones are resends) and its total (tuplesOut is their sum).
   */
  outputs: Map<string, { seq: number; total: number }>;
  /** Deaths reported before the answer of their start came (by task key; at most one per task). */
  earlyDeaths?: Map<string, { pid: number; reason: string }>;
  /** Start calls not answered yet, by task key "stage/index": why each was made. */
  starts: Map<string, PendingStart>;
  /**
   * autoscale=true: the policy; whether a sample is being taken; how many of its changes are
   * still under way (a sample due meanwhile is skipped); the tasks being retired, by task key.
   */
  autoscaler?: { policy: AutoscalePolicy; sampling: boolean; changing: number; retiring: Map<string, { decision: ScalingDecision; rates: string }> };
}

export type PendingStart = { why: "submit" } | { why: "restart"; moved: boolean; reason: string } | { why: "scale"; decision: ScalingDecision; rates: string };

export type JobInput =
  | { type: "submit"; id: string; spec: JobSpec; autoscale?: AutoscaleConfig; startedWallMs?: number }
  /**
   * A new leader takes over a running job from its journal: `found` lists the job's tasks that the
   * alive workers still run (by task key "stage/index"); the others are restarted.
   */
  | {
      type: "adopt";
      journaled: JournaledJob;
      found: Map<string, { addr: string; pid: number; logPath: string }>;
      /** Where the job's source still runs, if a worker runs it. */
      foundSource?: { addr: string; read: number; acked: number };
    }
  | { type: "members"; workers: string[]; hostsUp: string[] }
  | { type: "task_started"; job: string; stage: number; index: number; addr: string; pid: number; logPath: string }
  | { type: "task_start_failed"; job: string; stage: number; index: number; addr: string; error: string }
  | { type: "task_exited"; job: string; stage: number; index: number; pid: number; reason: string }
  /** A source's report (`addr`: where it runs; a report of a source moved elsewhere is ignored). */
  | { type: "source_progress"; job: string; tuplesRead: number; acked?: number; addr?: string }
  | { type: "source_done"; job: string; addr?: string }
  | { type: "source_failed"; job: string; error: string; addr?: string }
  /** The source could not start at `addr` (or its worker went): it starts again elsewhere. */
  | { type: "source_lost"; job: string; addr: string; reason: string }
  /** A last-stage task appended `lines` to dest (model.ts OutputsNotice; answered with `refuse` when it does not fit the job). */
  | { type: "outputs"; job: string; stage: number; index: number; from: string; seq: number; total: number; lines: string[] }
  | { type: "sample_due"; job: string }
  | { type: "rates"; job: string; rates: Map<string, number> }
  | { type: "retired"; job: string; stage: number; index: number; addr: string; error?: string }
  | { type: "logs_due"; job: string }
  /** log_retention_ms after a job ended: the leader forgets it (list_jobs, watch_job and its memory). */
  | { type: "forget_due"; job: string }
  /** kill_job: stop every task, mark the job cancelled (answered with `refuse` 404/409 when it cannot be). */
  | { type: "cancel"; job: string }
  | { type: "tick" };

export type JobCommand =
  | { cmd: "start"; addr: string; start: TaskStart }
  | { cmd: "routes"; job: string; addrs: string[]; routes: Routes }
  | { cmd: "retire"; job: string; addr: string; stage: number; index: number }
  | { cmd: "stop_job"; job: string; addrs: string[]; endOfStream: boolean }
  /** Run the job's source on worker `addr` from line `fromLine` on (0: the start; else the acknowledged position). */
  | { cmd: "run_source"; job: string; addr: string; fromLine: number }
  /** Append to the job's journal (journal.ts) before the commands after it are carried out. */
  | { cmd: "journal"; job: string; record: JournalRecord }
  | { cmd: "sample_rates"; job: string; addrs: string[] }
  | { cmd: "emit"; job: string; event: JobEvent }
  /** The answer to the submitter's request: accepted, or why the job could not start. */
  | { cmd: "submit_result"; job: string; error?: string }
  /** The job is over: the driver may drop what it keeps for it beyond its events. */
  | { cmd: "job_ended"; job: string; status: Exclude<JobStatus, "running"> }
  | { cmd: "remove_task_logs"; job: string; tasks: { stage: number; index: number; op: string }[] }
  /** The machine forgot an ended job: the driver drops what it keeps for it. */
  | { cmd: "forget_job"; job: string }
  /** Output notices the job cannot take, or a cancel of a job unknown or ended: answered with `status` and `error`. */
  | { cmd: "refuse"; status: number; error: string }
  | { cmd: "log"; level: "info" | "warn"; text: string };

/**
 * What the machine gives its parts: the step's time, the alive workers, and its own ways to give
 * a command, set a timer, start a task and change a job's routes. The parts keep no state of
 * their own; everything they change is in the MachineJob they are handed.
 */
export interface MachineContext {
  readonly cfg: MachineConfig;
  /** The time of the step under way. */
  nowMs(): number;
  /** Alive workers, sorted. */
  workers(): string[];
  emit(c: JobCommand): void;
  /** A timer as data: `input` is applied on the first tick at or after now + delayMs. */
  after(delayMs: number, input: JobInput): void;
  /** Ask the task's worker to start it; the answer comes back as task_started or task_start_failed. */
  start(job: MachineJob, t: TaskInfo, why: PendingStart): void;
  /** The alive worker with the fewest tasks of running jobs (not one of `avoid`, unless no other is alive). */
  leastLoaded(avoid?: string[]): string;
  /** The job's routes after its task list changed: the next version. */
  nextRoutes(job: MachineJob): void;
  /** Send the job's routes to this node's worker, every worker of its tasks and `also`. */
  broadcastRoutes(job: MachineJob, also?: string[]): void;
}

/** A task's key in `starts` and `retiring`. */
export const taskKey = (stage: number, index: number) => `${stage}/${index}`;
/** The host of a "host:port" address (what events name as a task's node). */
export const hostOf = (addr: string) => addr.split(":")[0]!;
