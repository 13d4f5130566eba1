/**
 * The leader's job state machine, pure: `step(nowMs, input)` takes one event (a job submitted, a
 * task started or failed to start, a task's operator died, membership changed, the source or the
 * sink made progress, task rates sampled, kill_job, a timer came due) and returns the commands to carry out
 * (start a task at a worker, send routes, retire a task, stop a job's tasks, write dest, tell the
 * submitter, log), in the manner of raft's Step. No clock, timer, randomness or I/O here: the
 * driver (leader.ts) executes the commands and feeds their outcomes back as events; timers are
 * data (`nextDueMs`, then a `tick`). This is the state a leader failover would hand over.
 *
 * Command order matters within one step: the driver completes `routes` and `stop_job` before it
 * goes on with the next command of the same step (so a removed task leaves every route before
 * its worker is asked to retire it); the outcome of `start`, `retire` and `sample_rates` comes
 * back later as an event.
 */
import { AutoscalePolicy, type AutoscaleConfig, type ScalingDecision } from "./autoscale.ts";
import type { JobCommand, JobInput, JobStatus, MachineJob, PendingStart } from "./job_events.ts";
import type { TaskInfo } from "./leader.ts";
import type { JobSpec } from "./plan.ts";
import { placeRoundRobin } from "./plan.ts";

export type { JobCommand, JobInput, JobStatus, MachineJob } from "./job_events.ts";

export interface MachineConfig {
  /** The leader's rainstorm address: the sink of every job, and where the source sends from. */
  selfAddr: string;
  /** A task that died more often than this fails its job (rainstorm.max_task_restarts). */
  maxTaskRestarts: number;
  /** Exactly-once task logs are removed this long after their job ended (rainstorm.log_retention_ms). */
  logRetentionMs: number;
}

/** How often an autoscaling job's task rates are sampled (the policy counts samples). */
export const AUTOSCALE_SAMPLE_MS = 1000;
/** A restart whose start call failed is tried again (as a new death of the task) this much later. */
export const RESTART_RETRY_MS = 500;

/** The key of a task's rate in a `rates` event: job, stage, index and the pid it runs as. */
export function rateKey(job: string, stage: number, index: number, pid: number): string {
  return `${job}/${stage}/${index}/${pid}`;
}

/** A job's input tuples per second: from its start to its end (or to `nowMs` while it runs). */
export function tuplesPerS(job: Pick<MachineJob, "tuplesRead" | "startedMs" | "endedMs">, nowMs: number): number {
  const durationMs = (job.endedMs ?? nowMs) - job.startedMs;
  return Math.round(job.tuplesRead / Math.max(durationMs / 1000, 0.001));
}

const taskKey = (stage: number, index: number) => `${stage}/${index}`;
const hostOf = (addr: string) => addr.split(":")[0]!;

export class JobMachine {
  private readonly jobs = new Map<string, MachineJob>();
  /** Alive workers (suspects get no new tasks), sorted; and hosts alive or suspect. */
  private workers: string[] = [];
  private hostsUp = new Set<string>();
  /** Timers as data: each fires its event at `dueMs` (on the first tick at or after it). */
  private timers: { dueMs: number; input: JobInput }[] = [];
  private out: JobCommand[] = [];
  private nowMs = 0;

  constructor(private readonly cfg: MachineConfig) {}

  job(id: string): MachineJob | undefined {
    return this.jobs.get(id);
  }

  allJobs(): MachineJob[] {
    return [...this.jobs.values()];
  }

  aliveWorkers(): string[] {
    return this.workers;
  }

  /** When the driver must tick next, if any timer is set. */
  nextDueMs(): number | undefined {
    let due: number | undefined;
    for (const t of this.timers) if (due === undefined || t.dueMs < due) due = t.dueMs;
    return due;
  }

  step(nowMs: number, input: JobInput): JobCommand[] {
    this.nowMs = nowMs;
    this.out = [];
    this.apply(input);
    return this.out;
  }

