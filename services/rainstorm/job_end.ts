/**
 * How a job ends, part of the job state machine (job_machine.ts) and pure like it: done (the
 * source finished and every result is in dest), failed (a task died too often, a start or the
 * source failed) or cancelled (kill_job). Separate because every ending shares one tail (no more
 * scaling, timers for the task logs and for forgetting the job, the tasks stopped) and the machine
 * reaches it from many events; these are functions over the MachineContext the machine gives them.
 */
import type { JobStatus, MachineContext, MachineJob } from "./job_events.ts";

/** A job's input tuples per second: from its start to its end (or to `nowMs` while it runs). */
export function tuplesPerS(job: Pick<MachineJob, "tuplesRead" | "startedMs" | "endedMs">, nowMs: number): number {
  const durationMs = (job.endedMs ?? nowMs) - job.startedMs;
  return Math.round(job.tuplesRead / Math.max(durationMs / 1000, 0.001));
}

export function failJob(ctx: MachineContext, job: MachineJob, error: string, startError?: string): void {
  if (job.status !== "running") return;
  job.status = "failed";
  ctx.emit({ cmd: "log", level: "warn", text: `job ${job.id} failed: ${error}` });
  endJob(ctx, job, "failed", error);
  ctx.emit({ cmd: "emit", job: job.id, event: { event: "failed", job: job.id, error } });
  stopTasks(ctx, job, false);
  // The submitter hears why only once the tasks that did start are stopped.
  if (!job.accepted) ctx.emit({ cmd: "submit_result", job: job.id, error: startError ?? error });
}

/**
 * kill_job: every task is stopped (no end of stream: the job is abandoned, not drained), then the
 * submitter hears `cancelled`, which ends its stream. Dest keeps what was written.
 */
export function cancelJob(ctx: MachineContext, job: MachineJob | undefined, id: string): void {
  if (!job) return ctx.emit({ cmd: "refuse", status: 404, error: `job ${JSON.stringify(id)}: no such job on this leader (see ctl list_jobs)` });
  if (job.status !== "running")
    return ctx.emit({ cmd: "refuse", status: 409, error: `job ${id} has already ended (${job.status}); only a running job can be killed` });
  job.status = "cancelled";
  endJob(ctx, job, "cancelled");
  stopTasks(ctx, job, false);
  const { tuplesRead, tuplesOut } = job;
  ctx.emit({
    cmd: "log",
    level: "info",
    text: `job ${id} cancelled (kill_job): ${tuplesRead} tuples in, ${tuplesOut} out; dest ${job.spec.dest} kept as written`,
  });
  ctx.emit({ cmd: "emit", job: id, event: { event: "cancelled", job: id, tuples_read: tuplesRead, tuples_out: tuplesOut, dest: job.spec.dest } });
  if (!job.accepted) ctx.emit({ cmd: "submit_result", job: id, error: "cancelled by kill_job" });
}

/** The source is done and every result acknowledged: the job is done, its tasks drained and stopped. */
export function jobDone(ctx: MachineContext, job: MachineJob): void {
  if (job.status !== "running") return;
  job.status = "done";
  endJob(ctx, job, "done");
  const nowMs = ctx.nowMs();
  const durationMs = nowMs - job.startedMs;
  const { id, tuplesRead, tuplesOut } = job;
  ctx.emit({
    cmd: "emit",
    job: id,
    event: {
      event: "done",
      job: id,
      tuples_read: tuplesRead,
      tuples_out: tuplesOut,
      duration_ms: Math.round(durationMs),
      tuples_per_s: tuplesPerS(job, nowMs),
      dest: job.spec.dest,
    },
  });
  ctx.emit({ cmd: "log", level: "info", text: `job ${id} done: ${tuplesRead} tuples in, ${tuplesOut} out, ${Math.round(durationMs)} ms` });
  stopTasks(ctx, job, true);
}

/**
 * A job ended: no more scaling (and no more output notices are counted). Its exactly-once task logs go after the retention time, and then the job itself is
 * forgotten, so a leader's memory does not grow with every job it ever ran.
 */
function endJob(ctx: MachineContext, job: MachineJob, status: Exclude<JobStatus, "running">, error?: string): void {
  job.endedMs = ctx.nowMs();
  delete job.autoscaler;
  job.starts.clear();
  ctx.emit({ cmd: "job_ended", job: job.id, status });
  const durationMs = Math.round(job.endedMs - job.startedMs);
  const record = {
    k: "end" as const,
    term: ctx.cfg.term,
    status,
    tuplesRead: job.tuplesRead,
    tuplesOut: job.tuplesOut,
    durationMs,
    ...(error ? { error } : {}),
  };
  ctx.emit({ cmd: "journal", job: job.id, record });
  if (job.spec.exactlyOnce) ctx.after(ctx.cfg.logRetentionMs, { type: "logs_due", job: job.id });
  ctx.after(ctx.cfg.logRetentionMs, { type: "forget_due", job: job.id });
}

/** Stop every task of a job (and its routes on this node); a finished job's tasks get end of stream first. */
function stopTasks(ctx: MachineContext, job: MachineJob, endOfStream: boolean): void {
  const addrs = new Set([...job.tasks.flat().map((t) => t.addr), ctx.cfg.selfAddr, ...(job.source ? [job.source.addr] : [])]);
  ctx.emit({ cmd: "stop_job", job: job.id, addrs: [...addrs], endOfStream });
}
