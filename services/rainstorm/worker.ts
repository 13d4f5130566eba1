/**
 * The worker agent on every node: runs one operator process per task and moves tuples between
 * tasks in batches (msgpack over HTTP keep-alive, one request per batch, never per tuple).
 *
 * Acknowledgement is end to end: a task answers an input batch only once the operator has
 * answered every tuple in it AND every resulting output batch has been acknowledged downstream
 * (finally: a last-stage task's results are durable in dest, which it appends to itself,
 * dest_writer.ts). So when a task dies, everything it had not passed on is still
 * unacknowledged upstream and is resent, to wherever the leader restarted the task: nothing is
 * lost (at-least-once). Bounded windows at every step make a slow operator slow the source.
 *
 * Here: the task lifecycle (start, stop, retire, kill, list). Elsewhere: the checks of what
 * comes from the wire (wire_checks.ts), operator files (ops_dir.ts), outgoing batches and routes
 * (router.ts), the exactly-once steps (eo_pump.ts), dest appends (dest_writer.ts) and the output
 * notices to the leader (outputs.ts), rates and guards on timers (worker_upkeep.ts).
 */
import { join } from "node:path";
import { memberHost } from "../member/state.ts";
import { isStatelessOperator } from "../../ops/registry.ts";
import type { NodeConfig } from "../node_config.ts";
import { ClusterHttp } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import { type Clock, realClock } from "./clock.ts";
import { destClientId, hydfsDest, noticeFrom, type OpenDest, TaskDest } from "./dest_writer.ts";
import { handleExactlyOnce, type PumpContext, recover } from "./eo_pump.ts";
import { RequestError, TaskGone } from "./errors.ts";
import { STALE_TERM } from "./election.ts";
import { TaskLog, taskLogName } from "./exactly_once.ts";
import { DISK_LOGS, type LocalLogs, type OperatorCommand, operatorCommand, opsDirOf, processSpawner, taskStderrLogPath } from "./ops_dir.ts";
import { MAX_STAGES, MAX_TASKS_PER_STAGE } from "./plan.ts";
import { OutputNotices } from "./outputs.ts";
import { BatchRouter } from "./router.ts";
import type { TaskLogStore, TaskOperator, TaskRunner } from "./task.ts";
import { FLUSH_OUTPUTS_WAIT_MS, HttpTransport, type RainstormTransport } from "./transport.ts";
import type { Adopted, Batch, Routes, SourceStart, TaskDeath, TaskStart, WorkerTask } from "./model.ts";
import { checkIndex, checkJobId, checkSourceStart, checkTaskStart } from "./wire_checks.ts";
import { HydfsJobFiles } from "./job_files.ts";
import { WorkerSources } from "./source_task.ts";
import { type LeaderJobs, WorkerUpkeep } from "./worker_upkeep.ts";

// The wire shapes live in model.ts; their old home keeps the names for its importers.
export type { Batch, Routes, TaskStart } from "./model.ts";

// What http.ts, leader.ts and the tests have always imported from here.
export { RequestError, TaskGone } from "./errors.ts";
export {
  BatchError,
  checkIndex,
  checkJobId,
  checkOutputsNotice,
  checkRoutes,
  checkTaskStart,
  decodeBatch,
  encodeBatch,
  tupleLinesProblem,
  JOB_ID_PATTERN,
  MAX_BATCH_TUPLES,
  MAX_OPERATOR_ARG_CHARS,
  MAX_OPERATOR_ARGS,
  resultLinesProblem,
} from "./wire_checks.ts";
export { NOTICE_QUEUE_MAX, RECENT_NOTICES_PER_TASK } from "./outputs.ts";
export { checkOpsDir, type LocalLogs, isInside, operatorFile, opsDirOf, RUNNING_FROM_SOURCE, taskStderrLogPath } from "./ops_dir.ts";
export { destLine, splitBatch } from "./router.ts";
export type { LeaderJobs } from "./worker_upkeep.ts";

/** Under exactly-once, a stateless built-in operator (ops/registry.ts) skips the task log; any other keeps it. */
export function isReplayable(op: string): boolean {
  return isStatelessOperator(op);
}

/**
 * Whether a task of an exactly-once job keeps a task log: a stateful (or unknown) operator does,
 * and so does every task of the last stage, whatever its operator: its record numbers are its
 * dest sequence numbers (dest_writer.ts), and its log is what it knows of its results in dest.
 */