  private apply(input: JobInput): void {
    if (input.type === "tick") return this.tick();
    if (input.type === "members") return this.onMembers(input.workers, input.hostsUp);
    if (input.type === "submit") return this.submit(input.id, input.spec, input.autoscale);
    const job = this.jobs.get(input.job);
    if (input.type === "sink_batch") return this.sinkBatch(job, input);
    if (input.type === "cancel") return this.cancel(job, input.job);
    if (!job) return;
    switch (input.type) {
      case "task_started":
        return this.started(job, input);
      case "task_start_failed":
        return this.startFailed(job, input);
      case "task_exited":
        return this.exited(job, input);
      case "source_progress":
        job.tuplesRead = input.tuplesRead;
        return;
      case "source_done":
        return this.done(job);
      case "source_failed":
        return this.fail(job, `source: ${input.error}`);
      case "sample_due":
        return this.sampleDue(job);
      case "rates":
        return this.rates(job, input.rates);
      case "retired":
        return this.retired(job, input);
      case "logs_due":
        this.emit({ cmd: "remove_task_logs", job: job.id, tasks: job.tasks.flat().map((t) => ({ stage: t.stage, index: t.index, op: t.op })) });
        return;
      case "forget_due":
        this.jobs.delete(job.id);
        this.emit({ cmd: "forget_job", job: job.id });
    }
  }

  private emit(c: JobCommand): void {
    this.out.push(c);
  }

  private after(delayMs: number, input: JobInput): void {
    this.timers.push({ dueMs: this.nowMs + delayMs, input });
  }

  private tick(): void {
    const due = this.timers.filter((t) => t.dueMs <= this.nowMs);
    this.timers = this.timers.filter((t) => t.dueMs > this.nowMs);
    for (const t of due) this.apply(t.input);
  }

  // ---- placement -------------------------------------------------------------------------------

  private submit(id: string, spec: JobSpec, autoscale: AutoscaleConfig | undefined): void {
    const job: MachineJob = {
      id,
      spec,
      status: "running",
      accepted: false,
      startedMs: this.nowMs,
      tuplesRead: 0,
      tuplesOut: 0,
      tasks: spec.stages.map((s, stage) =>
        placeRoundRobin(this.workers, spec.tasksPerStage, stage * spec.tasksPerStage).map((addr, index) => ({
          stage,
          index,
          op: s.op,
          args: s.args,
          addr,
          pid: 0,
          logPath: "",
          restarts: 0,
        })),
      ),
      routes: { version: 1, stages: [], sink: this.cfg.selfAddr },
      sinkSeen: new Set(),
      starts: new Map(),
      ...(autoscale ? { autoscaler: { policy: new AutoscalePolicy(autoscale), sampling: false, changing: 0, retiring: new Map() } } : {}),
    };
    job.routes.stages = job.tasks.map((ts) => ts.map((t) => t.addr));
    this.jobs.set(id, job);
    // The source sends through this node's worker, which must know the routes too.
    this.emit({ cmd: "routes", job: id, addrs: [this.cfg.selfAddr], routes: job.routes });
    for (const t of job.tasks.flat()) this.start(job, t, { why: "submit" });
  }

  private start(job: MachineJob, t: TaskInfo, why: PendingStart): void {
    job.starts.set(taskKey(t.stage, t.index), why);
    this.emit({
      cmd: "start",
      addr: t.addr,
      start: { job: job.id, stage: t.stage, index: t.index, op: t.op, args: t.args, routes: job.routes, exactlyOnce: job.spec.exactlyOnce },
    });
  }

  /** The alive worker with the fewest tasks of running jobs (ties: the lowest address). */
  private leastLoaded(): string {
    const load = new Map(this.workers.map((w) => [w, 0]));
    for (const job of this.jobs.values())
      if (job.status === "running") for (const t of job.tasks.flat()) if (load.has(t.addr)) load.set(t.addr, load.get(t.addr)! + 1);
    return [...load].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  }

