/**
 * The vocabulary of the job state machine (job_machine.ts): a job as it keeps it, the events it
 * takes and the commands it gives.
 */
import type { AutoscalePolicy, AutoscaleConfig, ScalingDecision } from "./autoscale.ts";
import type { JobEvent, TaskInfo } from "./leader.ts";
import type { JobSpec } from "./plan.ts";
import type { Routes, TaskStart } from "./worker.ts";

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
  routes: Routes;
  /** exactly_once: output ids already appended to dest. */
  sinkSeen: Set<string>;
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
  | { type: "submit"; id: string; spec: JobSpec; autoscale?: AutoscaleConfig }
  | { type: "members"; workers: string[]; hostsUp: string[] }
  | { type: "task_started"; job: string; stage: number; index: number; addr: string; pid: number; logPath: string }
  | { type: "task_start_failed"; job: string; stage: number; index: number; addr: string; error: string }
  | { type: "task_exited"; job: string; stage: number; index: number; pid: number; reason: string }
  | { type: "source_progress"; job: string; tuplesRead: number }
  | { type: "source_done"; job: string }
  | { type: "source_failed"; job: string; error: string }
  | { type: "sink_batch"; job: string; stage: number; index: number; lines: string[]; ids?: string[] }
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
  | { cmd: "run_source"; job: string }
  | { cmd: "sample_rates"; job: string; addrs: string[] }
  | { cmd: "emit"; job: string; event: JobEvent }
  /** Append to dest (the driver acknowledges the sink batch once it is written). */
  | { cmd: "write_dest"; job: string; text: string }
  /** The answer to the submitter's request: accepted, or why the job could not start. */
  | { cmd: "submit_result"; job: string; error?: string }
  /** The job is over: the driver drops what still waits for it (queued dest writes). */
  | { cmd: "job_ended"; job: string; status: Exclude<JobStatus, "running"> }
  | { cmd: "remove_task_logs"; job: string; tasks: { stage: number; index: number; op: string }[] }
  /** The machine forgot an ended job: the driver drops what it keeps for it. */
  | { cmd: "forget_job"; job: string }
  /** A sink batch the job cannot take, or a cancel of a job unknown or ended: answered with `status` and `error`. */
  | { cmd: "refuse"; status: number; error: string }
  | { cmd: "log"; level: "info" | "warn"; text: string };