export function keepsTaskLog(op: string, stage: number, stages: number): boolean {
  return !isReplayable(op) || stage === stages - 1;
}

/** After end of stream, how long an operator may take to exit on its own before it is killed. */
const EOS_GRACE_MS = 2000;
/**
 * A task removed by autoscaling stops once it has been idle this long. Batches its upstream sent
 * just before the new routes arrived land within a round trip; longer only delays the stop.
 */
const RETIRE_QUIET_MS = 500;
/** ...or after this long in any case (its leftovers are then re-routed by their senders). */
const RETIRE_TIMEOUT_MS = 30_000;
const RETIRE_POLL_MS = 20;
/**
 * How long stopping a job waits for its output notices to reach the leader: well within the
 * leader's deadline for the stop call (CONTROL_CALL_TIMEOUT_MS), so a leader that is away delays
 * a stop only this much.
 */
const STOP_NOTICES_WAIT_MS = 2000;
/** Largest number of input batches a task works on at once (its share of the pipeline window). */
const TASK_CONCURRENCY = 16;

export interface WorkerOptions {
  cfg: NodeConfig;
  log: Logger;
  /** Told when a task's operator dies without being asked to (the leader restarts it). */
  onTaskDied: (t: TaskDeath) => void;
  /** How batches reach the next hop. Default: HTTP, signed with cfg.cluster_secret. */
  transport?: RainstormTransport;
  /** Default: the process's clock. */
  clock?: Clock;
  /** Run a task's operator. Default: the executable from ops_dir as a process (operatorCommand). */
  spawnOperator?: (start: TaskStart, logPath: string) => TaskOperator;
  /** A task's exactly-once log. Default: in HyDFS, through this node's hydfsd first (TaskLog). */
  taskLog?: (name: string, incarnation: string) => TaskLogStore;
  /** Default: files under <data_dir>/rainstorm/logs. */
  localLogs?: LocalLogs;
  /**
   * Where to ask which jobs are still running (the orphan guard, worker_guards.ts). Without it
   * (the simulator, tests) the tasks of a job run until the leader stops them.
   */
  leader?: LeaderJobs;
  /** The leader's "host:port" now (output notices go there), undefined while there is none. Default: none. */
  leaderAddr?: () => string | undefined;
  /** A last-stage task's dest. Default: in HyDFS, through this node's hydfsd first (hydfsDest). */
  openDest?: OpenDest;
  /** Told when a leader of a higher term than any before calls this worker (the node's leader seat steps down if it is not that leader). */
  onLeaderTerm?: (term: number) => void;
  /** A source's input lines. Default: src in HyDFS, through this node's hydfsd. */
  sourceLines?: (src: string) => Promise<AsyncIterable<string>>;
  /**
   * Run once when the worker has become idle (worker_upkeep.ts IDLE_COLLECT_MS): rainstormd passes
   * a full garbage collection. Default: nothing (the simulator runs many workers in one process).
   */
  collectGarbage?: () => void;
}

export class Worker {
  private readonly tasks = new Map<string, TaskRunner>();
  private readonly router: BatchRouter;
  /** Rate samples, hung operators and orphans, on timers (worker_upkeep.ts); stop() ends it. */
  private readonly upkeep: WorkerUpkeep;
  readonly logDir: string;
  /** Signs every HyDFS call. */
  private readonly http: ClusterHttp;
  private readonly clock: Clock;
  private readonly files: LocalLogs;
  private readonly pump: PumpContext;
  /** What the last-stage tasks tell the leader (outputs.ts). */
  private readonly notices: OutputNotices;
  private readonly openDest: OpenDest;
  /** Log appends of this worker's exactly-once tasks so far (for rainstorm.failpoint). */
  private logAppends = 0;
  /** rainstorm.failpoint parsed: which crash, at which of this worker's log appends (tests only). */
  private readonly failpoint: { name: string; at: number } | undefined;
  private otherHydfs: string[] = [];
  /** The highest leader term that has called this worker: calls of a lower one are refused (fence). */
  private leaderTerm = 0;
  /** The job sources this worker runs (source_task.ts). */
  private readonly sources: WorkerSources;

