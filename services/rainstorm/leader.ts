/**
 * The RainStorm leader: validates and places jobs, runs each job's source, restarts
 * tasks whose operator died and reschedules the tasks of failed workers, answers list_tasks,
 * kill_task, list_jobs, kill_job and watch_job. It lives in the rainstormd of the leader node, beside that node's worker.
 *
 * Semantics (exactly_once=false): at-least-once. Acknowledgements are end to end (see
 * worker.ts), the source resends unacknowledged batches to restarted tasks, and a last-stage
 * task appends to `dest` itself before it acknowledges (dest_writer.ts), so every input line's
 * results reach `dest`; a task restart can repeat some. exactly_once=true: see exactly_once.ts.
 * The leader hears of results through the tasks' output notices (POST /outputs, outputs.ts),
 * which it counts and streams to the submitter.
 *
 * autoscale=true: once a second the leader reads every task's input rate (what list_tasks
 * shows) and feeds it to the job's AutoscalePolicy (autoscale.ts), which decides when a stage
 * gains or loses a task. A new task starts before any route names it; a removed task leaves
 * the routes first and is retired (stopped once idle), and batches still addressed to it are
 * re-routed by their senders, so nothing is lost or processed twice. Only stateless stages can
 * change size: the partitioning is hash mod task count, and moving per-key state between tasks
 * is not built, so a job with a stateful stage (aggregate, or any operator not known to be
 * stateless) and autoscale=true is refused with a message that says so.
 *
 * Here: the driver. What to do is decided by the job state machine (job_machine.ts, pure); this
 * class checks a job (job_checks.ts), feeds the machine events and carries out its commands
 * through the transport (transport.ts), the job files (job_files.ts) and the source (source.ts).
 * What it keeps per job (listeners, recent events, dest's creation) is in job_runtime.ts; the answers
 * that change no job (list_tasks, kill_task, a job's summary) are in leader_queries.ts.
 */
import type { NodeConfig } from "../node_config.ts";
import { memberHost } from "../member/state.ts";
import { ClusterHttp } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import type { WatchedMember } from "../member/watch.ts";
import type { JobSpec } from "./plan.ts";
import type { Worker } from "./worker.ts";
import { checkJobId } from "./wire_checks.ts";
import { keepsTaskLog } from "./worker.ts";
import { autoscaleConfigOf, checkOperator, LeaderError } from "./job_checks.ts";
import { taskLogName } from "./exactly_once.ts";
import { type JobCommand, type JobInput, JobMachine, type MachineJob } from "./job_machine.ts";
import { type JobRuntime, listen, TAKEOVER_LINES_GRACE_MS, tell, unlisten, wantsLines, writeDest } from "./job_runtime.ts";
import { jobSummary, killTask, listTasks, taskRates } from "./leader_queries.ts";
import { type FileWriter, HydfsJobFiles, type JobFiles, JobFilesError } from "./job_files.ts";
import { isStaleTerm } from "./election.ts";
import { RESTART_RETRY_MS } from "./job_machine.ts";
import { encodeIndexEntry, encodeRecord as encodeJournalRecord, JOB_INDEX_NAME, journalName, type JournaledJob, type JournalRecord } from "./journal.ts";
import { readJournals } from "./takeover.ts";
import { type Clock, realClock } from "./clock.ts";
import type { RainstormTransport, TaskDeath } from "./transport.ts";
import type { JobEvent, JobSummary, KillJobAnswer, KillTaskAnswer, ListedTask, OutputsNotice, SourceReport } from "./model.ts";

export type { TaskInfo } from "./job_events.ts";

export type { JobEvent } from "./model.ts";

/** The answer (503) to a job submitted before this node's membership view is current. */
export const VIEW_NOT_READY_ERROR = "this node's membership view is not current yet (joining); retry in a moment";

export { LeaderError };