  /** The job's routes after its task list changed: the next version. */
  private nextRoutes(job: MachineJob): void {
    job.routes = { ...job.routes, version: job.routes.version + 1, stages: job.tasks.map((ts) => ts.map((t) => t.addr)) };
  }

  /** Send the job's routes to this node's worker, every worker of its tasks and `also`. */
  private broadcastRoutes(job: MachineJob, also: string[] = []): void {
    const addrs = new Set([this.cfg.selfAddr, ...job.tasks.flat().map((t) => t.addr), ...also]);
    this.emit({ cmd: "routes", job: job.id, addrs: [...addrs], routes: job.routes });
  }

  private taskOf(job: MachineJob, stage: number, index: number): TaskInfo | undefined {
    return job.tasks[stage]?.[index];
  }

  // ---- start outcomes --------------------------------------------------------------------------

  private started(job: MachineJob, ev: Extract<JobInput, { type: "task_started" }>): void {
    const t = this.taskOf(job, ev.stage, ev.index);
    const why = job.starts.get(taskKey(ev.stage, ev.index));
    if (!t || !why || job.status !== "running" || t.addr !== ev.addr) return;
    job.starts.delete(taskKey(ev.stage, ev.index));
    t.pid = ev.pid;
    t.logPath = ev.logPath;
    if (why.why === "restart") {
      t.lastRestartReason = why.reason;
      if (why.moved) this.broadcastRoutes(job);
      this.emit({ cmd: "log", level: "info", text: `job ${job.id}: task stage${t.stage}[${t.index}] restarted on ${t.addr} as pid ${t.pid} (${why.reason})` });
      this.emit({
        cmd: "emit",
        job: job.id,
        event: { event: "task_restarted", stage: t.stage, index: t.index, node: hostOf(t.addr), pid: t.pid, reason: why.reason },
      });
    } else if (why.why === "scale") {
      this.broadcastRoutes(job);
      this.changed(job);
      this.scaled(job, why.decision, why.rates, `stage${t.stage}[${t.index}] started on ${hostOf(t.addr)} as pid ${t.pid}`);
    }
    // Accepted once every first start is answered (a task moved meanwhile counts once restarted).
    if (!job.accepted && ![...job.starts.values()].some((s) => s.why === "submit")) this.accept(job);
  }

  private accept(job: MachineJob): void {
    job.accepted = true;
    const { spec } = job;
    this.emit({
      cmd: "emit",
      job: job.id,
      event: { event: "accepted", job: job.id, tasks: job.tasks.flat().map((t) => ({ stage: t.stage, index: t.index, node: hostOf(t.addr), pid: t.pid })) },
    });
    const scaling = spec.autoscale ? `, autoscale LW ${spec.lowWatermark} HW ${spec.highWatermark} tuples/s per task` : "";
    this.emit({
      cmd: "log",
      level: "info",
      text: `job ${job.id} started: ${spec.stages.map((s) => `${s.op} ${s.args.join(" ")}`).join(" | ")}, ${spec.tasksPerStage} tasks per stage, ${spec.src} -> ${spec.dest}${scaling}`,
    });
    this.emit({ cmd: "submit_result", job: job.id });
    if (job.autoscaler) this.after(AUTOSCALE_SAMPLE_MS, { type: "sample_due", job: job.id });
    this.emit({ cmd: "run_source", job: job.id });
  }

  private startFailed(job: MachineJob, ev: Extract<JobInput, { type: "task_start_failed" }>): void {
    const t = this.taskOf(job, ev.stage, ev.index);
    const why = job.starts.get(taskKey(ev.stage, ev.index));
    if (!t || !why || job.status !== "running" || t.addr !== ev.addr) return;
    job.starts.delete(taskKey(ev.stage, ev.index));
    if (why.why === "submit") {
      this.fail(job, `starting tasks: ${ev.error}`, ev.error);
    } else if (why.why === "restart") {
      this.emit({ cmd: "log", level: "warn", text: `restart of task stage${t.stage}[${t.index}] on ${t.addr}: ${ev.error}` });
      this.after(RESTART_RETRY_MS, { type: "task_exited", job: job.id, stage: t.stage, index: t.index, pid: t.pid, reason: ev.error });
    } else {
      // The new task never ran: it leaves the stage again (no route named it yet).
      job.tasks[t.stage]!.pop();
      this.nextRoutes(job);
      this.changed(job);
      this.emit({ cmd: "log", level: "warn", text: `job ${job.id}: autoscaling could not add stage${t.stage}[${t.index}] on ${t.addr}: ${ev.error}` });
    }
  }