  constructor(private readonly opts: WorkerOptions) {
    this.http = new ClusterHttp(opts.cfg.cluster_secret);
    this.clock = opts.clock ?? realClock;
    this.files = opts.localLogs ?? DISK_LOGS;
    const r = opts.cfg.rainstorm;
    const transport = opts.transport ?? new HttpTransport(this.http);
    this.router = new BatchRouter({
      transport,
      clock: this.clock,
      log: opts.log,
      batchSize: r.batch_size,
      batchTimeoutMs: r.batch_timeout_ms,
    });
    this.notices = new OutputNotices({
      send: (addr, n) => transport.sendOutputs(addr, n),
      leaderAddr: opts.leaderAddr ?? (() => undefined),
      clock: this.clock,
      log: opts.log,
    });
    this.openDest = opts.openDest ?? hydfsDest(() => this.hydfsBases(), this.http);
    this.sources = this.makeSources(transport);
    this.logDir = join(opts.cfg.data_dir, "rainstorm", "logs");
    this.files.mkdir(this.logDir);
    this.upkeep = new WorkerUpkeep({
      tasks: this.tasks,
      clock: this.clock,
      log: opts.log,
      settings: r,
      leader: opts.leader,
      note: (logPath, text) => this.note(logPath, text),
      stopJob: (job) => this.stopJob(job),
      onTaskDied: (t) => opts.onTaskDied(t),
      busy: () => this.tasks.size > 0 || this.sources.list().length > 0,
      collectGarbage: opts.collectGarbage ?? (() => {}),
    });
    const [name, at] = r.failpoint.split(":");
    this.failpoint = name ? { name, at: Number(at) } : undefined;
    this.pump = {
      router: this.router,
      clock: this.clock,
      logFlushMs: r.log_flush_ms,
      nextFailpoint: () => (this.failpoint?.at === ++this.logAppends ? this.failpoint.name : undefined),
      note: (t, text) => this.note(t.logPath, text),
      warn: (text) => opts.log.warn(text),
    };
  }

  stop(): void {
    this.upkeep.stop();
    this.notices.stop();
    this.sources.stopAll();
    for (const t of this.tasks.values()) this.stopTask(t);
    this.tasks.clear();
  }

  private key(job: string, stage: number, index: number): string {
    return `${job}/${stage}/${index}`;
  }

  /** A line in a task's local log, stamped with the wall clock. */
  private note(logPath: string, text: string): void {
    this.files.append(logPath, `${new Date(this.clock.wallMs()).toISOString()} ${text}\n`);
  }

  /** The command that runs operator `op` (see operatorCommand in ops_dir.ts). */
  operatorCommand(op: string, args: string[]): OperatorCommand {
    return operatorCommand(this.opsDir(), op, args);
  }

  opsDir(): string {
    return opsDirOf(this.opts.cfg);
  }

  /**
   * Start (or restart) a task. Everything in `raw` is checked here (checkTaskStart,
   * operatorFile) before any path is made or any process runs; a refusal is a RequestError.
   */
  startTask(raw: TaskStart): { pid: number; logPath: string } {
    const start = checkTaskStart(raw);
    this.fence(start.routes.term, `start of task ${start.job}/${start.stage}/${start.index}`);
    const custom = this.opts.spawnOperator;
    const spawn = custom ? (logPath: string) => custom(start, logPath) : processSpawner(this.operatorCommand(start.op, start.args));
    const logPath = taskStderrLogPath(this.logDir, start.job, start.stage, start.index);
    const k = this.key(start.job, start.stage, start.index);
    const old = this.tasks.get(k);
    if (old) this.stopTask(old);
    this.router.jobStarted(start.job);
    this.router.setRoutes(start.job, start.routes);
    const op = spawn(logPath);
    const runner: TaskRunner = {
      start,
      op,
      logPath,
      inputs: 0,
      outputs: 0,
      batches: 0,
      inputsAtSample: 0,
      ratePerSec: 0,
      stopping: false,
      active: 0,
      waiters: [],
    };
    this.tasks.set(k, runner);
    this.note(logPath, `task ${k} started: ${start.op} ${start.args.join(" ")} (pid ${op.pid})`);
    const stages = start.routes.stages.length;
    if (start.dest !== undefined) runner.dest = this.taskDest(start, start.dest, op.pid);
    // A deterministic stateless operator before the last stage needs no log: replaying an input
    // yields the same outputs with the same ids, which the next stage drops.
    if (start.exactlyOnce && keepsTaskLog(start.op, start.stage, stages)) runner.eo = recover(this.pump, runner, k, this.taskLog(start, k, op.pid));
    void op.exited.then((code) => {
      if (runner.stopping || this.tasks.get(k) !== runner) return;
      this.tasks.delete(k);
      const reason = runner.killedBecause ?? `operator exited with code ${code}${op.stderrTail()}`;
      this.note(logPath, `task ${k} died: ${reason}`);
      this.opts.log.warn(`task ${k} (pid ${op.pid}) died: ${reason}`);
      this.opts.onTaskDied({ job: start.job, stage: start.stage, index: start.index, pid: op.pid, reason });
    });
    return { pid: op.pid, logPath };
  }

