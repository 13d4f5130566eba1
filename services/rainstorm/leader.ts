/**
 * The RainStorm leader: validates and places jobs, runs each job's source and sink, restarts
 * tasks whose operator died and reschedules the tasks of failed workers, answers list_tasks and
 * kill_task. It lives in the rainstormd of the leader node, beside that node's worker.
 *
 * Semantics (exactly_once=false): at-least-once. Acknowledgements are end to end (see
 * worker.ts), the source resends unacknowledged batches to restarted tasks, and the sink appends
 * to `dest` before it acknowledges, so every input line's results reach `dest`; a task restart
 * can repeat some. exactly_once=true: see exactly_once.ts.
 *
 * autoscale=true: once a second the leader reads every task's input rate (what list_tasks
 * shows) and feeds it to the job's AutoscalePolicy (autoscale.ts), which decides when a stage
 * gains or loses a task. A new task starts before any route names it; a removed task leaves
 * the routes first and is retired (stopped once idle), and batches still addressed to it are
 * re-routed by their senders, so nothing is lost or processed twice. Only stateless stages can
 * change size: the partitioning is hash mod task count, and moving per-key state between tasks
 * is not built, so a job with a stateful stage (aggregate, or any operator not known to be
 * stateless) and autoscale=true is refused with a message that says so.
 */
import { operatorFactory, STATELESS_OPERATORS } from "../../ops/registry.ts";
import type { NodeConfig } from "../node_config.ts";
import { HydfsWriter } from "../hydfs/writer.ts";
import { ClusterHttp, whyFailed } from "../shared/http.ts";
import { readLines } from "../shared/lines.ts";
import type { Logger } from "../shared/log.ts";
import type { WatchedMember } from "../member/watch.ts";
import { type JobSpec, partitionOf, placeRoundRobin, validateOperatorName } from "./plan.ts";
import type { Batch, Routes, TaskStart, Worker } from "./worker.ts";
import type { JobEvent, JobSummary, KillTaskAnswer, ListedTask, TaskDeath } from "./model.ts";
import { inputLine } from "./operator_proc.ts";
import { AutoscalePolicy, DEFAULT_AUTOSCALE, type ScalingDecision, validateAutoscaleConfig } from "./autoscale.ts";
import { rateAt, type RateStep, timeDueMs } from "./rate_schedule.ts";
import { isReplayable, RequestError, RUNNING_FROM_SOURCE } from "./worker.ts";
import { taskLogName } from "./exactly_once.ts";

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
}

export type { JobEvent } from "./model.ts";

interface Job {
  id: string;
  spec: JobSpec;
  status: "running" | "done" | "failed";
  startedMs: number;
  tuplesRead: number;
  tuplesOut: number;
  tasks: TaskInfo[][];
  routes: Routes;
  listeners: Set<(ev: JobEvent) => void>;
  history: JobEvent[];
  sinkQueue: { text: string; resolve: () => void; reject: (e: Error) => void }[];
  /** The running group-commit loop of the sink, if any; it ends when the queue is empty. */
  sinkFlush: Promise<void> | undefined;
  /** exactly_once: output ids already appended to dest. */
  sinkSeen: Set<string>;
  /** Writes dest through this node's hydfsd as client `rainstorm-<job>`. */
  dest: HydfsWriter;
  /** autoscale=true: the policy, its one-second timer, and whether a tick is still running. */
  autoscaler?: { policy: AutoscalePolicy; timer: Timer; busy: boolean };
}

/** How often the leader samples task rates for autoscaling (the policy counts samples). */
const AUTOSCALE_SAMPLE_MS = 1000;
/** How long the leader waits for a worker to retire a removed task (it stops once idle). */
const RETIRE_CALL_TIMEOUT_MS = 35_000;

/** The answer (503) to a job submitted before this node's membership view is current. */
export const VIEW_NOT_READY_ERROR = "this node's membership view is not current yet (joining); retry in a moment";

export class LeaderError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface LeaderOptions {
  cfg: NodeConfig;
  log: Logger;
  worker: Worker;
}