  // ---- failures --------------------------------------------------------------------------------

  /** A task's operator died unasked: restart it where it was if that worker is alive, else on the least loaded one. */
  private exited(job: MachineJob, ev: Extract<JobInput, { type: "task_exited" }>): void {
    const t = this.taskOf(job, ev.stage, ev.index);
    if (!t || job.status !== "running" || t.pid !== ev.pid) return;
    t.restarts++;
    if (t.restarts > this.cfg.maxTaskRestarts) return this.fail(job, `task stage${t.stage}[${t.index}] (${t.op}) died ${t.restarts} times; last: ${ev.reason}`);
    if (this.workers.length === 0) return; // nowhere to go; the next membership change moves it
    this.restart(job, t, this.workers.includes(t.addr) ? t.addr : this.leastLoaded(), ev.reason);
  }

  /** Membership changed: tasks on workers that are gone (neither alive nor suspect) move to alive ones. */
  private onMembers(workers: string[], hostsUp: string[]): void {
    this.workers = [...workers].sort();
    this.hostsUp = new Set(hostsUp);
    if (this.workers.length === 0) return;
    for (const job of this.jobs.values()) {
      if (job.status !== "running") continue;
      for (const t of job.tasks.flat()) {
        if (this.hostsUp.has(hostOf(t.addr))) continue;
        this.restart(job, t, this.leastLoaded(), `worker ${hostOf(t.addr)} failed`);
      }
    }
  }

  private restart(job: MachineJob, t: TaskInfo, addr: string, reason: string): void {
    const moved = addr !== t.addr;
    t.addr = addr;
    if (moved) this.nextRoutes(job);
    this.start(job, t, { why: "restart", moved, reason });
  }

  private fail(job: MachineJob, error: string, startError?: string): void {
    if (job.status !== "running") return;
    job.status = "failed";
    this.emit({ cmd: "log", level: "warn", text: `job ${job.id} failed: ${error}` });
    this.end(job, "failed");
    this.emit({ cmd: "emit", job: job.id, event: { event: "failed", job: job.id, error } });
    this.stopTasks(job, false);
    // The submitter hears why only once the tasks that did start are stopped.
    if (!job.accepted) this.emit({ cmd: "submit_result", job: job.id, error: startError ?? error });
  }

  /**
   * kill_job: every task is stopped (no end of stream: the job is abandoned, not drained), then the
   * submitter hears `cancelled`, which ends its stream. Dest keeps what was written; a dest write
   * still queued is dropped (job_ended).
   */
  private cancel(job: MachineJob | undefined, id: string): void {
    if (!job) return this.emit({ cmd: "refuse", status: 404, error: `job ${JSON.stringify(id)}: no such job on this leader (see ctl list_jobs)` });
    if (job.status !== "running")
      return this.emit({ cmd: "refuse", status: 409, error: `job ${id} has already ended (${job.status}); only a running job can be killed` });
    job.status = "cancelled";
    this.end(job, "cancelled");
    this.stopTasks(job, false);
    const { tuplesRead, tuplesOut } = job;
    this.emit({
      cmd: "log",
      level: "info",
      text: `job ${id} cancelled (kill_job): ${tuplesRead} tuples in, ${tuplesOut} out; dest ${job.spec.dest} kept as written`,
    });
    this.emit({ cmd: "emit", job: id, event: { event: "cancelled", job: id, tuples_read: tuplesRead, tuples_out: tuplesOut, dest: job.spec.dest } });
    if (!job.accepted) this.emit({ cmd: "submit_result", job: id, error: "cancelled by kill_job" });
  }