  /** The exactly-once log of a task incarnation (a fresh client id starts its sequence numbers at 1 again). */
  private taskLog(start: TaskStart, k: string, pid: number): TaskLogStore {
    const name = taskLogName(start.job, start.stage, start.index);
    const incarnation = `${k}-${pid}-${Math.floor(this.clock.wallMs())}`;
    return this.opts.taskLog ? this.opts.taskLog(name, incarnation) : new TaskLog(() => this.hydfsBases(), this.http, name, incarnation);
  }

  /** A last-stage task's dest: one client id for the task under exactly-once, one per incarnation otherwise. */
  private taskDest(start: TaskStart, dest: string, pid: number): TaskDest {
    const eo = start.exactlyOnce === true;
    const clientId = destClientId(start.job, start.stage, start.index, eo ? undefined : `${pid}-${Math.floor(this.clock.wallMs())}`);
    return new TaskDest({
      store: this.openDest(dest, clientId),
      job: start.job,
      stage: start.stage,
      index: start.index,
      from: noticeFrom(start.stage, start.index, eo ? undefined : pid),
      notify: (n, again) => this.notices.push(n, again),
    });
  }

  /**
   * Resolves once every output notice of `job` has reached the leader: true, or false after
   * FLUSH_OUTPUTS_WAIT_MS (the leader calls this before it declares the job done).
   */
  flushOutputs(job: string): Promise<boolean> {
    return this.notices.flush(checkJobId(job), FLUSH_OUTPUTS_WAIT_MS);
  }

  /** HyDFS endpoints: this node's first, then every other live node's. */
  hydfsBases(): string[] {
    const own = `http://${this.opts.cfg.host}:${this.opts.cfg.ports.hydfs}`;
    return [own, ...this.otherHydfs.filter((b) => b !== own)];
  }

  /** Membership changed: remember where the other nodes' hydfsd are. */
  setMembers(live: { id: string; state: string; ports: { hydfs: number } }[]): void {
    this.otherHydfs = live.filter((m) => m.state === "alive" && m.ports?.hydfs).map((m) => `http://${memberHost(m.id)}:${m.ports.hydfs}`);
  }

  setRoutes(job: string, raw: Routes): void {
    this.fence(raw?.term, `routes of job ${job}`);
    const before = this.router.routesOf(job)?.term ?? 0;
    this.router.setRoutes(job, raw);
    // A new leader has taken the job over (its routes come once it has the job): it gets the recent notices again.
    if (before > 0 && (this.router.routesOf(job)?.term ?? 0) > before) this.notices.resendRecent(job);
  }

  /**
   * Fencing (election.ts): a call of a leader whose term is lower than one this worker has seen
   * is refused (409), so a leader paused past failure detection can neither start tasks, change
   * routes, stop, retire nor kill once its successor has called here. A higher term is remembered.
   * A call without a term (no leader made it: tests, tools) is not fenced.
   */
  fence(term: number | undefined, what: string): void {
    if (term === undefined) return;
    if (term < this.leaderTerm) throw new RequestError(`${what}: ${STALE_TERM} ${term}; this worker follows term ${this.leaderTerm}`, 409);
    if (term > this.leaderTerm) {
      this.leaderTerm = term;
      this.opts.onLeaderTerm?.(term);
    }
  }

  /** The highest leader term that has called this worker (0: none yet). */
  knownTerm(): number {
    return this.leaderTerm;
  }

  /** A new leader takes over: its term is fenced in, and it learns which tasks and sources run here. */
  adopt(term: number): Adopted {
    this.fence(term, "adopt");
    const adopted = { tasks: this.list(), sources: this.sources.list() };
    this.sources.retellEnds();
    return adopted;
  }

