/**
 * The leader's job state machine, pure: `step(nowMs, input)` takes one event (a job submitted, a
 * task started or failed to start, a task's operator died, membership changed, the source made
 * progress, a last-stage task appended outputs, task rates sampled, kill_job, a timer came due) and returns the commands
 * to carry out (start a task at a worker, send routes, retire a task, stop a job's tasks, tell the
 * submitter, log), in the manner of raft's Step. No clock, timer, randomness or I/O here: the
 * driver (leader.ts) executes the commands and feeds their outcomes back as events; timers are
 * data (`nextDueMs`, then a `tick`). This is the state a leader failover would hand over.
 *
 * Command order matters within one step: the driver completes `routes` and `stop_job` before it
 * goes on with the next command of the same step (so a removed task leaves every route before
 * its worker is asked to retire it); the outcome of `start`, `retire` and `sample_rates` comes
 * back later as an event.
 *
 * Here: placement, starts and restarts. How a job ends is in job_end.ts, output notices in
 * job_outputs.ts and autoscaling in job_scaling.ts: functions over the MachineContext (job_events.ts) this class
 * gives them, so all state stays in this machine.
 */
import { AutoscalePolicy, type AutoscaleConfig } from "./autoscale.ts";
import {
  hostOf,
  type JobCommand,
  type JobInput,
  type MachineConfig,
  type MachineContext,
  type MachineJob,
  type PendingStart,
  taskKey,
  type TaskInfo,
} from "./job_events.ts";
import { cancelJob, failJob } from "./job_end.ts";
import { AUTOSCALE_SAMPLE_MS, changeDone, onRates, onRetired, reportScaled, sampleDue } from "./job_scaling.ts";
import { outputsNotice } from "./job_outputs.ts";
import { placeSource, sourceDone, sourceFailed, sourceLost, sourceProgress, sourceWorkerGone } from "./job_source.ts";
import type { JournaledJob } from "./journal.ts";
import type { JobSpec } from "./plan.ts";
import { placeRoundRobin } from "./plan.ts";

export type { JobCommand, JobInput, JobStatus, MachineConfig, MachineJob } from "./job_events.ts";
export { tuplesPerS } from "./job_end.ts";
export { AUTOSCALE_SAMPLE_MS, rateKey } from "./job_scaling.ts";

/** A restart whose start call failed is tried again (as a new death of the task) this much later. */
export const RESTART_RETRY_MS = 500;

export class JobMachine {
  private readonly jobs = new Map<string, MachineJob>();
  /** Alive workers (suspects get no new tasks), sorted; and hosts alive or suspect. */
  private workers: string[] = [];
  private hostsUp = new Set<string>();
  /** Timers as data: each fires its event at `dueMs` (on the first tick at or after it). */
  private timers: { dueMs: number; input: JobInput }[] = [];
  private out: JobCommand[] = [];
  private nowMs = 0;

  /** What job_end.ts, job_outputs.ts and job_scaling.ts see of this machine. */
  private readonly ctx: MachineContext;