/** How long a finished job waits for the output notices of its last stage before `done` (see settleOutputs). */
export const DONE_NOTICES_WAIT_MS = 20_000;
/** How often it asks again meanwhile. */
export const NOTICE_SETTLE_RETRY_MS = 250;

export interface LeaderOptions {
  cfg: NodeConfig;
  log: Logger;
  worker: Worker;
  /** How the leader reaches workers, its own node's included (localFirst in start.ts). */
  transport: RainstormTransport;
  /** src, dest and task logs. Default: this node's hydfsd. */
  files?: JobFiles;
  /** Default: the process's clock; the simulator passes a virtual one. */
  clock?: Clock;
  /** This leader's term (election.ts), claimed by its seat (leader_seat.ts). Default 1: a leader that is never replaced (tests). */
  term?: number;
  /** Told once when this leader learns that it is stale (a worker refused its term): the seat steps it down. */
  onStale?: (why: string) => void;
}

/**
 * The leader's driver: it validates a job, then feeds events to the job state machine
 * (job_machine.ts) and carries out its commands through the transport, the job files and the
 * source; timers are the machine's, armed here.
 */
export class Leader {
  private readonly machine: JobMachine;
  private readonly runtimes = new Map<string, JobRuntime>();
  /**
   * The local memberd's view is current (services/member/readiness.ts). Until it is, the
   * worker list may be partial and HyDFS on this node coordinates nothing, so no job starts.
   */
  private viewReady = false;
  private jobCounter = 0;
  private readonly cfg: NodeConfig;
  private readonly log: Logger;
  private readonly worker: Worker;
  private readonly transport: RainstormTransport;
  private readonly files: JobFiles;
  private readonly clock: Clock;
  /** The one armed timer: when it is due, and how to cancel it. */
  private armed: { dueMs: number; cancel(): void } | undefined;
  readonly term: number;
  /** Jobs whose source is done and that wait for their last notices (settleOutputs). */
  private readonly finishing = new Set<string>();
  private readonly onStale: ((why: string) => void) | undefined;
  /** Stepped down (stop()): no more events, commands or source batches. */
  private stopped = false;
  /** Each job's journal writer (journal.ts), and its source position journaling. */
  private readonly journals = new Map<string, FileWriter>();

  constructor(opts: LeaderOptions) {
    this.cfg = opts.cfg;
    this.log = opts.log;
    this.worker = opts.worker;
    this.transport = opts.transport;
    this.files =
      opts.files ??
      new HydfsJobFiles(`http://${opts.cfg.host}:${opts.cfg.ports.hydfs}`, new ClusterHttp(opts.cfg.cluster_secret), opts.cfg.hydfs.request_timeout_ms);
    this.clock = opts.clock ?? realClock;
    this.term = opts.term ?? 1;
    this.onStale = opts.onStale;
    this.machine = new JobMachine({
      selfAddr: this.selfAddr,
      maxTaskRestarts: opts.cfg.rainstorm.max_task_restarts,
      logRetentionMs: opts.cfg.rainstorm.log_retention_ms,
      term: this.term,
    });
  }

  get selfAddr(): string {
    return `${this.cfg.host}:${this.cfg.ports.rainstorm}`;
  }

  /** Alive workers (suspects get no new tasks), as "host:port". */
  workers(): string[] {
    return this.machine.aliveWorkers();
  }

  // ---- the machine ---------------------------------------------------------------------------