  /** This worker's job sources: src from HyDFS, stage-0 batches through the router, reports to the leader of the moment. */
  private makeSources(transport: RainstormTransport): WorkerSources {
    const { cfg } = this.opts;
    const files = new HydfsJobFiles(`http://${cfg.host}:${cfg.ports.hydfs}`, this.http, cfg.hydfs.request_timeout_ms);
    return new WorkerSources({
      clock: this.clock,
      log: this.opts.log,
      batchSize: cfg.rainstorm.batch_size,
      window: cfg.rainstorm.window,
      selfAddr: `${cfg.host}:${cfg.ports.rainstorm}`,
      lines: this.opts.sourceLines ?? ((src) => files.lines(src)),
      send: (batch) => this.router.sendWithRetry(batch.job, batch),
      stage0Tasks: (job) => this.router.routesOf(job)?.stages[0]?.length ?? 1,
      report: (r) => {
        const leader = this.opts.leaderAddr?.();
        return leader ? transport.reportSource(leader, r) : Promise.reject(new Error("no leader elected right now"));
      },
    });
  }

  /** Run a job's source here (a restart or a takeover resumes it after `fromLine`); checked and fenced like a task start. */
  startSource(raw: SourceStart): void {
    const start = checkSourceStart(raw);
    this.fence(start.routes.term, `start of the source of job ${start.job}`);
    this.router.jobStarted(start.job);
    this.router.setRoutes(start.job, start.routes);
    this.sources.start(start);
  }

  private stopTask(t: TaskRunner): void {
    t.stopping = true;
    t.op.kill();
    t.dest?.close();
    for (const w of t.waiters.splice(0)) w();
  }

  /**
   * Stop a job's tasks here. With `endOfStream` (the job finished), each operator gets end of
   * input (its stdin closes) and a moment to exit on its own; otherwise, and after that moment,
   * it is killed. Resolves once dest appends under way have ended and their output notices
   * reached the leader (at most STOP_NOTICES_WAIT_MS): a cancelled job's stream then holds every
   * line its tasks put in dest.
   */
  async stopJob(job: string, endOfStream = false, term?: number): Promise<number> {
    checkJobId(job);
    this.fence(term, `stop of job ${job}`);
    const stopped = await this.stopTasksOf(job, endOfStream);
    await this.notices.flush(job, STOP_NOTICES_WAIT_MS);
    this.notices.forgetJob(job);
    return stopped;
  }

  /** Stop a job's source and tasks here (see stopJob); its output notices stay as they are. */
  private async stopTasksOf(job: string, endOfStream = false): Promise<number> {
    this.sources.stop(job);
    this.router.jobStopped(job);
    const mine = [...this.tasks].filter(([, t]) => t.start.job === job);
    for (const [k] of mine) this.tasks.delete(k);
    await Promise.all(
      mine.map(async ([k, t]) => {
        t.stopping = true;
        t.dest?.close();
        for (const w of t.waiters.splice(0)) w();
        if (endOfStream) {
          this.note(t.logPath, `task ${k}: end of stream after ${t.inputs} tuples`);
          const code = await t.op.endInput(EOS_GRACE_MS);
          this.note(t.logPath, `task ${k}: operator ${code === undefined ? "killed after the grace period" : `exited with code ${code}`}`);
        } else t.op.kill();
        await t.dest?.drained();
      }),
    );
    return mine.length;
  }

  /**
   * This node was declared failed while it was away (a pause, a partition) and rejoins under a new
   * id: the leader has restarted its tasks and sources elsewhere, so the ones still here stop (no
   * end of stream). Without this, a task that resumes would still take the batches its senders
   * held for it and tell the old leader about them. Resolves with how many tasks stopped.
   */
  async abandonAll(reason: string): Promise<number> {
    const jobs = new Set([...this.tasks.values()].map((t) => t.start.job));
    for (const s of this.sources.list()) jobs.add(s.job);
    if (jobs.size > 0) this.opts.log.warn(`${reason}: stopping the tasks and sources of ${jobs.size} jobs here (the leader has moved them)`);
    let stopped = 0;
    // Their output notices stay queued: the results are in dest, and the leader must still hear of them.
    for (const job of jobs) stopped += await this.stopTasksOf(job);
    return stopped;
  }