  private done(job: MachineJob): void {
    if (job.status !== "running") return;
    job.status = "done";
    this.end(job, "done");
    const durationMs = this.nowMs - job.startedMs;
    const { id, tuplesRead, tuplesOut } = job;
    this.emit({
      cmd: "emit",
      job: id,
      event: {
        event: "done",
        job: id,
        tuples_read: tuplesRead,
        tuples_out: tuplesOut,
        duration_ms: Math.round(durationMs),
        tuples_per_s: tuplesPerS(job, this.nowMs),
        dest: job.spec.dest,
      },
    });
    this.emit({ cmd: "log", level: "info", text: `job ${id} done: ${tuplesRead} tuples in, ${tuplesOut} out, ${Math.round(durationMs)} ms` });
    this.stopTasks(job, true);
  }

  /**
   * A job ended: no more scaling, and the sink's ids go at once (an ended job takes no more
   * results). Its exactly-once task logs go after the retention time, and then the job itself is
   * forgotten, so a leader's memory does not grow with every job it ever ran.
   */
  private end(job: MachineJob, status: Exclude<JobStatus, "running">): void {
    job.endedMs = this.nowMs;
    delete job.autoscaler;
    job.starts.clear();
    job.sinkSeen.clear();
    this.emit({ cmd: "job_ended", job: job.id, status });
    if (job.spec.exactlyOnce) this.after(this.cfg.logRetentionMs, { type: "logs_due", job: job.id });
    this.after(this.cfg.logRetentionMs, { type: "forget_due", job: job.id });
  }

  /** Stop every task of a job (and its routes on this node); a finished job's tasks get end of stream first. */
  private stopTasks(job: MachineJob, endOfStream: boolean): void {
    const addrs = new Set([...job.tasks.flat().map((t) => t.addr), this.cfg.selfAddr]);
    this.emit({ cmd: "stop_job", job: job.id, addrs: [...addrs], endOfStream });
  }

  // ---- sink ------------------------------------------------------------------------------------

  /** Results of the last stage: counted, streamed to the submitter and written to dest (exactly-once: each output id once). */
  private sinkBatch(job: MachineJob | undefined, ev: Extract<JobInput, { type: "sink_batch" }>): void {
    const refuse = (status: number, error: string) => this.emit({ cmd: "refuse", status, error });
    if (!job) return refuse(404, `sink batch: job ${ev.job} is not known on this leader`);
    const nStages = job.spec.stages.length;
    if (ev.stage !== nStages || ev.index !== 0)
      return refuse(
        400,
        `sink batch: job ${job.id} has ${nStages} stages, so its results come as stage ${nStages} index 0, got stage ${ev.stage} index ${ev.index}`,
      );
    if (ev.ids && !job.spec.exactlyOnce) return refuse(400, `sink batch: job ${job.id} is not exactly-once; its results carry no ids`);
    if (job.status !== "running") return; // a late batch of a finished job: nothing to do
    let lines = ev.lines;
    if (job.spec.exactlyOnce) {
      const ids = ev.ids;
      if (!ids || ids.length !== lines.length)
        return refuse(400, `sink batch of job ${job.id}: exactly-once needs one id per line (${lines.length} lines, ${ids?.length ?? "no"} ids)`);
      lines = lines.filter((_, i) => {
        if (job.sinkSeen.has(ids[i]!)) return false;
        job.sinkSeen.add(ids[i]!);
        return true;
      });
      if (lines.length === 0) return;
    }
    job.tuplesOut += lines.length;
    this.emit({ cmd: "emit", job: job.id, event: { event: "output", lines } });
    this.emit({ cmd: "write_dest", job: job.id, text: `${lines.join("\n")}\n` });
  }

  // ---- autoscaling -----------------------------------------------------------------------------