  /** One event into the machine; its commands are carried out in order (see job_machine.ts). */
  private feed(input: JobInput): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const commands = this.machine.step(this.clock.nowMs(), input);
    this.arm();
    return this.run(commands);
  }

  /** Carry out commands, in order. */
  private async run(commands: JobCommand[]): Promise<void> {
    for (const c of commands) await this.exec(c);
  }

  /** One command. Returns a promise only for what the next command must wait for. */
  private exec(c: JobCommand): Promise<unknown> | undefined {
    const rt = "job" in c ? this.runtimes.get(c.job) : undefined;
    switch (c.cmd) {
      case "start": {
        const { job, stage, index } = c.start;
        void this.transport.startTask(c.addr, c.start).then(
          (r) => this.feed({ type: "task_started", job, stage, index, addr: c.addr, pid: r.pid, logPath: r.logPath }),
          (err: Error) => (this.staleIf(err) ? undefined : this.feed({ type: "task_start_failed", job, stage, index, addr: c.addr, error: err.message })),
        );
        return undefined;
      }
      case "routes":
        return this.toAll(c.addrs, (a) => this.transport.setRoutes(a, c.job, c.routes));
      case "stop_job":
        return this.toAll(c.addrs, (a) => this.transport.stopJob(a, c.job, c.endOfStream, this.term));
      case "journal":
        return this.journal(c.job, c.record);
      case "retire":
        void this.transport.retireTask(c.addr, c.job, c.stage, c.index, this.term).then(
          () => this.feed({ type: "retired", job: c.job, stage: c.stage, index: c.index, addr: c.addr }),
          (err: Error) => this.feed({ type: "retired", job: c.job, stage: c.stage, index: c.index, addr: c.addr, error: err.message }),
        );
        return undefined;
      case "sample_rates":
        void taskRates(this.transport, c.addrs).then((rates) => this.feed({ type: "rates", job: c.job, rates }));
        return undefined;
      case "run_source":
        this.startSource(c.job, c.addr, c.fromLine);
        return undefined;
      case "emit":
        if (rt) tell(rt, c.event);
        return undefined;
      case "submit_result":
        rt?.submitted?.(c.error);
        return undefined;
      case "job_ended":
        return undefined; // nothing of the job's waits here (dest is the tasks')
      case "remove_task_logs": {
        const stages = this.machine.job(c.job)?.spec.stages.length ?? 0;
        const names = c.tasks.filter((t) => keepsTaskLog(t.op, t.stage, stages)).map((t) => taskLogName(c.job, t.stage, t.index));
        if (names.length > 0) void this.removeLogs(c.job, names);
        return undefined;
      }
      case "forget_job":
        this.runtimes.delete(c.job);
        this.journals.delete(c.job);
        void this.files.remove(journalName(c.job)).catch((err: Error) => this.log.warn(`job ${c.job}: could not delete its journal: ${err.message}`));
        return undefined;
      case "log":
        this.log[c.level](c.text);
        return undefined;
      case "refuse":
        return undefined; // answered by stepOrRefuse's callers (outputs, kill_job)
    }
  }

  /** One call to each address; settles when all have; a refusal of this leader's term steps it down. */
  private async toAll(addrs: string[], call: (addr: string) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(addrs.map(call));
    for (const r of results) if (r.status === "rejected") this.staleIf(r.reason);
  }

  /** Whether `err` is a worker's refusal of this leader's term; if so, the seat is told (once) and this leader stops. */
  private staleIf(err: unknown): boolean {
    if (!isStaleTerm(err)) return false;
    if (!this.stopped) {
      this.log.warn(`leader of term ${this.term} is stale: ${(err as Error).message}; stepping down`);
      this.stop();
      this.onStale?.((err as Error).message);
    }
    return true;
  }

  /** Step down: no more events, commands or source batches; timers cancelled. What runs stays for the successor to adopt. */
  stop(): void {
    this.stopped = true;
    this.armed?.cancel();
    this.armed = undefined;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Append a record to a job's journal; a failure is logged (the job goes on, less durable). */
  private async journal(job: string, record: JournalRecord): Promise<void> {
    const j = this.journalOf(job);
    try {
      await j.write("append", encodeJournalRecord(record));
    } catch (err) {
      this.log.warn(`job ${job}: journal append (${record.k}) failed: ${(err as Error).message}; a successor may resume it from an older state`);
    }
  }

  private journalOf(job: string) {
    let j = this.journals.get(job);
    if (!j) this.journals.set(job, (j = this.files.writer(journalName(job), `leader-${this.term}-${this.selfAddr}-${job}`)));
    return j;
  }

  /** Step the machine with an input it may refuse (output notices, a cancel): a refusal is thrown as a LeaderError. */
  private stepOrRefuse(input: JobInput): JobCommand[] {
    const commands = this.machine.step(this.clock.nowMs(), input);
    this.arm();
    const refused = commands.find((c) => c.cmd === "refuse");
    if (refused?.cmd === "refuse") throw new LeaderError(refused.error, refused.status);
    return commands;
  }

  /** Keep one timer armed for the machine's earliest due time; it feeds a tick. */
  private arm(): void {
    const due = this.machine.nextDueMs();
    if (due === undefined || (this.armed && this.armed.dueMs <= due)) return;
    this.armed?.cancel();
    const timer = this.clock.after(Math.max(0, due - this.clock.nowMs()), () => {
      this.armed = undefined;
      void this.feed({ type: "tick" });
    });
    this.armed = { dueMs: due, cancel: () => timer.cancel() };
  }

  // ---- jobs ----------------------------------------------------------------------------------

  /** The local memberd says whether this node's view is current (MemberWatch onReady). */
  setViewReady(ready: boolean): void {
    if (ready === this.viewReady) return;
    this.viewReady = ready;
    if (ready) this.log.info("membership view current: accepting jobs");
    else this.log.warn(`membership view not current: refusing jobs with 503 until it is`);
  }

  /** Validate everything, then create dest, start every task and the source; `proposedId`: the submitter's id for the job. */
  async submit(spec: JobSpec, listener: (ev: JobEvent) => void, proposedId?: string): Promise<string> {
    if (proposedId !== undefined) {
      checkJobId(proposedId);
      if (this.machine.job(proposedId) || this.runtimes.has(proposedId)) throw new LeaderError(`job id ${proposedId} is in use; choose another`, 409);
    }
    if (!this.viewReady) throw new LeaderError(VIEW_NOT_READY_ERROR, 503);
    spec.stages.forEach((s, i) => checkOperator(this.worker, s.op, s.args, i));
    const autoscale = spec.autoscale ? autoscaleConfigOf(spec, this.cfg) : undefined;
    if (!(await this.exists(spec.src)))
      throw new LeaderError(`src ${JSON.stringify(spec.src)}: no such HyDFS file (store it first: ctl create <local> ${spec.src})`);
    if (await this.exists(spec.dest)) throw new LeaderError(`dest ${JSON.stringify(spec.dest)}: already exists in HyDFS; choose a new name`);
    if (this.workers().length === 0) throw new LeaderError("no alive worker to run tasks on", 503);

    const id = proposedId ?? `job-${Math.floor(this.clock.wallMs()).toString(36)}-${++this.jobCounter}`;
    const rt = this.runtimeFor(id, spec);
    listen(rt, listener);
    await writeDest(rt, "create", "");
    await this.openJournal(id);
    this.runtimes.set(id, rt);
    const started = new Promise<string | undefined>((resolve) => (rt.submitted = resolve));
    await this.feed({ type: "submit", id, spec, startedWallMs: Math.floor(this.clock.wallMs()), ...(autoscale ? { autoscale } : {}) });
    const error = await started;
    rt.submitted = undefined;
    if (error !== undefined) throw new LeaderError(`job ${id} could not start: ${error}`, 503);
    return id;
  }

  private async exists(name: string): Promise<boolean> {
    try {
      return await this.files.exists(name);
    } catch (err) {
      throw err instanceof JobFilesError ? new LeaderError(err.message, 503) : err;
    }
  }

  /** A new job's journal, and its line in the index of jobs, before it starts: without them a successor could not take it over. */
  private async openJournal(id: string): Promise<void> {
    try {
      await this.journalOf(id).write("create", "");
      const index = this.files.writer(JOB_INDEX_NAME, `leader-${this.term}-${this.selfAddr}-index-${id}`);
      const entry = encodeIndexEntry(id, this.term);
      // The index is created by the first job of the cluster; another leader's create racing it is fine.
      await index.write("append", entry).catch(async (err: Error) => {
        if (!/\b404\b/.test(err.message)) throw err;
        await index.write("create", "").catch((e: Error) => {
          if (!/\b409\b/.test(e.message)) throw e;
        });
        await index.write("append", entry);
      });
    } catch (err) {
      throw new LeaderError(`job ${id}: could not journal it in HyDFS: ${(err as Error).message}`, 503);
    }
  }

  /**
   * Take over the running jobs of earlier leaders (journal.ts), once, right after this leader's
   * term is claimed: every alive worker learns the term (so a stale leader is refused from now on)
   * and says which tasks it runs; each job still running by its journal is adopted (job_machine.ts
   * adopt). Resolves with the number of jobs taken over.
   */
  async recover(): Promise<number> {
    const found = new Map<string, Map<string, { addr: string; pid: number; logPath: string }>>();
    const sources = new Map<string, { addr: string; read: number; acked: number }>();
    await Promise.all(
      this.workers().map(async (addr) => {
        try {
          const here = await this.transport.adopt(addr, this.term);
          for (const t of here.tasks) {
            if (!t.alive) continue;
            if (!found.has(t.job)) found.set(t.job, new Map());
            found.get(t.job)!.set(`${t.stage}/${t.index}`, { addr, pid: t.pid, logPath: t.logPath });
          }
          for (const s of here.sources) sources.set(s.job, { addr, read: s.read, acked: s.acked });
        } catch (err) {
          if (!this.staleIf(err)) this.log.warn(`takeover: worker ${addr} did not answer (${(err as Error).message}); its tasks count as lost`);
        }
      }),
    );
    if (this.stopped) return 0;
    const jobs = await readJournals(this.files, this.log);
    for (const j of jobs) {
      if (this.stopped) break;
      const rt = this.runtimeFor(j.job, j.spec);
      this.runtimes.set(j.job, rt);
      const foundSource = sources.get(j.job);
      await this.feed({ type: "adopt", journaled: j, found: found.get(j.job) ?? new Map(), ...(foundSource ? { foundSource } : {}) });
      // An ended job is listed until forgotten; a watcher of it gets its final event (and its stream ends).
      if (j.status !== "running") tell(rt, finalEventOf(j));
    }
    return jobs.filter((j) => j.status === "running").length;
  }

  /** What the driver keeps of a job beside the machine's state (job_runtime.ts). */
  private runtimeFor(id: string, spec: JobSpec): JobRuntime {
    // Nobody listens yet (a takeover): lines still come for the streams that reattach (job_runtime.ts wantsLines).
    return {
      listeners: new Set(),
      recent: [],
      linesUntilMs: this.clock.nowMs() + TAKEOVER_LINES_GRACE_MS,
      dest: this.files.writer(spec.dest, `rainstorm-${id}-term${this.term}`),
    };
  }

  /** Start the job's source on worker `addr` (source_task.ts); a refusal moves it elsewhere a moment later. */
  private startSource(jobId: string, addr: string, fromLine: number): void {
    const job = this.machine.job(jobId);
    if (!job) return;
    const { spec } = job;
    const start = {
      job: jobId,
      src: spec.src,
      fromLine,
      inputRate: spec.inputRate,
      ...(spec.rateSchedule ? { rateSchedule: spec.rateSchedule } : {}),
      routes: job.routes,
    };
    void this.transport.startSource(addr, start).catch((err: Error) => {
      if (this.staleIf(err)) return;
      this.clock.after(RESTART_RETRY_MS, () => void this.feed({ type: "source_lost", job: jobId, addr, reason: `start failed: ${err.message}` }));
    });
  }

  /**
   * A source's report: its progress (journaled by the machine), or its end. Done means every
   * result is in dest (acknowledged end to end); the leader must also have heard of each before
   * `done` tells the count, so every worker first sends the notices it still holds.
   */
  async onSourceReport(r: SourceReport): Promise<void> {
    if (!this.machine.job(r.job)) throw new LeaderError(`source report: job ${r.job} is not known on this leader`, 404);
    await this.feed({ type: "source_progress", job: r.job, tuplesRead: r.read, acked: r.acked, addr: r.addr });
    if (r.state === "done") {
      if (this.finishing.has(r.job)) return;
      // The source is answered at once; the job ends once every notice is in (below).
      this.finishing.add(r.job);
      void this.settleOutputs(r.job)
        .then(() => this.feed({ type: "source_done", job: r.job, addr: r.addr }))
        .finally(() => this.finishing.delete(r.job));
    } else if (r.state === "failed") await this.feed({ type: "source_failed", job: r.job, addr: r.addr, error: r.error ?? "unknown error" });
  }

  /**
   * Before `done` tells the count, every output notice of the job must have reached this leader:
   * every alive worker sends what it holds (a task retired or moved may have left notices behind),
   * and until each last-stage task's worker has confirmed, again every NOTICE_SETTLE_RETRY_MS: a
   * worker that crashed meanwhile is confirmed only once its tasks restarted elsewhere (an
   * exactly-once task sends its recent notices again from its log). Gives up after
   * DONE_NOTICES_WAIT_MS with a warning (the count may be short; dest is complete either way).
   */
  private async settleOutputs(jobId: string): Promise<void> {
    const deadline = this.clock.nowMs() + DONE_NOTICES_WAIT_MS;
    for (;;) {
      const job = this.machine.job(jobId);
      if (!job || job.status !== "running" || this.stopped) return;
      const addrs = this.workers();
      const results = await Promise.allSettled(addrs.map((addr) => this.transport.flushOutputs(addr, jobId)));
      const confirmed = new Set(addrs.filter((_, i) => results[i]!.status === "fulfilled" && (results[i] as PromiseFulfilledResult<boolean>).value));
      const last = job.tasks.at(-1)!;
      const missing = last.filter((t) => !confirmed.has(t.addr) || job.starts.has(`${t.stage}/${t.index}`));
      if (missing.length === 0) return;
      if (this.clock.nowMs() >= deadline) {
        const where = missing.map((t) => `stage${t.stage}[${t.index}] on ${t.addr}`).join(", ");
        return this.log.warn(`job ${jobId}: no confirmation of the output notices of ${where} within ${DONE_NOTICES_WAIT_MS} ms; its tuples_out may be short`);
      }
      await this.clock.sleep(NOTICE_SETTLE_RETRY_MS);
    }
  }

  private async removeLogs(jobId: string, names: string[]): Promise<void> {
    const results = await Promise.allSettled(names.map((name) => this.files.remove(name)));
    const failures = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason?.message));
    if (failures.length > 0) this.log.warn(`job ${jobId}: could not delete ${failures.length} task logs (they stay in HyDFS): ${failures.join("; ")}`);
    else this.log.info(`job ${jobId}: deleted its ${names.length} task logs`);
  }

  // ---- outputs -------------------------------------------------------------------------------

  /**
   * A last-stage task's output notice: counted and streamed to the job's watchers (a refusal is a
   * LeaderError). Answers whether the job's next notices should carry their lines: not when nobody
   * has listened for OUTPUT_LINES_GRACE_MS (counts only), so an unwatched job's results do not
   * pass through the leader.
   */
  async outputs(notice: OutputsNotice): Promise<{ lines: boolean }> {
    // checkOutputsNotice (http.ts) has checked its form; the machine checks it fits the job.
    await this.run(this.stepOrRefuse({ type: "outputs", ...notice }));
    const rt = this.runtimes.get(notice.job);
    return { lines: !rt || wantsLines(rt, this.clock.nowMs()) };
  }

  /** The submitter's stream closed: it no longer listens (the job runs on). */
  unlisten(job: string, listener: (ev: JobEvent) => void): void {
    const rt = this.runtimes.get(job);
    if (rt) unlisten(rt, listener, this.clock.nowMs());
  }

  // ---- failures ------------------------------------------------------------------------------

  /** A worker reports that a task's operator died unasked: restart it. */
  async onTaskDied(report: TaskDeath): Promise<void> {
    await this.feed({ type: "task_exited", ...report });
  }

  /** Membership changed: tasks on workers that are gone move to alive ones. */
  onMembers(live: WatchedMember[]): void {
    const workers = live.filter((m) => m.state === "alive" && m.ports?.rainstorm).map((m) => `${memberHost(m.id)}:${m.ports.rainstorm}`);
    const hostsUp = live.filter((m) => m.state === "alive" || m.state === "suspect").map((m) => memberHost(m.id));
    void this.feed({ type: "members", workers, hostsUp });
  }

  // ---- list_tasks, kill_task -----------------------------------------------------------------

  private running(): MachineJob[] {
    return this.machine.allJobs().filter((j) => j.status === "running");
  }

  async listTasks(): Promise<ListedTask[]> {
    return listTasks(this.transport, this.running());
  }

  async killTask(node: string, pid: number): Promise<KillTaskAnswer> {
    return killTask(this.transport, this.running(), node, pid, this.term);
  }

  // ---- list_jobs, kill_job, watch_job -------------------------------------------------------

  /** Every job this leader runs or ran (finished ones stay until the leader forgets them). */
  jobList(): JobSummary[] {
    return this.machine.allJobs().map((j) => this.summary(j));
  }

  private summary(j: MachineJob): JobSummary {
    return jobSummary(j, this.clock.nowMs());
  }

  /** kill_job: stop every task of a running job and mark it cancelled; resolves once the tasks are stopped. */
  async killJob(id: string): Promise<KillJobAnswer> {
    await this.run(this.stepOrRefuse({ type: "cancel", job: id }));
    const j = this.machine.job(id)!;
    return { job: id, status: "cancelled", tuples_read: j.tuplesRead, tuples_out: j.tuplesOut, dest: j.spec.dest };
  }

  /**
   * watch_job: where the job is, its recent events, and `listener` hears every later one until
   * the job ends (or `stop`). Synchronous, so no event falls between the past and the live ones.
   */
  watch(id: string, listener: (ev: JobEvent) => void): { summary: JobSummary; recent: JobEvent[]; stop(): void } {
    const j = this.machine.job(id);
    const rt = this.runtimes.get(id);
    if (!j || !rt) throw new LeaderError(`job ${JSON.stringify(id)}: no such job on this leader (see ctl list_jobs)`, 404);
    if (j.status === "running") listen(rt, listener);
    return { summary: this.summary(j), recent: [...rt.recent], stop: () => unlisten(rt, listener, this.clock.nowMs()) };
  }
}

/** The final event of a job that ended under an earlier leader, from its journal. */
function finalEventOf(j: JournaledJob): JobEvent {
  const tuples = { tuples_read: j.tuplesRead ?? j.pos, tuples_out: j.tuplesOut ?? 0 };
  if (j.status === "failed") return { event: "failed", job: j.job, error: j.error ?? "failed under an earlier leader" };
  if (j.status === "cancelled") return { event: "cancelled", job: j.job, ...tuples, dest: j.spec.dest };
  const durationMs = j.durationMs ?? 0;
  const perS = durationMs > 0 ? Math.round(tuples.tuples_read / (durationMs / 1000)) : 0;
  return { event: "done", job: j.job, ...tuples, duration_ms: durationMs, tuples_per_s: perS, dest: j.spec.dest };
}