  /**
   * Autoscaling removed a task (the leader already sent routes without it): let it finish what
   * it has - batches sent before the routes changed still arrive - and stop it once it has been
   * idle for `quietMs`. A batch that comes even later gets TaskGone and its sender re-routes it,
   * so nothing is processed twice. Resolves with the task's input count, or false if it is
   * not here.
   */
  async retireTask(
    job: string,
    stage: number,
    index: number,
    quietMs = RETIRE_QUIET_MS,
    timeoutMs = RETIRE_TIMEOUT_MS,
    term?: number,
  ): Promise<number | false> {
    const k = this.key(checkJobId(job), checkIndex(stage, "stage", MAX_STAGES), checkIndex(index, "index", MAX_TASKS_PER_STAGE));
    this.fence(term, `retire of task ${k}`);
    const t = this.tasks.get(k);
    if (!t) return false;
    const now = () => this.clock.nowMs();
    const deadline = now() + timeoutMs;
    let idleSince = now();
    let inputsSeen = t.inputs;
    while (now() < deadline) {
      if (t.active > 0 || t.waiters.length > 0 || t.inputs !== inputsSeen) {
        idleSince = now();
        inputsSeen = t.inputs;
      } else if (now() - idleSince >= quietMs) break;
      await this.clock.sleep(RETIRE_POLL_MS);
    }
    if (this.tasks.get(k) === t) this.tasks.delete(k);
    this.note(t.logPath, `task ${k}: retired by autoscaling after ${t.inputs} tuples`);
    this.stopTask(t);
    return t.inputs;
  }

  /** Kill one operator process of this worker, by pid (never any other process). */
  killPid(pid: number, term?: number): TaskStart | undefined {
    this.fence(term, `kill of pid ${pid}`);
    for (const t of this.tasks.values()) {
      if (t.op.pid === pid) {
        t.op.kill();
        return t.start;
      }
    }
    return undefined;
  }

  list(): WorkerTask[] {
    return [...this.tasks.values()].map((t) => ({
      job: t.start.job,
      stage: t.start.stage,
      index: t.start.index,
      op: t.start.op,
      args: t.start.args,
      pid: t.op.pid,
      ratePerSec: t.ratePerSec,
      inputs: t.inputs,
      outputs: t.outputs,
      batches: t.batches,
      active: t.active,
      waiting: t.waiters.length,
      logPath: t.logPath,
      alive: t.op.alive,
      ...(t.eo ? { dedupIds: t.eo.seen.size } : {}),
    }));
  }

  // ---- data plane ----------------------------------------------------------------------------

  /**
   * Whether a (decoded, well-formed) batch is for a task of a job this worker knows: an unknown
   * job is a RequestError 404, a stage the job does not have a 400, and a task of a known job
   * that does not run here (moved, retired, restarting, or the job stopped) is TaskGone, so its
   * sender re-routes it.
   */
  private taskFor(batch: Batch): TaskRunner {
    const k = this.key(batch.job, batch.stage, batch.index);
    const routes = this.router.routesOf(batch.job);
    if (!routes) {
      if (this.router.isStopped(batch.job)) throw new TaskGone(`job ${batch.job} stopped`);
      throw new RequestError(`batch: job ${batch.job} is not known on this worker`, 404);
    }
    if (batch.stage >= routes.stages.length)
      throw new RequestError(`batch: job ${batch.job} has ${routes.stages.length} stages; there is no stage ${batch.stage}`);
    const t = this.tasks.get(k);
    if (!t || t.stopping || !t.op.alive) throw new TaskGone(`task ${k} is not running here`);
    return t;
  }

  /**
   * One input batch for a task here: resolves once its outputs are acknowledged downstream (or,
   * for a task of the last stage, durable in dest). The batch must come from decodeBatch (or be
   * made here): its lines are then exactly `count` tuple lines.
   */
  async handleBatch(batch: Batch): Promise<void> {
    const t = this.taskFor(batch);
    this.router.noteFloor(batch.job, batch.floor);
    const k = this.key(batch.job, batch.stage, batch.index);
    while (t.active >= TASK_CONCURRENCY) await new Promise<void>((r) => t.waiters.push(r));
    if (t.stopping) throw new TaskGone(`task ${k} stopped`);
    t.active++;
    try {
      if (t.eo) return await handleExactlyOnce(this.pump, t, t.eo, batch);
      const answers = await t.op.processLines(batch.lines, batch.count);
      t.inputs += batch.count;
      t.batches++;
      for (const a of answers) t.outputs += a.outputs.length;
      if (t.dest) await t.dest.append(answers);
      else await this.router.forward(batch, answers);
    } finally {
      t.active--;
      t.waiters.shift()?.();
    }
  }
}