export class Leader {
  private readonly jobs = new Map<string, Job>();
  private live: WatchedMember[] = [];
  /**
   * The local memberd's view is current (services/member/readiness.ts). Until it is, the
   * worker list may be partial and HyDFS on this node coordinates nothing, so no job starts.
   */
  private viewReady = false;
  private jobCounter = 0;
  private readonly cfg: NodeConfig;
  private readonly log: Logger;
  private readonly worker: Worker;
  /** Signs every call to workers and HyDFS. */
  private readonly http: ClusterHttp;

  constructor(opts: LeaderOptions) {
    this.cfg = opts.cfg;
    this.http = new ClusterHttp(opts.cfg.cluster_secret);
    this.log = opts.log;
    this.worker = opts.worker;
  }

  get selfAddr(): string {
    return `${this.cfg.host}:${this.cfg.ports.rainstorm}`;
  }

  /** Alive workers (suspects get no new tasks), as "host:port". */
  workers(): string[] {
    return this.live
      .filter((m) => m.state === "alive" && m.ports?.rainstorm)
      .map((m) => `${m.id.split(":")[0]}:${m.ports.rainstorm}`)
      .sort();
  }

  // ---- HTTP helpers ----------------------------------------------------------------------------

  private async post(addr: string, path: string, body: unknown, timeoutMs = 5000): Promise<any> {
    const res = await this.http.fetch(`http://${addr}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), timeoutMs });
    const text = await res.text();
    let data: any = text;
    try {
      data = JSON.parse(text);
    } catch {}
    if (!res.ok) throw new Error(`${addr}${path}: ${res.status} ${data?.error ?? text}`);
    return data;
  }

  private hydfsUrl(path: string): string {
    return `http://${this.cfg.host}:${this.cfg.ports.hydfs}${path}`;
  }

  private async hydfsStat(name: string): Promise<boolean> {
    let res: Response;
    try {
      res = await this.http.fetch(this.hydfsUrl(`/stat?name=${encodeURIComponent(name)}`), { timeoutMs: this.cfg.hydfs.request_timeout_ms });
    } catch (err) {
      throw new LeaderError(`HyDFS unreachable on this node: ${whyFailed(err)}`, 503);
    }
    if (res.status === 404) return false;
    if (!res.ok) throw new LeaderError(`HyDFS stat of ${name}: ${res.status} ${await res.text()}`, 503);
    return true;
  }

  // ---- jobs ----------------------------------------------------------------------------------

  /** The local memberd says whether this node's view is current (MemberWatch onReady). */
  setViewReady(ready: boolean): void {
    if (ready === this.viewReady) return;
    this.viewReady = ready;
    if (ready) this.log.info("membership view current: accepting jobs");
    else this.log.warn(`membership view not current: refusing jobs with 503 until it is`);
  }

  /** Validate everything, then create dest, start every task and the source. */
  async submit(spec: JobSpec, listener: (ev: JobEvent) => void): Promise<string> {
    if (!this.viewReady) throw new LeaderError(VIEW_NOT_READY_ERROR, 503);
    spec.stages.forEach((s, i) => {
      try {
        validateOperatorName(s.op);
      } catch (err) {
        throw new LeaderError(`stage${i}: ${(err as Error).message}`);
      }
      const factory = operatorFactory(s.op);
      if (factory) {
        try {
          factory(s.args);
        } catch (err) {
          throw new LeaderError(`stage${i} ${s.op} ${JSON.stringify(s.args)}: ${(err as Error).message}`);
        }
      }
      try {
        this.worker.operatorCommand(s.op, s.args);
      } catch (err) {
        // A file that leads outside ops_dir (or is not executable) says so; a missing one is unknown.
        if (err instanceof RequestError) throw new LeaderError(`stage${i}: ${err.message}`);
        throw new LeaderError(`stage${i}: unknown operator ${JSON.stringify(s.op)} (no executable of that name in ${this.worker.opsDir()}${factory && RUNNING_FROM_SOURCE ? "; run npm run build" : ""})`);
      }
    });
    const autoscaleCfg = spec.autoscale ? this.autoscaleConfig(spec) : undefined;
    if (!(await this.hydfsStat(spec.src))) throw new LeaderError(`src ${JSON.stringify(spec.src)}: no such HyDFS file (store it first: ctl create <local> ${spec.src})`);
    if (await this.hydfsStat(spec.dest)) throw new LeaderError(`dest ${JSON.stringify(spec.dest)}: already exists in HyDFS; choose a new name`);
    const workers = this.workers();
    if (workers.length === 0) throw new LeaderError("no alive worker to run tasks on", 503);

    const id = `job-${Date.now().toString(36)}-${++this.jobCounter}`;
    const job: Job = {
      id,
      spec,
      status: "running",
      startedMs: performance.now(),
      tuplesRead: 0,
      tuplesOut: 0,
      tasks: [],
      routes: { version: 1, stages: [], sink: this.selfAddr },
      listeners: new Set([listener]),
      history: [],
      sinkQueue: [],
      sinkFlush: undefined,
      sinkSeen: new Set(),
      dest: new HydfsWriter(() => [this.hydfsUrl("")], this.http, spec.dest, `rainstorm-${id}`),
    };
    await this.appendDest(job, "create", "");
    spec.stages.forEach((s, stage) => {
      const nodes = placeRoundRobin(workers, spec.tasksPerStage, stage * spec.tasksPerStage);
      job.tasks.push(nodes.map((addr, index) => ({ stage, index, op: s.op, args: s.args, addr, pid: 0, logPath: "", restarts: 0 })));
    });
    job.routes.stages = job.tasks.map((ts) => ts.map((t) => t.addr));
    this.jobs.set(id, job);
    // The source sends through this node's worker, which must know the routes too.
    this.worker.setRoutes(id, job.routes);
    try {
      await Promise.all(job.tasks.flat().map((t) => this.startTask(job, t)));
    } catch (err) {
      await this.fail(job, `starting tasks: ${(err as Error).message}`);
      throw new LeaderError(`job ${id} could not start: ${(err as Error).message}`, 503);
    }
    this.emit(job, { event: "accepted", job: id, tasks: job.tasks.flat().map((t) => ({ stage: t.stage, index: t.index, node: t.addr.split(":")[0]!, pid: t.pid })) });
    this.log.info(`job ${id} started: ${spec.stages.map((s) => `${s.op} ${s.args.join(" ")}`).join(" | ")}, ${spec.tasksPerStage} tasks per stage, ${spec.src} -> ${spec.dest}${autoscaleCfg ? `, autoscale LW ${spec.lowWatermark} HW ${spec.highWatermark} tuples/s per task` : ""}`);
    if (autoscaleCfg) job.autoscaler = { policy: new AutoscalePolicy(autoscaleCfg), timer: setInterval(() => void this.autoscaleTick(job), AUTOSCALE_SAMPLE_MS), busy: false };
    void this.runSource(job);
    return id;
  }

  private async startTask(job: Job, t: TaskInfo): Promise<void> {
    const start: TaskStart = { job: job.id, stage: t.stage, index: t.index, op: t.op, args: t.args, routes: job.routes, exactlyOnce: job.spec.exactlyOnce };
    const r = t.addr === this.selfAddr ? this.worker.startTask(start) : await this.post(t.addr, "/worker/start", start);
    t.pid = r.pid;
    t.logPath = r.logPath;
  }

  private emit(job: Job, ev: JobEvent): void {
    if (ev.event !== "output") job.history.push(ev);
    for (const l of job.listeners) l(ev);
  }

  private async runSource(job: Job): Promise<void> {
    const { spec } = job;
    const maxBatch = this.cfg.rainstorm.batch_size;
    // A constant input_rate is a one-step schedule (the last step's rate goes on forever).
    const steps: RateStep[] = spec.rateSchedule ?? (spec.inputRate > 0 ? [{ ratePerSec: spec.inputRate, durationMs: 1000 }] : []);
    const paced = steps.length > 0;
    // Paced, a batch holds ~50 ms of input, so a slow source still delivers promptly.
    const batchSizeAt = (ratePerSec: number) => (paced ? Math.max(1, Math.min(maxBatch, Math.ceil(ratePerSec / 20))) : maxBatch);
    let batchSize = batchSizeAt(steps[0]?.ratePerSec ?? 0);
    // Indexed by stage-0 task; autoscaling may change how many there are while the source runs.
    const pending = new Map<number, { lines: string; count: number }>();
    const inFlight = new Map<number, Set<Promise<void>>>();
    const all = new Set<Promise<void>>();
    let failed: Error | undefined;
    const send = async (index: number) => {
      const batch = pending.get(index);
      if (!batch || batch.count === 0) return;
      pending.delete(index);
      let window = inFlight.get(index);
      if (!window) inFlight.set(index, (window = new Set()));
      while (window.size >= this.cfg.rainstorm.window) await Promise.race(window);
      const p = this.worker
        .sendWithRetry(job.id, "task", { job: job.id, stage: 0, index, count: batch.count, lines: batch.lines })
        .catch((err) => {
          failed ??= err as Error;
        })
        .finally(() => {
          window.delete(p);
          all.delete(p);
        });
      window.add(p);
      all.add(p);
    };
    const sendAll = async () => {
      for (const index of [...pending.keys()]) await send(index);
    };
    const t0 = performance.now();
    let lineNo = 0;
    let taskCount = job.tasks[0]!.length;
    try {
      // The answer must start within the HyDFS timeout; the body then streams as long as the job reads it.
      const headersDue = new AbortController();
      const timer = setTimeout(() => headersDue.abort(new Error(`no answer from HyDFS within ${this.cfg.hydfs.request_timeout_ms} ms`)), this.cfg.hydfs.request_timeout_ms);
      const res = await this.http.fetch(this.hydfsUrl(`/get?name=${encodeURIComponent(spec.src)}`), { signal: headersDue.signal }).finally(() => clearTimeout(timer));
      if (!res.ok) throw new Error(`reading ${spec.src}: ${res.status} ${await res.text()}`);
      // Pacing: flush and sleep only when this far ahead of schedule (a few batches' worth), so
      // a paced source still sends full batches.
      const pace = async () => {
        const nowMs = performance.now();
        const rate = rateAt(steps, nowMs - t0);
        batchSize = batchSizeAt(rate);
        const aheadMs = Math.max(5, Math.min(50, (batchSize * taskCount * 1000) / rate));
        const waitMs = t0 + timeDueMs(steps, lineNo) - nowMs;
        if (waitMs > aheadMs) {
          await sendAll();
          await Bun.sleep(waitMs);
        }
      };
      for await (const line of readLines(res.body!)) {
        if (job.status !== "running") return;
        lineNo++;
        if (job.tasks[0]!.length !== taskCount) {
          // Stage 0 was rescaled: what waits for a removed task goes now (its sender re-routes it).
          taskCount = job.tasks[0]!.length;
          for (const index of [...pending.keys()]) if (index >= taskCount) await send(index);
        }
        const key = `${spec.src}:${lineNo}`;
        const index = partitionOf(key, taskCount);
        let batch = pending.get(index);
        if (!batch) pending.set(index, (batch = { lines: "", count: 0 }));
        batch.lines += inputLine(key, key, line.endsWith("\r") ? line.slice(0, -1) : line);
        // Await only when there is something to wait for: most lines are added synchronously.
        if (++batch.count >= batchSize) await send(index);
        if (paced) await pace();
        job.tuplesRead = lineNo;
      }
      job.tuplesRead = lineNo;
      await sendAll();
      while (all.size > 0) await Promise.race(all);
      if (failed) throw failed;
      // Every result is acknowledged by now; a flush still running is only a repeat's.
      await job.sinkFlush;
      if (job.status !== "running") return;
      job.status = "done";
      clearInterval(job.autoscaler?.timer);
      this.scheduleLogRemoval(job);
      const durationMs = performance.now() - job.startedMs;
      this.emit(job, {
        event: "done",
        job: job.id,
        tuples_read: job.tuplesRead,
        tuples_out: job.tuplesOut,
        duration_ms: Math.round(durationMs),
        tuples_per_s: Math.round(job.tuplesRead / Math.max(durationMs / 1000, 0.001)),
        dest: spec.dest,
      });
      this.log.info(`job ${job.id} done: ${job.tuplesRead} tuples in, ${job.tuplesOut} out, ${Math.round(durationMs)} ms`);
      await this.stopTasks(job);
    } catch (err) {
      if (job.status === "running") await this.fail(job, `source: ${(err as Error).message}`);
    }
  }

  private async fail(job: Job, error: string): Promise<void> {
    if (job.status !== "running") return;
    job.status = "failed";
    clearInterval(job.autoscaler?.timer);
    this.scheduleLogRemoval(job);
    this.log.warn(`job ${job.id} failed: ${error}`);
    for (const q of job.sinkQueue.splice(0)) q.reject(new Error("job failed"));
    this.emit(job, { event: "failed", job: job.id, error });
    await this.stopTasks(job);
  }

  /** Stop every task of a job; a finished job's tasks get end of stream first. */
  private async stopTasks(job: Job): Promise<void> {
    const endOfStream = job.status === "done";
    const addrs = new Set(job.tasks.flat().map((t) => t.addr));
    addrs.add(this.selfAddr);
    await Promise.allSettled([...addrs].map((a) => (a === this.selfAddr ? this.worker.stopJob(job.id, endOfStream) : this.post(a, "/worker/stop_job", { job: job.id, end_of_stream: endOfStream }))));
  }

  /** Exactly-once: the job's task logs go from HyDFS once rainstorm.log_retention_ms has passed. */
  private scheduleLogRemoval(job: Job): void {
    if (!job.spec.exactlyOnce) return;
    const names = job.tasks.flat().filter((t) => !isReplayable(t.op)).map((t) => taskLogName(job.id, t.stage, t.index));
    if (names.length === 0) return;
    const timer = setTimeout(() => void this.removeLogs(job.id, names), this.cfg.rainstorm.log_retention_ms);
    timer.unref();
  }

  private async removeLogs(jobId: string, names: string[]): Promise<void> {
    const results = await Promise.allSettled(
      names.map(async (name) => {
        const res = await this.http.fetch(this.hydfsUrl(`/delete?name=${encodeURIComponent(name)}`), { method: "POST", timeoutMs: this.cfg.hydfs.request_timeout_ms });
        // 404: the task never wrote a log (it took no input), or it is already gone.
        if (!res.ok && res.status !== 404) throw new Error(`${name}: ${res.status} ${await res.text()}`);
      }),
    );
    const failures = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason?.message));
    if (failures.length > 0) this.log.warn(`job ${jobId}: could not delete ${failures.length} task logs (they stay in HyDFS): ${failures.join("; ")}`);
    else this.log.info(`job ${jobId}: deleted its ${names.length} task logs`);
  }

  // ---- sink ----------------------------------------------------------------------------------

  /** Results of the last stage: streamed to the submitter, appended to dest, then acknowledged. */
  async sink(batch: Batch): Promise<void> {
    // decodeBatch(bytes, "sink") has checked the batch's form; here it must fit the job.
    const job = this.jobs.get(batch.job);
    if (!job) throw new LeaderError(`sink batch: job ${batch.job} is not known on this leader`, 404);
    const nStages = job.spec.stages.length;
    if (batch.stage !== nStages || batch.index !== 0) {
      throw new LeaderError(`sink batch: job ${job.id} has ${nStages} stages, so its results come as stage ${nStages} index 0, got stage ${batch.stage} index ${batch.index}`);
    }
    if (batch.ids && !job.spec.exactlyOnce) throw new LeaderError(`sink batch: job ${job.id} is not exactly-once; its results carry no ids`);
    if (job.status !== "running") return; // a late batch of a finished job: nothing to do
    let lines = batch.lines.split("\n").slice(0, -1);
    if (job.spec.exactlyOnce) {
      // Lines come with their output ids: a result already in dest is not appended again.
      const ids = batch.ids;
      if (!ids || ids.length !== lines.length) throw new LeaderError(`sink batch of job ${job.id}: exactly-once needs one id per line (${lines.length} lines, ${ids?.length ?? "no"} ids)`);
      const fresh: string[] = [];
      lines.forEach((line, i) => {
        if (job.sinkSeen.has(ids[i]!)) return;
        job.sinkSeen.add(ids[i]!);
        fresh.push(line);
      });
      lines = fresh;
      if (lines.length === 0) return;
    }
    job.tuplesOut += lines.length;
    this.emit(job, { event: "output", lines });
    await new Promise<void>((resolve, reject) => {
      job.sinkQueue.push({ text: `${lines.join("\n")}\n`, resolve, reject });
      this.flushSink(job);
    });
  }

  /** Group commit: everything queued goes to dest in one idempotent HyDFS append. */
  private flushSink(job: Job): void {
    // With a non-empty queue the loop awaits before its finally, so the finally's reset always
    // comes after this assignment, in the same turn as the check that the queue is empty.
    if (job.sinkFlush || job.sinkQueue.length === 0) return;
    job.sinkFlush = (async () => {
      try {
        while (job.sinkQueue.length > 0) {
          const group = job.sinkQueue.splice(0);
          try {
            await this.appendDest(job, "append", group.map((g) => g.text).join(""));
            for (const g of group) g.resolve();
          } catch (err) {
            for (const g of group) g.reject(err as Error);
          }
        }
      } finally {
        job.sinkFlush = undefined;
      }
    })();
  }

  /** create/append to dest, retried with the same sequence number (HyDFS applies it once). */
  private async appendDest(job: Job, kind: "create" | "append", text: string): Promise<void> {
    try {
      await job.dest.write(kind, text);
    } catch (err) {
      throw new LeaderError(`${(err as Error).message}`, 503);
    }
  }


  // ---- failures ------------------------------------------------------------------------------

  /** A worker reports that a task's operator died unasked: restart it. */
  async onTaskDied(report: TaskDeath): Promise<void> {
    const job = this.jobs.get(report.job);
    const t = job?.tasks[report.stage]?.[report.index];
    if (!job || !t || job.status !== "running" || t.pid !== report.pid) return;
    t.restarts++;
    if (t.restarts > this.cfg.rainstorm.max_task_restarts) {
      await this.fail(job, `task stage${t.stage}[${t.index}] (${t.op}) died ${t.restarts} times; last: ${report.reason}`);
      return;
    }
    const workers = this.workers();
    const addr = workers.includes(t.addr) ? t.addr : this.leastLoaded(workers);
    await this.restart(job, t, addr, report.reason);
  }

  /** Membership changed: tasks on workers that are gone move to alive ones. */
  onMembers(live: WatchedMember[]): void {
    this.live = live;
    const workers = this.workers();
    for (const job of this.jobs.values()) {
      if (job.status !== "running") continue;
      for (const t of job.tasks.flat()) {
        const host = t.addr.split(":")[0]!;
        if (live.some((m) => m.id.startsWith(`${host}:`) && (m.state === "alive" || m.state === "suspect"))) continue;
        if (workers.length === 0) continue;
        void this.restart(job, t, this.leastLoaded(workers), `worker ${host} failed`);
      }
    }
  }

  private leastLoaded(workers: string[]): string {
    const load = new Map(workers.map((w) => [w, 0]));
    for (const job of this.jobs.values()) if (job.status === "running") for (const t of job.tasks.flat()) if (load.has(t.addr)) load.set(t.addr, load.get(t.addr)! + 1);
    return [...load].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  }

  private async restart(job: Job, t: TaskInfo, addr: string, reason: string): Promise<void> {
    const moved = addr !== t.addr;
    t.addr = addr;
    if (moved) job.routes = nextRoutes(job);
    try {
      await this.startTask(job, t);
    } catch (err) {
      this.log.warn(`restart of task stage${t.stage}[${t.index}] on ${addr}: ${(err as Error).message}`);
      setTimeout(() => void this.onTaskDied({ job: job.id, stage: t.stage, index: t.index, pid: t.pid, reason: (err as Error).message }), 500);
      return;
    }
    if (moved) await this.broadcastRoutes(job);
    this.log.info(`job ${job.id}: task stage${t.stage}[${t.index}] restarted on ${addr} as pid ${t.pid} (${reason})`);
    this.emit(job, { event: "task_restarted", stage: t.stage, index: t.index, node: addr.split(":")[0]!, pid: t.pid, reason });
  }

  /** Send the job's routes to every worker of its tasks (and to `also`). */
  private async broadcastRoutes(job: Job, also: string[] = []): Promise<void> {
    this.worker.setRoutes(job.id, job.routes);
    const addrs = new Set([...job.tasks.flat().map((t) => t.addr), ...also]);
    addrs.delete(this.selfAddr);
    await Promise.allSettled([...addrs].map((a) => this.post(a, "/worker/routes", { job: job.id, routes: job.routes })));
  }

  // ---- autoscaling --------------------------------------------------------------------------

  /** The policy settings of an autoscale=true job, or a LeaderError saying why it cannot scale. */
  private autoscaleConfig(spec: JobSpec) {
    spec.stages.forEach((s, i) => {
      if (!isReplayable(s.op)) {
        throw new LeaderError(
          `autoscale=true: stage${i} runs ${s.op}, which is not a known stateless operator (${[...STATELESS_OPERATORS].join(", ")}); its task count cannot change because moving per-key state between tasks is not supported. Run with autoscale=false, or autoscale a pipeline of stateless operators`,
        );
      }
    });
    const r = this.cfg.rainstorm;
    const cfg = { ...DEFAULT_AUTOSCALE, lowWatermark: spec.lowWatermark, highWatermark: spec.highWatermark, sustainSamples: r.autoscale_sustain_samples, settleMs: r.autoscale_settle_ms, maxTasks: r.autoscale_max_tasks };
    if (!(spec.highWatermark > 0)) throw new LeaderError(`autoscale=true: HW must be above 0 tuples/s per task, got ${spec.highWatermark}`);
    try {
      validateAutoscaleConfig(cfg);
    } catch (err) {
      throw new LeaderError(`autoscale=true: ${(err as Error).message}`);
    }
    return cfg;
  }

  /** One sample: every task's rate to the policy, then carry out what it decides. */
  private async autoscaleTick(job: Job): Promise<void> {
    const a = job.autoscaler;
    if (!a || a.busy || job.status !== "running") return;
    a.busy = true;
    try {
      const rates = await this.taskRates([job]);
      const stages = job.tasks.map((ts, stage) => ({ stage, taskRates: ts.map((t) => rates.get(rateKey(job.id, t.stage, t.index, t.pid)) ?? null) }));
      for (const d of a.policy.observe(performance.now(), stages)) {
        if (job.status !== "running") break;
        const rates = `task rates ${stages[d.stage]!.taskRates.map((r) => r ?? "?").join(", ")} tuples/s`;
        if (d.to > d.from) await this.addTask(job, d, rates);
        else await this.removeTask(job, d, rates);
      }
    } catch (err) {
      this.log.warn(`job ${job.id}: autoscaling: ${(err as Error).message}`);
    } finally {
      a.busy = false;
    }
  }

  /** Grow a stage: the new task runs before any route names it, then everyone learns the routes. */
  private async addTask(job: Job, d: ScalingDecision, rates: string): Promise<void> {
    const stageTasks = job.tasks[d.stage]!;
    const workers = this.workers();
    if (workers.length === 0) return;
    const { op, args } = stageTasks[0]!;
    const t: TaskInfo = { stage: d.stage, index: stageTasks.length, op, args, addr: this.leastLoaded(workers), pid: 0, logPath: "", restarts: 0 };
    stageTasks.push(t);
    job.routes = nextRoutes(job);
    try {
      await this.startTask(job, t);
    } catch (err) {
      stageTasks.pop();
      job.routes = nextRoutes(job);
      this.log.warn(`job ${job.id}: autoscaling could not add stage${d.stage}[${t.index}] on ${t.addr}: ${(err as Error).message}`);
      return;
    }
    await this.broadcastRoutes(job);
    this.scaled(job, d, rates, `stage${d.stage}[${t.index}] started on ${t.addr.split(":")[0]} as pid ${t.pid}`);
  }

  /** Shrink a stage: its last task leaves the routes, then its worker retires it once idle. */
  private async removeTask(job: Job, d: ScalingDecision, rates: string): Promise<void> {
    const stageTasks = job.tasks[d.stage]!;
    if (stageTasks.length <= 1) return;
    const t = stageTasks.pop()!;
    job.routes = nextRoutes(job);
    await this.broadcastRoutes(job, [t.addr]);
    const body = { job: job.id, stage: t.stage, index: t.index };
    try {
      if (t.addr === this.selfAddr) await this.worker.retireTask(body.job, body.stage, body.index);
      else await this.post(t.addr, "/worker/retire", body, RETIRE_CALL_TIMEOUT_MS);
    } catch (err) {
      // Its worker is gone or slow: the task is out of the routes anyway, and whatever it did
      // not acknowledge is re-sent to the remaining tasks.
      this.log.warn(`job ${job.id}: retiring stage${t.stage}[${t.index}] on ${t.addr}: ${(err as Error).message}`);
    }
    this.scaled(job, d, rates, `stage${d.stage}[${t.index}] on ${t.addr.split(":")[0]} retired`);
  }

  private scaled(job: Job, d: ScalingDecision, rates: string, what: string): void {
    this.log.info(`job ${job.id}: autoscale stage${d.stage} ${d.from} -> ${d.to} tasks: ${d.reason} (${rates}); ${what}`);
    this.emit(job, { event: "scaled", stage: d.stage, from: d.from, to: d.to, avg_rate_per_task: Math.round(d.avgRatePerTask), reason: d.reason });
  }

  // ---- list_tasks, kill_task -----------------------------------------------------------------

  /** Each task's input rate (tuples/s in the last second), keyed by rateKey, from its worker. */
  private async taskRates(jobs: Job[]): Promise<Map<string, number>> {
    const addrs = new Set(jobs.flatMap((j) => j.tasks.flat().map((t) => t.addr)));
    const rates = new Map<string, number>();
    await Promise.allSettled(
      [...addrs].map(async (a) => {
        const list = a === this.selfAddr ? this.worker.list() : ((await (await this.http.fetch(`http://${a}/worker/tasks`, { timeoutMs: 2000 })).json()) as ReturnType<Worker["list"]>);
        for (const r of list) rates.set(rateKey(r.job, r.stage, r.index, r.pid), r.ratePerSec);
      }),
    );
    return rates;
  }

  async listTasks(): Promise<ListedTask[]> {
    const running = [...this.jobs.values()].filter((j) => j.status === "running");
    const rates = await this.taskRates(running);
    return running.flatMap((j) =>
      j.tasks.flat().map((t) => ({
        job: j.id,
        stage: t.stage,
        task: t.index,
        node: t.addr.split(":")[0]!,
        pid: t.pid,
        op: t.op,
        args: t.args,
        rate: rates.get(rateKey(j.id, t.stage, t.index, t.pid)) ?? null,
        restarts: t.restarts,
        log: t.logPath,
      })),
    );
  }

  async killTask(node: string, pid: number): Promise<KillTaskAnswer> {
    for (const j of this.jobs.values()) {
      if (j.status !== "running") continue;
      for (const t of j.tasks.flat()) {
        if (t.pid === pid && t.addr.split(":")[0] === node) {
          if (t.addr === this.selfAddr) this.worker.killPid(pid);
          else await this.post(t.addr, "/worker/kill", { pid });
          return { job: j.id, stage: t.stage, task: t.index, node, pid };
        }
      }
    }
    throw new LeaderError(`no running task with pid ${pid} on node ${node} (see list_tasks)`, 404);
  }

  jobList(): JobSummary[] {
    return [...this.jobs.values()].map((j) => ({ job: j.id, status: j.status, src: j.spec.src, dest: j.spec.dest, tuples_read: j.tuplesRead, tuples_out: j.tuplesOut }));
  }
}

/** The job's routes after its task list changed: the next version, from `job.tasks`. */
function nextRoutes(job: Job): Routes {
  return { ...job.routes, version: job.routes.version + 1, stages: job.tasks.map((ts) => ts.map((t) => t.addr)) };
}

function rateKey(job: string, stage: number, index: number, pid: number): string {
  return `${job}/${stage}/${index}/${pid}`;
}
