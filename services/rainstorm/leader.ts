/**
 * The RainStorm leader: validates and places jobs, runs each job's source and sink, restarts
 * tasks whose operator died and reschedules the tasks of failed workers, answers list_tasks and
 * kill_task. It lives in the rainstormd of the leader node, beside that node's worker.
 *
 * Semantics (exactly_once=false): at-least-once. Acknowledgements are end to end (see
 * worker.ts), the source resends unacknowledged batches to restarted tasks, and the sink appends
 * to `dest` before it acknowledges, so every input line's results reach `dest`; a task restart
 * can repeat some. exactly_once=true and autoscale=true are refused until they are built.
 */
import { operatorFactory } from "../../ops/registry.ts";
import type { NodeConfig } from "../shared/config.ts";
import { HydfsWriter } from "../hydfs/writer.ts";
import { readLines } from "../shared/lines.ts";
import type { Logger } from "../shared/log.ts";
import type { WatchedMember } from "../shared/member_watch.ts";
import { type JobSpec, partitionOf, placeRoundRobin, validateOperatorName } from "./plan.ts";
import type { Batch, Routes, TaskStart, Worker } from "./worker.ts";
import { inputLine } from "./operator_proc.ts";

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

export type JobEvent =
  | { event: "accepted"; job: string; tasks: { stage: number; index: number; node: string; pid: number }[] }
  | { event: "output"; lines: string[] }
  | { event: "task_restarted"; stage: number; index: number; node: string; pid: number; reason: string }
  | { event: "done"; job: string; tuples_read: number; tuples_out: number; duration_ms: number; tuples_per_s: number; dest: string }
  | { event: "failed"; job: string; error: string };

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
  sinkFlushing: boolean;
  /** exactly_once: output ids already appended to dest. */
  sinkSeen: Set<string>;
  /** Writes dest through this node's hydfsd as client `rainstorm-<job>`. */
  dest: HydfsWriter;
}

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
  private jobCounter = 0;
  private readonly cfg: NodeConfig;
  private readonly log: Logger;
  private readonly worker: Worker;

  constructor(opts: LeaderOptions) {
    this.cfg = opts.cfg;
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

  private headers(json = true): Record<string, string> {
    const h: Record<string, string> = json ? { "content-type": "application/json" } : {};
    if (this.cfg.cluster_secret) h.authorization = `Bearer ${this.cfg.cluster_secret}`;
    return h;
  }

  private async post(addr: string, path: string, body: unknown, timeoutMs = 5000): Promise<any> {
    const res = await fetch(`http://${addr}${path}`, { method: "POST", headers: this.headers(), body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
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
      res = await fetch(this.hydfsUrl(`/stat?name=${encodeURIComponent(name)}`), { headers: this.headers(false), signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      throw new LeaderError(`HyDFS unreachable on this node: ${(err as Error).message}`, 503);
    }
    if (res.status === 404) return false;
    if (!res.ok) throw new LeaderError(`HyDFS stat of ${name}: ${res.status} ${await res.text()}`, 503);
    return true;
  }

  // ---- jobs ----------------------------------------------------------------------------------

  /** Validate everything, then create dest, start every task and the source. */
  async submit(spec: JobSpec, listener: (ev: JobEvent) => void): Promise<string> {
    if (spec.autoscale) throw new LeaderError("autoscale=true is not supported yet (it arrives with the autoscaling issue); run with autoscale=false");
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
      } catch {
        throw new LeaderError(`stage${i}: unknown operator ${JSON.stringify(s.op)} (no executable of that name in ${this.worker.opsDir()}${factory ? "; run npm run build" : ""})`);
      }
    });
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
      sinkFlushing: false,
      sinkSeen: new Set(),
      dest: new HydfsWriter(() => [this.hydfsUrl("")], this.cfg.cluster_secret, spec.dest, `rainstorm-${id}`),
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
    this.log.info(`job ${id} started: ${spec.stages.map((s) => `${s.op} ${s.args.join(" ")}`).join(" | ")}, ${spec.tasksPerStage} tasks per stage, ${spec.src} -> ${spec.dest}`);
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
    const n0 = spec.tasksPerStage;
    const batchSize = spec.inputRate > 0 ? Math.max(1, Math.min(this.cfg.rainstorm.batch_size, Math.ceil(spec.inputRate / 20))) : this.cfg.rainstorm.batch_size;
    const pending = Array.from({ length: n0 }, () => ({ lines: "", count: 0 }));
    const inFlight: Set<Promise<void>>[] = Array.from({ length: n0 }, () => new Set());
    const all = new Set<Promise<void>>();
    let failed: Error | undefined;
    const send = async (index: number) => {
      const { lines, count } = pending[index]!;
      if (count === 0) return;
      pending[index] = { lines: "", count: 0 };
      const window = inFlight[index]!;
      while (window.size >= this.cfg.rainstorm.window) await Promise.race(window);
      const p = this.worker
        .sendWithRetry(job.id, "task", { job: job.id, stage: 0, index, count, lines })
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
    const t0 = performance.now();
    let lineNo = 0;
    try {
      const res = await fetch(this.hydfsUrl(`/get?name=${encodeURIComponent(spec.src)}`), { headers: this.headers(false) });
      if (!res.ok) throw new Error(`reading ${spec.src}: ${res.status} ${await res.text()}`);
      // Pacing: with a rate, flush and sleep only when this far ahead of schedule (a few batches'
      // worth), so a paced source still sends full batches.
      const aheadMs = spec.inputRate > 0 ? Math.max(5, Math.min(50, (batchSize * n0 * 1000) / spec.inputRate)) : 0;
      const pace = async () => {
        const waitMs = t0 + (lineNo / spec.inputRate) * 1000 - performance.now();
        if (waitMs > aheadMs) {
          for (let i = 0; i < n0; i++) await send(i);
          await Bun.sleep(waitMs);
        }
      };
      for await (const line of readLines(res.body!)) {
        if (job.status !== "running") return;
        lineNo++;
        const key = `${spec.src}:${lineNo}`;
        const index = partitionOf(key, n0);
        const batch = pending[index]!;
        batch.lines += inputLine(key, key, line.endsWith("\r") ? line.slice(0, -1) : line);
        // Await only when there is something to wait for: most lines are added synchronously.
        if (++batch.count >= batchSize) await send(index);
        if (spec.inputRate > 0) await pace();
        job.tuplesRead = lineNo;
      }
      job.tuplesRead = lineNo;
      for (let i = 0; i < n0; i++) await send(i);
      while (all.size > 0) await Promise.race(all);
      if (failed) throw failed;
      await this.flushSinkIdle(job);
      if (job.status !== "running") return;
      job.status = "done";
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

  // ---- sink ----------------------------------------------------------------------------------

  /** Results of the last stage: streamed to the submitter, appended to dest, then acknowledged. */
  async sink(batch: Batch): Promise<void> {
    const job = this.jobs.get(batch.job);
    if (!job || job.status !== "running") return; // a late batch of a finished job: nothing to do
    let lines = batch.lines.split("\n").slice(0, -1);
    if (job.spec.exactlyOnce) {
      // Lines carry their output ids: a result already in dest is not appended again.
      const fresh: string[] = [];
      for (const line of lines) {
        const { id, key, value } = JSON.parse(line) as { id: string; key: string; value: string };
        if (job.sinkSeen.has(id)) continue;
        job.sinkSeen.add(id);
        fresh.push(`${key}\t${value}`);
      }
      lines = fresh;
      if (lines.length === 0) return;
    }
    job.tuplesOut += lines.length;
    this.emit(job, { event: "output", lines });
    await new Promise<void>((resolve, reject) => {
      job.sinkQueue.push({ text: `${lines.join("\n")}\n`, resolve, reject });
      void this.flushSink(job);
    });
  }

  /** Group commit: everything queued goes to dest in one idempotent HyDFS append. */
  private async flushSink(job: Job): Promise<void> {
    if (job.sinkFlushing) return;
    job.sinkFlushing = true;
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
      job.sinkFlushing = false;
    }
  }

  private async flushSinkIdle(job: Job): Promise<void> {
    const deadline = performance.now() + 60_000;
    while ((job.sinkFlushing || job.sinkQueue.length > 0) && performance.now() < deadline) await Bun.sleep(10);
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
  async onTaskDied(report: { job: string; stage: number; index: number; pid: number; reason: string }): Promise<void> {
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
    if (moved) {
      job.routes = { ...job.routes, version: job.routes.version + 1, stages: job.tasks.map((ts) => ts.map((x) => x.addr)) };
    }
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

  private async broadcastRoutes(job: Job): Promise<void> {
    this.worker.setRoutes(job.id, job.routes);
    const addrs = new Set(job.tasks.flat().map((t) => t.addr));
    addrs.delete(this.selfAddr);
    await Promise.allSettled([...addrs].map((a) => this.post(a, "/worker/routes", { job: job.id, routes: job.routes })));
  }

  // ---- list_tasks, kill_task -----------------------------------------------------------------

  async listTasks(): Promise<Record<string, unknown>[]> {
    const running = [...this.jobs.values()].filter((j) => j.status === "running");
    const addrs = new Set(running.flatMap((j) => j.tasks.flat().map((t) => t.addr)));
    const rates = new Map<string, number>();
    await Promise.allSettled(
      [...addrs].map(async (a) => {
        const list = a === this.selfAddr ? this.worker.list() : ((await (await fetch(`http://${a}/worker/tasks`, { headers: this.headers(false), signal: AbortSignal.timeout(2000) })).json()) as ReturnType<Worker["list"]>);
        for (const r of list) rates.set(`${r.job}/${r.stage}/${r.index}/${r.pid}`, r.ratePerSec);
      }),
    );
    return running.flatMap((j) =>
      j.tasks.flat().map((t) => ({
        job: j.id,
        stage: t.stage,
        task: t.index,
        node: t.addr.split(":")[0],
        pid: t.pid,
        op: t.op,
        args: t.args,
        rate: rates.get(`${j.id}/${t.stage}/${t.index}/${t.pid}`) ?? null,
        restarts: t.restarts,
        log: t.logPath,
      })),
    );
  }

  async killTask(node: string, pid: number): Promise<{ job: string; stage: number; task: number; node: string; pid: number }> {
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

  jobList(): Record<string, unknown>[] {
    return [...this.jobs.values()].map((j) => ({ job: j.id, status: j.status, src: j.spec.src, dest: j.spec.dest, tuples_read: j.tuplesRead, tuples_out: j.tuplesOut }));
  }
}