  constructor(private readonly cfg: MachineConfig) {
    this.ctx = {
      cfg,
      nowMs: () => this.nowMs,
      workers: () => this.workers,
      emit: (c) => this.emit(c),
      after: (delayMs, input) => this.after(delayMs, input),
      start: (job, t, why) => this.start(job, t, why),
      leastLoaded: (avoid) => this.leastLoaded(avoid),
      nextRoutes: (job) => this.nextRoutes(job),
      broadcastRoutes: (job, also) => this.broadcastRoutes(job, also),
    };
  }

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
    if (input.type === "submit") return this.submit(input.id, input.spec, input.autoscale, input.startedWallMs ?? 0);
    if (input.type === "adopt") return this.adopt(input.journaled, input.found, input.foundSource);
    const job = this.jobs.get(input.job);
    if (input.type === "outputs") return outputsNotice(this.ctx, job, input);
    if (input.type === "cancel") return cancelJob(this.ctx, job, input.job);
    if (!job) return;
    switch (input.type) {
      case "task_started":
        return this.started(job, input);
      case "task_start_failed":
        return this.startFailed(job, input);
      case "task_exited":
        return this.exited(job, input);
      case "source_progress":
        return sourceProgress(this.ctx, job, input);
      case "source_done":
        return sourceDone(this.ctx, job);
      case "source_failed":
        return sourceFailed(this.ctx, job, input);
      case "source_lost":
        return sourceLost(this.ctx, job, input);
      case "sample_due":
        return sampleDue(this.ctx, job);
      case "rates":
        return onRates(this.ctx, job, input.rates);
      case "retired":
        return onRetired(this.ctx, job, input);
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

  private submit(id: string, spec: JobSpec, autoscale: AutoscaleConfig | undefined, startedWallMs: number): void {
    const placement = spec.stages.map((_, stage) => placeRoundRobin(this.workers, spec.tasksPerStage, stage * spec.tasksPerStage));
    const job = this.newJob(id, spec, autoscale, placement, 1);
    this.jobs.set(id, job);
    // Durable before anything starts: a successor takes the job over from here (journal.ts).
    const routes = { version: job.routes.version, stages: job.routes.stages };
    this.emit({
      cmd: "journal",
      job: id,
      record: { k: "submit", term: this.cfg.term, job: id, spec, ...(autoscale ? { autoscale } : {}), startedWallMs, routes },
    });
    // The source sends through this node's worker, which must know the routes too.
    this.emit({ cmd: "routes", job: id, addrs: [this.cfg.selfAddr], routes: job.routes });
    for (const t of job.tasks.flat()) this.start(job, t, { why: "submit" });
  }

  /** A job as placed: one task per address of `placement`, routes of `version` under this leader's term. */
  private newJob(id: string, spec: JobSpec, autoscale: AutoscaleConfig | undefined, placement: string[][], version: number): MachineJob {
    const tasks = placement.map((addrs, stage) =>
      addrs.map((addr, index) => ({ stage, index, op: spec.stages[stage]!.op, args: spec.stages[stage]!.args, addr, pid: 0, logPath: "", restarts: 0 })),
    );
    return {
      id,
      spec,
      status: "running",
      accepted: false,
      startedMs: this.nowMs,
      tuplesRead: 0,
      tuplesOut: 0,
      tasks,
      routes: { version, term: this.cfg.term, stages: placement.map((addrs) => [...addrs]) },
      outputs: new Map(),
      starts: new Map(),
      ...(autoscale ? { autoscaler: { policy: new AutoscalePolicy(autoscale), sampling: false, changing: 0, retiring: new Map() } } : {}),
    };
  }

  /**
   * A new leader takes over a running job from its journal: tasks the workers still run are
   * adopted as they are, the others restart (where they were if that worker is alive, else on
   * the least loaded), every worker of the job gets routes of the next version under this term,
   * and the source resumes after its acknowledged position.
   */
  private adopt(j: JournaledJob, found: Map<string, { addr: string; pid: number; logPath: string }>, foundSource?: { addr: string; acked: number }): void {
    if (this.jobs.has(j.job)) return;
    if (j.status !== "running") return this.adoptEnded(j);
    if (this.workers.length === 0) return;
    const placement = j.routes.stages.map((addrs, stage) => addrs.map((addr, index) => found.get(taskKey(stage, index))?.addr ?? addr));
    const job = this.newJob(j.job, j.spec, j.autoscale, placement, j.routes.version);
    job.accepted = true;
    job.tuplesRead = j.pos;
    this.jobs.set(j.job, job);
    const missing: TaskInfo[] = [];
    for (const t of job.tasks.flat()) {
      const f = found.get(taskKey(t.stage, t.index));
      if (f) Object.assign(t, { pid: f.pid, logPath: f.logPath });
      else missing.push(t);
    }
    for (const t of missing) if (!this.workers.includes(t.addr)) t.addr = this.leastLoaded();
    this.nextRoutes(job);
    this.broadcastRoutes(job);
    for (const t of missing) this.start(job, t, { why: "restart", moved: false, reason: "not running when a new leader took the job over" });
    const adopted = job.tasks.flat().length - missing.length;
    this.emit({
      cmd: "log",
      level: "info",
      text: `job ${job.id}: taken over in term ${this.cfg.term}: ${adopted} tasks adopted, ${missing.length} restarted, ${
        foundSource ? `its source goes on at ${foundSource.addr}` : `its source starts again after line ${j.pos}`
      }`,
    });
    if (job.autoscaler) this.after(AUTOSCALE_SAMPLE_MS, { type: "sample_due", job: job.id });
    // A source that still runs goes on (it reports to this leader from now on); else it starts again from the journal.
    if (foundSource) job.source = { addr: foundSource.addr, acked: Math.max(j.pos, foundSource.acked), journaledMs: this.nowMs };
    else placeSource(this.ctx, job, j.pos);
  }

  /**
   * A job that ended under an earlier leader: listed as it ended until it is forgotten, and its
   * task logs and journal deleted then (the earlier leader's timers died with it).
   */
  private adoptEnded(j: JournaledJob): void {
    const job = this.newJob(j.job, j.spec, undefined, j.routes.stages, j.routes.version);
    // Its duration as journaled (a job that ended before durations were journaled: 0).
    const durationMs = j.durationMs ?? 0;
    Object.assign(job, { status: j.status, accepted: true, tuplesRead: j.tuplesRead ?? j.pos, tuplesOut: j.tuplesOut ?? 0 });
    Object.assign(job, { startedMs: this.nowMs - durationMs, endedMs: this.nowMs });
    this.jobs.set(j.job, job);
    if (j.spec.exactlyOnce) this.after(this.cfg.logRetentionMs, { type: "logs_due", job: j.job });
    this.after(this.cfg.logRetentionMs, { type: "forget_due", job: j.job });
  }

  private start(job: MachineJob, t: TaskInfo, why: PendingStart): void {
    job.starts.set(taskKey(t.stage, t.index), why);
    // A task of the last stage appends its results to dest itself.
    const dest = t.stage === job.spec.stages.length - 1 ? { dest: job.spec.dest } : {};
    this.emit({
      cmd: "start",
      addr: t.addr,
      start: { job: job.id, stage: t.stage, index: t.index, op: t.op, args: t.args, routes: job.routes, exactlyOnce: job.spec.exactlyOnce, ...dest },
    });
  }

  /** The alive worker with the fewest tasks of running jobs (ties: the lowest address). */
  private leastLoaded(avoid: string[] = []): string {
    const others = this.workers.filter((w) => !avoid.includes(w));
    const load = new Map((others.length > 0 ? others : this.workers).map((w) => [w, 0]));
    for (const job of this.jobs.values())
      if (job.status === "running") for (const t of job.tasks.flat()) if (load.has(t.addr)) load.set(t.addr, load.get(t.addr)! + 1);
    return [...load].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  }

  /** The job's routes after its task list changed: the next version. */
  private nextRoutes(job: MachineJob): void {
    job.routes = { ...job.routes, version: job.routes.version + 1, term: this.cfg.term, stages: job.tasks.map((ts) => ts.map((t) => t.addr)) };
    // Journaled before any command names them, so a successor's versions continue above these.
    this.emit({
      cmd: "journal",
      job: job.id,
      record: { k: "routes", term: this.cfg.term, routes: { version: job.routes.version, stages: job.routes.stages } },
    });
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
    const early = job.earlyDeaths?.get(taskKey(t.stage, t.index));
    job.earlyDeaths?.delete(taskKey(t.stage, t.index));
    if (early?.pid === ev.pid) return this.exited(job, { type: "task_exited", job: job.id, stage: t.stage, index: t.index, pid: ev.pid, reason: early.reason });
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
      changeDone(job);
      reportScaled(this.ctx, job, why.decision, why.rates, `stage${t.stage}[${t.index}] started on ${hostOf(t.addr)} as pid ${t.pid}`);
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
    placeSource(this.ctx, job, 0);
  }

  private startFailed(job: MachineJob, ev: Extract<JobInput, { type: "task_start_failed" }>): void {
    const t = this.taskOf(job, ev.stage, ev.index);
    const why = job.starts.get(taskKey(ev.stage, ev.index));
    if (!t || !why || job.status !== "running" || t.addr !== ev.addr) return;
    job.starts.delete(taskKey(ev.stage, ev.index));
    if (why.why === "submit") {
      failJob(this.ctx, job, `starting tasks: ${ev.error}`, ev.error);
    } else if (why.why === "restart") {
      this.emit({ cmd: "log", level: "warn", text: `restart of task stage${t.stage}[${t.index}] on ${t.addr}: ${ev.error}` });
      this.after(RESTART_RETRY_MS, { type: "task_exited", job: job.id, stage: t.stage, index: t.index, pid: t.pid, reason: ev.error });
    } else {
      // The new task never ran: it leaves the stage again (no route named it yet).
      job.tasks[t.stage]!.pop();
      this.nextRoutes(job);
      changeDone(job);
      this.emit({ cmd: "log", level: "warn", text: `job ${job.id}: autoscaling could not add stage${t.stage}[${t.index}] on ${t.addr}: ${ev.error}` });
    }
  }

  // ---- failures --------------------------------------------------------------------------------

  /** A task's operator died unasked: restart it where it was if that worker is alive, else on the least loaded one. */
  private exited(job: MachineJob, ev: Extract<JobInput, { type: "task_exited" }>): void {
    const t = this.taskOf(job, ev.stage, ev.index);
    if (!t || job.status !== "running") return;
    if (t.pid !== ev.pid) {
      // The death of a start whose answer has not come yet (the death report overtook it): kept for it.
      if (job.starts.has(taskKey(t.stage, t.index))) (job.earlyDeaths ??= new Map()).set(taskKey(t.stage, t.index), { pid: ev.pid, reason: ev.reason });
      return;
    }
    t.restarts++;
    if (t.restarts > this.cfg.maxTaskRestarts)
      return failJob(this.ctx, job, `task stage${t.stage}[${t.index}] (${t.op}) died ${t.restarts} times; last: ${ev.reason}`);
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
      sourceWorkerGone(this.ctx, job, this.hostsUp);
    }
  }

  private restart(job: MachineJob, t: TaskInfo, addr: string, reason: string): void {
    const moved = addr !== t.addr;
    t.addr = addr;
    if (moved) this.nextRoutes(job);
    this.start(job, t, { why: "restart", moved, reason });
  }
}