  /** Every AUTOSCALE_SAMPLE_MS: ask the workers for their tasks' rates, unless the last sample is still being acted on. */
  private sampleDue(job: MachineJob): void {
    const a = job.autoscaler;
    if (!a || job.status !== "running") return;
    this.after(AUTOSCALE_SAMPLE_MS, { type: "sample_due", job: job.id });
    if (a.sampling || a.changing > 0) return;
    a.sampling = true;
    this.emit({ cmd: "sample_rates", job: job.id, addrs: [...new Set(job.tasks.flat().map((t) => t.addr))] });
  }

  /** The workers' rates came back: every task's rate to the policy, then carry out what it decides. */
  private rates(job: MachineJob, rates: Map<string, number>): void {
    const a = job.autoscaler;
    if (!a || !a.sampling || job.status !== "running") return;
    a.sampling = false;
    const stages = job.tasks.map((ts, stage) => ({ stage, taskRates: ts.map((t) => rates.get(rateKey(job.id, t.stage, t.index, t.pid)) ?? null) }));
    for (const d of a.policy.observe(this.nowMs, stages)) {
      const text = `task rates ${stages[d.stage]!.taskRates.map((r) => r ?? "?").join(", ")} tuples/s`;
      if (d.to > d.from) this.addTask(job, d, text);
      else this.removeTask(job, d, text);
    }
  }

  /** Grow a stage: the new task runs before any route names it, then everyone learns the routes. */
  private addTask(job: MachineJob, d: ScalingDecision, rates: string): void {
    const stageTasks = job.tasks[d.stage]!;
    if (this.workers.length === 0) return;
    const { op, args } = stageTasks[0]!;
    const t: TaskInfo = { stage: d.stage, index: stageTasks.length, op, args, addr: this.leastLoaded(), pid: 0, logPath: "", restarts: 0 };
    stageTasks.push(t);
    this.nextRoutes(job);
    job.autoscaler!.changing++;
    this.start(job, t, { why: "scale", decision: d, rates });
  }

  /** Shrink a stage: its last task leaves the routes, then its worker retires it once idle. */
  private removeTask(job: MachineJob, d: ScalingDecision, rates: string): void {
    const stageTasks = job.tasks[d.stage]!;
    if (stageTasks.length <= 1) return;
    const t = stageTasks.pop()!;
    this.nextRoutes(job);
    this.broadcastRoutes(job, [t.addr]);
    job.autoscaler!.changing++;
    job.autoscaler!.retiring.set(taskKey(t.stage, t.index), { decision: d, rates });
    this.emit({ cmd: "retire", job: job.id, addr: t.addr, stage: t.stage, index: t.index });
  }

  private retired(job: MachineJob, ev: Extract<JobInput, { type: "retired" }>): void {
    const a = job.autoscaler;
    const pending = a?.retiring.get(taskKey(ev.stage, ev.index));
    if (!a || !pending) return;
    a.retiring.delete(taskKey(ev.stage, ev.index));
    this.changed(job);
    // Its worker is gone or slow: the task is out of the routes anyway, and whatever it did not
    // acknowledge is re-sent to the remaining tasks.
    if (ev.error !== undefined)
      this.emit({ cmd: "log", level: "warn", text: `job ${job.id}: retiring stage${ev.stage}[${ev.index}] on ${ev.addr}: ${ev.error}` });
    if (job.status === "running") this.scaled(job, pending.decision, pending.rates, `stage${ev.stage}[${ev.index}] on ${hostOf(ev.addr)} retired`);
  }

  private changed(job: MachineJob): void {
    if (job.autoscaler) job.autoscaler.changing = Math.max(0, job.autoscaler.changing - 1);
  }

  private scaled(job: MachineJob, d: ScalingDecision, rates: string, what: string): void {
    this.emit({ cmd: "log", level: "info", text: `job ${job.id}: autoscale stage${d.stage} ${d.from} -> ${d.to} tasks: ${d.reason} (${rates}); ${what}` });
    this.emit({
      cmd: "emit",
      job: job.id,
      event: { event: "scaled", stage: d.stage, from: d.from, to: d.to, avg_rate_per_task: Math.round(d.avgRatePerTask), reason: d.reason },
    });
  }
}
