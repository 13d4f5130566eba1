/**
 * The worker agent on every node: runs one operator process per task and moves tuples between
 * tasks in batches (msgpack over HTTP keep-alive, one request per batch, never per tuple).
 *
 * Acknowledgement is end to end: a task answers an input batch only once the operator has
 * answered every tuple in it AND every resulting output batch has been acknowledged downstream
 * (finally by the leader's sink). So when a task dies, everything it had not passed on is still
 * unacknowledged upstream and is resent, to wherever the leader restarted the task: nothing is
 * lost (at-least-once). Bounded windows at every step make a slow operator slow the source.
 */
import { Decoder, encode } from "@msgpack/msgpack";
import { appendFileSync, mkdirSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { isStatelessOperator, operatorFactory } from "../../ops/registry.ts";
import type { NodeConfig } from "../node_config.ts";
import { ClusterHttp } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import { replayLog, splitSeen, TaskLog, taskLogName } from "./exactly_once.ts";
import { type Answer, inputLine, OperatorProcess, type Output } from "./operator_proc.ts";
import { MAX_STAGES, MAX_TASKS_PER_STAGE, partitionOf, validateOperatorName } from "./plan.ts";
import type { Batch, Routes, TaskDeath, TaskStart, WorkerTask } from "./model.ts";

// The wire shapes live in model.ts; their old home keeps the names for its importers.
export type { Batch, Routes, TaskStart } from "./model.ts";

/**
 * The task a batch is for is not (or no longer) running here: it moved, was retired or is
 * restarting. Answered 503; the sender re-routes the batch with the routes it gets next.
 */
export class TaskGone extends Error {}

/**
 * A request this worker refuses as it is: answered with `status` (400 unless said otherwise) and
 * `{"error": message}`. Nothing of it reaches an operator or the file system.
 */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

// ---- what a worker accepts from the wire -------------------------------------------------------
// /worker/start, /data and /sink come from other processes: a worker checks every name and number
// in them itself before it turns one into a path, a process or operator input.

/**
 * Job ids as the leader makes them, `job-<Date.now() in base 36>-<counter>`. A job id names the
 * task log directory and the HyDFS task logs, so one from the wire must match this exactly.
 */
export const JOB_ID_PATTERN = /^job-[0-9a-z]{1,16}-[1-9][0-9]{0,15}$/;
/**
 * Most tuples in one batch, 1,000,000: far above batch_size (at most 65,536) times what one input
 * makes downstream, so only a broken or hostile sender reaches it. An outbox that holds more (an
 * operator that multiplies its input) is sent in several batches of at most this many.
 */
export const MAX_BATCH_TUPLES = 1_000_000;
/** Most arguments of one operator: as many words as a whole job may have (POST /jobs). */
export const MAX_OPERATOR_ARGS = 200;
/** Longest operator argument: 64 KiB, half of Linux's 128 KiB limit per argument of a program. */
export const MAX_OPERATOR_ARG_CHARS = 64 * 1024;
/** A worker or sink address in routes, "host:port" (an IPv4 address or a host name). */
const ADDRESS_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/;

/** `job` if it is a job id as the leader makes them, else a RequestError naming it. */
export function checkJobId(job: unknown, what = "job"): string {
  if (typeof job !== "string" || !JOB_ID_PATTERN.test(job)) {
    throw new RequestError(`${what}: expected a job id such as job-m1abc2de-1 (job-<base36>-<number>), got ${describe(job)}`);
  }
  return job;
}

/** `n` if it is an integer in [0, limit), else a RequestError naming `what`. */
export function checkIndex(n: unknown, what: string, limit: number): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n >= limit) {
    throw new RequestError(`${what}: expected an integer from 0 to ${limit - 1}, got ${describe(n)}`);
  }
  return n;
}

function checkAddress(a: unknown, what: string): string {
  const m = typeof a === "string" ? ADDRESS_PATTERN.exec(a) : null;
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65_535) throw new RequestError(`${what}: expected host:port, got ${describe(a)}`);
  return a as string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Routes from the wire, checked: a version, 1..MAX_STAGES stages of 1..MAX_TASKS_PER_STAGE host:port each, a sink. */
export function checkRoutes(raw: unknown): Routes {
  if (!isRecord(raw)) throw new RequestError(`routes: expected {version, stages, sink}, got ${describe(raw)}`);
  const version = checkIndex(raw.version, "routes.version", Number.MAX_SAFE_INTEGER);
  const stages = raw.stages;
  if (!Array.isArray(stages) || stages.length < 1 || stages.length > MAX_STAGES) throw new RequestError(`routes.stages: expected 1 to ${MAX_STAGES} stages, got ${describe(stages)}`);
  stages.forEach((tasks: unknown, s) => {
    if (!Array.isArray(tasks) || tasks.length < 1 || tasks.length > MAX_TASKS_PER_STAGE) throw new RequestError(`routes.stages[${s}]: expected 1 to ${MAX_TASKS_PER_STAGE} addresses, got ${describe(tasks)}`);
    tasks.forEach((a: unknown, i) => checkAddress(a, `routes.stages[${s}][${i}]`));
  });
  return { version, stages: stages as string[][], sink: checkAddress(raw.sink, "routes.sink") };
}

/** A /worker/start request, checked field by field (the leader's own checks are not relied on). */
export function checkTaskStart(raw: unknown): TaskStart {
  if (!isRecord(raw)) throw new RequestError(`task: expected {job, stage, index, op, args, routes}, got ${describe(raw)}`);
  const job = checkJobId(raw.job);
  const stage = checkIndex(raw.stage, "stage", MAX_STAGES);
  const index = checkIndex(raw.index, "index", MAX_TASKS_PER_STAGE);
  const op = checkOperatorName(raw.op);
  const args = raw.args;
  if (!Array.isArray(args) || args.length > MAX_OPERATOR_ARGS) throw new RequestError(`args: expected a list of at most ${MAX_OPERATOR_ARGS} strings, got ${describe(args)}`);
  args.forEach((a: unknown, i) => {
    // A NUL would end the argument early in the operator's argv.
    if (typeof a !== "string" || a.length > MAX_OPERATOR_ARG_CHARS || a.includes("\0")) {
      throw new RequestError(`args[${i}]: expected a string of at most ${MAX_OPERATOR_ARG_CHARS} characters without NUL, got ${describe(a)}`);
    }
  });
  const routes = checkRoutes(raw.routes);
  if (stage >= routes.stages.length) throw new RequestError(`stage: ${stage} is not a stage of the routes (${routes.stages.length} stages)`);
  if (raw.exactlyOnce !== undefined && typeof raw.exactlyOnce !== "boolean") throw new RequestError(`exactlyOnce: expected true or false, got ${describe(raw.exactlyOnce)}`);
  return { job, stage, index, op, args: args as string[], routes, ...(raw.exactlyOnce === undefined ? {} : { exactlyOnce: raw.exactlyOnce }) };
}

/** The operator name if it is a plain name (validateOperatorName), else a RequestError. */
function checkOperatorName(op: unknown): string {
  try {
    return validateOperatorName(op as string);
  } catch (err) {
    throw new RequestError((err as Error).message);
  }
}

/**
 * The executable of operator `op` in `opsDir`: `path` (opsDir/op, what the operator is invoked
 * as) and `real` (that file with every link followed, what is run). undefined when there is no
 * such file. The name must be plain (no '/', no '..', no control characters) and the real file
 * must lie inside the real opsDir: a link that leads out of it (ops/sh -> /bin/sh) is refused, so
 * the operators directory alone decides what can run. The built-in operators' links point to
 * rainstorm-op beside them, inside opsDir, so they are fine. The real file must be a regular,
 * executable file.
 */
export function operatorFile(opsDir: string, op: string): { path: string; real: string } | undefined {
  const name = checkOperatorName(op);
  const path = join(opsDir, name);
  let realDir: string;
  let real: string;
  try {
    realDir = realpathSync(opsDir);
    real = realpathSync(path);
  } catch {
    return undefined; // no such directory or file (or a dangling link): nothing runs
  }
  if (!isInside(realDir, real)) {
    throw new RequestError(`operator ${JSON.stringify(name)}: ${path} leads to ${real}, outside the operators directory ${realDir}; only files inside it can run`);
  }
  const st = statSync(real);
  if (!st.isFile()) throw new RequestError(`operator ${JSON.stringify(name)}: ${real} is not a regular file`);
  if ((st.mode & 0o111) === 0) throw new RequestError(`operator ${JSON.stringify(name)}: ${real} is not executable`);
  return { path, real };
}

/** Whether `path` lies strictly inside directory `dir` (both absolute and already resolved). */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The local log file of a task, `<logDir>/<job>/stage<s>-task<i>.log`, from checked parts only. */
export function taskLogPath(logDir: string, job: string, stage: number, index: number): string {
  const path = join(logDir, checkJobId(job), `stage${checkIndex(stage, "stage", MAX_STAGES)}-task${checkIndex(index, "index", MAX_TASKS_PER_STAGE)}.log`);
  if (!isInside(logDir, path)) throw new RequestError(`task log ${path}: outside ${logDir}`);
  return path;
}

/** A value in an error message: JSON, shortened. */
function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

const REPO_ROOT = resolve(import.meta.dir, "../..");
/** Under `bun services/rainstormd.ts` (a checkout) rather than a compiled executable. */
export const RUNNING_FROM_SOURCE = !import.meta.dir.startsWith("/$bunfs");

/** The operators directory: rainstorm.ops_dir, else `ops` beside the executable's `bin` (dist/ops), in a checkout dist/ops. */
export function opsDirOf(cfg: NodeConfig): string {
  const configured = cfg.rainstorm.ops_dir;
  if (configured) return resolve(configured);
  // Compiled daemons live in dist/bin, operators in dist/ops beside it.
  if (!RUNNING_FROM_SOURCE) return resolve(dirname(process.execPath), "..", "ops");
  return join(REPO_ROOT, "dist", "ops");
}

/**
 * rainstormd's start-up check of its operators directory: it must exist and be a directory, so a
 * node without its operators refuses to start instead of failing every job. In a checkout run by
 * bun with no ops_dir set, a missing dist/ops is fine (the built-in operators run from ops/*.ts).
 * Returns the directory; throws naming rainstorm.ops_dir otherwise.
 */
export function checkOpsDir(cfg: NodeConfig, fromSource = RUNNING_FROM_SOURCE): string {
  const dir = opsDirOf(cfg);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {}
  if (isDir || (fromSource && !cfg.rainstorm.ops_dir)) return dir;
  const where = cfg.rainstorm.ops_dir ? `rainstorm.ops_dir ${dir}` : `rainstorm.ops_dir (unset: ${dir}, the ops folder beside this executable's folder)`;
  throw new Error(`${where} is not a directory; no job could run here. Copy the operator executables (the ops folder shipped beside bin/) to it, or set rainstorm.ops_dir to the folder that holds them`);
}
/** How long outputs wait for more outputs to the same destination before they are sent. */
const OUTBOX_LINGER_MS = 2;
/** Under exactly-once, a stateless built-in operator (ops/registry.ts) skips the task log; any other keeps it. */
export function isReplayable(op: string): boolean {
  return isStatelessOperator(op);
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
/** Largest number of input batches a task works on at once (its share of the pipeline window). */
const TASK_CONCURRENCY = 16;

interface TaskRunner {
  start: TaskStart;
  op: OperatorProcess;
  logPath: string;
  inputs: number;
  outputs: number;
  batches: number;
  /** `inputs` at the last rate sample. */
  inputsAtSample: number;
  /** Inputs in the last full second, for list_tasks and the task log. */
  ratePerSec: number;
  stopping: boolean;
  active: number;
  waiters: (() => void)[];
  eo?: {
    log: TaskLog;
    /** Ids of every input processed (logged). */
    seen: Set<string>;
    /** Outputs of logged inputs not yet acknowledged downstream, by input id. */
    unacked: Map<string, Output[]>;
    /** Settles once the log is read and the operator's state restored. */
    ready: Promise<void>;
    /** Batches waiting for the exactly-once steps; a group goes through them at a time. */
    queue: { batch: Batch; resolve: () => void; reject: (e: Error) => void }[];
    pumping: boolean;
    /** When the last group started (performance.now()), for rainstorm.log_flush_ms. */
    lastCommitMs: number;
    snapshots: number;
  };
}

export interface WorkerOptions {
  cfg: NodeConfig;
  log: Logger;
  /** Told when a task's operator dies without being asked to (the leader restarts it). */
  onTaskDied: (t: TaskDeath) => void;
}

export class Worker {
  private readonly tasks = new Map<string, TaskRunner>();
  private readonly routes = new Map<string, Routes>();
  private readonly stoppedJobs = new Set<string>();
  private readonly outboxes = new Map<
    string,
    { job: string; kind: "task" | "sink"; stage: number; index: number; lines: string; count: number; ids: string[] | undefined; waiters: { resolve: () => void; reject: (e: Error) => void }[]; timer: Timer | undefined }
  >();
  private readonly rateTimer: Timer;
  readonly logDir: string;
  /** Signs every batch and HyDFS call. */
  private readonly http: ClusterHttp;

  constructor(private readonly opts: WorkerOptions) {
    this.http = new ClusterHttp(opts.cfg.cluster_secret);
    this.logDir = join(opts.cfg.data_dir, "rainstorm", "logs");
    mkdirSync(this.logDir, { recursive: true });
    this.rateTimer = setInterval(() => this.sampleRates(), 1000);
    const [name, at] = opts.cfg.rainstorm.failpoint.split(":");
    this.failpoint = name ? { name, at: Number(at) } : undefined;
  }

  stop(): void {
    clearInterval(this.rateTimer);
    for (const t of this.tasks.values()) this.stopTask(t);
    this.tasks.clear();
  }

  private key(job: string, stage: number, index: number): string {
    return `${job}/${stage}/${index}`;
  }

  /**
   * The command that runs operator `op`: an executable of that name in the operators directory
   * (see operatorFile: the checked real file runs, invoked as opsDir/op so the built-in
   * multi-call binary knows which operator it is); in a source checkout run by bun (not
   * compiled), a built-in operator's .ts entry works too. A name that is not plain, or a file
   * that leads outside the directory, is a RequestError.
   */
  operatorCommand(op: string, args: string[]): { cmd: string[]; argv0?: string } {
    const file = operatorFile(this.opsDir(), op);
    if (file) return { cmd: [file.real, ...args], argv0: file.path };
    if (RUNNING_FROM_SOURCE && operatorFactory(op)) return { cmd: [process.execPath, join(REPO_ROOT, "ops", "main.ts"), op, ...args] };
    // A checkout can build the operators; a VM runs what was shipped, so only ops_dir helps there.
    const hint = RUNNING_FROM_SOURCE ? "run npm run build, or set rainstorm.ops_dir" : "put the operator executable there, or set rainstorm.ops_dir";
    throw new TaskGone(`operator ${JSON.stringify(op)} not found in ${this.opsDir()} (${hint})`);
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
    const command = this.operatorCommand(start.op, start.args);
    const logPath = taskLogPath(this.logDir, start.job, start.stage, start.index);
    const k = this.key(start.job, start.stage, start.index);
    const old = this.tasks.get(k);
    if (old) this.stopTask(old);
    this.stoppedJobs.delete(start.job);
    this.setRoutes(start.job, start.routes);
    const jobDir = dirname(logPath);
    mkdirSync(jobDir, { recursive: true });
    const op = new OperatorProcess(command.cmd, logPath, RUNNING_FROM_SOURCE ? REPO_ROOT : jobDir, command.argv0);
    const runner: TaskRunner = { start, op, logPath, inputs: 0, outputs: 0, batches: 0, inputsAtSample: 0, ratePerSec: 0, stopping: false, active: 0, waiters: [] };
    this.tasks.set(k, runner);
    appendFileSync(logPath, `${new Date().toISOString()} task ${k} started: ${start.op} ${start.args.join(" ")} (pid ${op.pid})\n`);
    // A deterministic stateless operator needs no log: replaying an input yields the same
    // outputs with the same ids, which the next stage or the sink drops.
    if (start.exactlyOnce && !isReplayable(start.op)) runner.eo = this.recover(runner, k);
    void op.exited.then((code) => {
      if (runner.stopping || this.tasks.get(k) !== runner) return;
      this.tasks.delete(k);
      const reason = `operator exited with code ${code}${op.stderrTail()}`;
      appendFileSync(logPath, `${new Date().toISOString()} task ${k} died: ${reason}\n`);
      this.opts.log.warn(`task ${k} (pid ${op.pid}) died: ${reason}`);
      this.opts.onTaskDied({ job: start.job, stage: start.stage, index: start.index, pid: op.pid, reason });
    });
    return { pid: op.pid, logPath };
  }

  /** Exactly-once: read the task's log, restore the operator's state, remember processed inputs. */
  private recover(runner: TaskRunner, k: string): NonNullable<TaskRunner["eo"]> {
    const { start, op, logPath } = runner;
    const log = new TaskLog(() => this.hydfsBases(), this.http, taskLogName(start.job, start.stage, start.index), `${k}-${op.pid}-${Date.now()}`);
    const eo: NonNullable<TaskRunner["eo"]> = { log, seen: new Set<string>(), unacked: new Map<string, Output[]>(), ready: Promise.resolve(), queue: [], pumping: false, lastCommitMs: 0, snapshots: 0 };
    eo.ready = (async () => {
      const { seen, state, records, last } = replayLog(await log.load());
      eo.seen = seen;
      eo.unacked = new Map(last.map((a) => [a.id, a.outputs]));
      if (state !== undefined && state !== null) op.restore(state);
      appendFileSync(logPath, `${new Date().toISOString()} task ${k}: recovered ${seen.size} processed inputs from ${records} log records${state ? " and restored the operator state" : ""}\n`);
      // The last record's outputs may not have been acknowledged: send them again first, so
      // they reach downstream before anything newer.
      if (last.length > 0) await this.forward({ job: start.job, stage: start.stage, index: start.index, count: 0, lines: "" }, last, true);
      eo.unacked.clear();
    })();
    eo.ready.catch((err: Error) => {
      // Without its log the task cannot promise exactly-once: let the leader restart it.
      this.opts.log.warn(`task ${k}: recovery failed: ${err.message}`);
      op.kill();
    });
    return eo;
  }

  /** HyDFS endpoints: this node's first, then every other live node's. */
  hydfsBases(): string[] {
    const own = `http://${this.opts.cfg.host}:${this.opts.cfg.ports.hydfs}`;
    return [own, ...this.otherHydfs.filter((b) => b !== own)];
  }
  private otherHydfs: string[] = [];

  /** Membership changed: remember where the other nodes' hydfsd are. */
  setMembers(live: { id: string; state: string; ports: { hydfs: number } }[]): void {
    this.otherHydfs = live.filter((m) => m.state === "alive" && m.ports?.hydfs).map((m) => `http://${m.id.split(":")[0]}:${m.ports.hydfs}`);
  }

  setRoutes(job: string, raw: Routes): void {
    checkJobId(job);
    const routes = checkRoutes(raw);
    const cur = this.routes.get(job);
    if (!cur || routes.version > cur.version) this.routes.set(job, routes);
  }

  private stopTask(t: TaskRunner): void {
    t.stopping = true;
    t.op.kill();
    for (const w of t.waiters.splice(0)) w();
  }

  /**
   * Stop a job's tasks here. With `endOfStream` (the job finished), each operator gets end of
   * input (its stdin closes) and a moment to exit on its own; otherwise, and after that moment,
   * it is killed.
   */
  async stopJob(job: string, endOfStream = false): Promise<number> {
    checkJobId(job);
    this.stoppedJobs.add(job);
    const mine = [...this.tasks].filter(([, t]) => t.start.job === job);
    for (const [k] of mine) this.tasks.delete(k);
    this.routes.delete(job);
    await Promise.all(
      mine.map(async ([k, t]) => {
        t.stopping = true;
        for (const w of t.waiters.splice(0)) w();
        if (endOfStream) {
          appendFileSync(t.logPath, `${new Date().toISOString()} task ${k}: end of stream after ${t.inputs} tuples\n`);
          const code = await t.op.endInput(EOS_GRACE_MS);
          appendFileSync(t.logPath, `${new Date().toISOString()} task ${k}: operator ${code === undefined ? "killed after the grace period" : `exited with code ${code}`}\n`);
        } else t.op.kill();
      }),
    );
    return mine.length;
  }

  /**
   * Autoscaling removed a task (the leader already sent routes without it): let it finish what
   * it has - batches sent before the routes changed still arrive - and stop it once it has been
   * idle for `quietMs`. A batch that comes even later gets TaskGone and its sender re-routes it,
   * so nothing is processed twice. Resolves with the task's input count, or false if it is
   * not here.
   */
  async retireTask(job: string, stage: number, index: number, quietMs = RETIRE_QUIET_MS, timeoutMs = RETIRE_TIMEOUT_MS): Promise<number | false> {
    const k = this.key(checkJobId(job), checkIndex(stage, "stage", MAX_STAGES), checkIndex(index, "index", MAX_TASKS_PER_STAGE));
    const t = this.tasks.get(k);
    if (!t) return false;
    const deadline = performance.now() + timeoutMs;
    let idleSince = performance.now();
    let inputsSeen = t.inputs;
    while (performance.now() < deadline) {
      if (t.active > 0 || t.waiters.length > 0 || t.inputs !== inputsSeen) {
        idleSince = performance.now();
        inputsSeen = t.inputs;
      } else if (performance.now() - idleSince >= quietMs) break;
      await Bun.sleep(RETIRE_POLL_MS);
    }
    if (this.tasks.get(k) === t) this.tasks.delete(k);
    appendFileSync(t.logPath, `${new Date().toISOString()} task ${k}: retired by autoscaling after ${t.inputs} tuples\n`);
    this.stopTask(t);
    return t.inputs;
  }

  /** Kill one operator process of this worker, by pid (never any other process). */
  killPid(pid: number): TaskStart | undefined {
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
    }));
  }

  private sampleRates(): void {
    for (const t of this.tasks.values()) {
      t.ratePerSec = t.inputs - t.inputsAtSample;
      t.inputsAtSample = t.inputs;
      if (t.ratePerSec > 0 || t.inputs > 0) {
        try {
          appendFileSync(t.logPath, `${new Date().toISOString()} ${t.ratePerSec} tuples/s (${t.inputs} total)\n`);
        } catch {}
      }
    }
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
    const routes = this.routes.get(batch.job);
    if (!routes) {
      if (this.stoppedJobs.has(batch.job)) throw new TaskGone(`job ${batch.job} stopped`);
      throw new RequestError(`batch: job ${batch.job} is not known on this worker`, 404);
    }
    if (batch.stage >= routes.stages.length) throw new RequestError(`batch: job ${batch.job} has ${routes.stages.length} stages; there is no stage ${batch.stage}`);
    const t = this.tasks.get(k);
    if (!t || t.stopping || !t.op.alive) throw new TaskGone(`task ${k} is not running here`);
    return t;
  }

  /**
   * One input batch for a task here: resolves once its outputs are acknowledged downstream. The
   * batch must come from decodeBatch(bytes, "task") (or be made here): its lines are then
   * exactly `count` operator input lines.
   */
  async handleBatch(batch: Batch): Promise<void> {
    const t = this.taskFor(batch);
    const k = this.key(batch.job, batch.stage, batch.index);
    while (t.active >= TASK_CONCURRENCY) await new Promise<void>((r) => t.waiters.push(r));
    if (t.stopping) throw new TaskGone(`task ${k} stopped`);
    t.active++;
    try {
      if (t.eo) return await this.handleExactlyOnce(t, t.eo, batch);
      const answers = await t.op.processLines(batch.lines, batch.count);
      t.inputs += batch.count;
      t.batches++;
      for (const a of answers) t.outputs += a.outputs.length;
      await this.forward(batch, answers, t.start.exactlyOnce === true);
    } finally {
      t.active--;
      t.waiters.shift()?.();
    }
  }

  /**
   * The exactly-once steps (see exactly_once.ts) for one batch. Batches that arrive while the
   * task is busy wait in its queue and then go through the steps together (group commit): one
   * operator round, one snapshot, one log append and one forward for all of them, so the cost
   * of a HyDFS round trip is shared by as many batches as the pipeline keeps in flight.
   */
  private handleExactlyOnce(t: TaskRunner, eo: NonNullable<TaskRunner["eo"]>, batch: Batch): Promise<void> {
    const done = new Promise<void>((resolve, reject) => eo.queue.push({ batch, resolve, reject }));
    if (!eo.pumping) void this.pumpExactlyOnce(t, eo);
    return done;
  }

  private async pumpExactlyOnce(t: TaskRunner, eo: NonNullable<TaskRunner["eo"]>): Promise<void> {
    eo.pumping = true;
    try {
      await eo.ready.catch(() => {});
      while (eo.queue.length > 0) {
        // At most one log append per log_flush_ms: what arrives meanwhile joins this group.
        const waitMs = eo.lastCommitMs + this.opts.cfg.rainstorm.log_flush_ms - performance.now();
        if (waitMs > 0) await Bun.sleep(waitMs);
        eo.lastCommitMs = performance.now();
        const group = eo.queue.splice(0);
        try {
          await this.commitGroup(t, eo, group.map((g) => g.batch));
          for (const g of group) g.resolve();
        } catch (err) {
          for (const g of group) g.reject(err as Error);
        }
      }
    } finally {
      eo.pumping = false;
    }
  }

  /** Log appends of this worker's exactly-once tasks so far (for rainstorm.failpoint). */
  private logAppends = 0;

  /** rainstorm.failpoint parsed: which crash, at which of this worker's log appends (tests only). */
  private readonly failpoint: { name: string; at: number } | undefined;

  private failpointAt(n: number): string | undefined {
    return this.failpoint?.at === n ? this.failpoint.name : undefined;
  }

  private async commitGroup(t: TaskRunner, eo: NonNullable<TaskRunner["eo"]>, batches: Batch[]): Promise<void> {
    const first = batches[0]!;
    await eo.ready;
    if (t.stopping || !t.op.alive) throw new TaskGone(`task ${first.job}/${first.stage}/${first.index} stopped`);
    const { fresh, freshCount, repeated } = splitSeen(batches.map((b) => b.lines).join(""), eo.seen);
    let answers: Answer[] = [];
    if (freshCount > 0) {
      answers = await t.op.processLines(fresh, freshCount);
      try {
        const state = await t.op.snapshot(++eo.snapshots, 10_000);
        const failpoint = this.failpointAt(++this.logAppends);
        if (failpoint === "crash_before_log_append") throw new Error(`failpoint ${failpoint}`);
        await eo.log.append({ answers, state });
        if (failpoint === "crash_after_log_append") throw new Error(`failpoint ${failpoint}`);
      } catch (err) {
        // The operator's state now holds inputs the log does not: only a restart from the
        // log is consistent again.
        t.op.kill();
        throw new TaskGone(`task log append failed: ${(err as Error).message}`);
      }
      for (const a of answers) {
        eo.seen.add(a.id);
        eo.unacked.set(a.id, a.outputs);
      }
      t.inputs += freshCount;
      t.batches += batches.length;
      for (const a of answers) t.outputs += a.outputs.length;
    }
    // Repeated inputs: forward again what may not have arrived (downstream drops known ids).
    for (const id of repeated) answers.push({ id, outputs: eo.unacked.get(id) ?? [] });
    await this.forward(first, answers, true);
    for (const a of answers) eo.unacked.delete(a.id);
  }

  /**
   * Route the outputs of a batch by key to the next stage (or to the sink) and wait for acks.
   * With `sinkIds` the sink gets the output ids too (exactly-once deduplicates on them).
   */
  private async forward(batch: Batch, answers: Answer[], sinkIds = false): Promise<void> {
    const routes = this.routes.get(batch.job);
    if (!routes) throw new TaskGone(`no routes for job ${batch.job}`);
    const next = batch.stage + 1;
    const isLast = next >= routes.stages.length;
    const nextCount = isLast ? 1 : routes.stages[next]!.length;
    const groups = new Map<number, { lines: string; count: number; ids: string[] | undefined }>();
    for (const { id, outputs } of answers) {
      outputs.forEach((o, j) => {
        // Deterministic ids: the same input always yields the same output ids (exactly-once later).
        const outId = outputs.length === 1 ? `${id}>` : `${id}>${j}`;
        const dest = isLast ? 0 : partitionOf(o.key, nextCount);
        let g = groups.get(dest);
        if (!g) groups.set(dest, (g = { lines: "", count: 0, ids: isLast && sinkIds ? [] : undefined }));
        g.lines += isLast ? destLine(o.key, o.value) : inputLine(outId, o.key, o.value);
        g.ids?.push(outId);
        g.count++;
      });
    }
    await Promise.all([...groups].map(([dest, g]) => this.enqueue(batch.job, isLast ? "sink" : "task", next, dest, g.lines, g.count, g.ids)));
  }

  /**
   * Outputs bound for one destination are merged across input batches (a filter shrinks every
   * batch) and sent when they reach batch_size or after OUTBOX_LINGER_MS. Each caller's promise
   * settles with the send that carried its tuples, so acknowledgement stays end to end.
   */
  private enqueue(job: string, kind: "task" | "sink", stage: number, index: number, lines: string, count: number, ids?: string[]): Promise<void> {
    // A job's sink batches either all carry ids (exactly-once) or none do.
    const key = `${job}/${kind}/${stage}/${index}`;
    let box = this.outboxes.get(key);
    if (!box) this.outboxes.set(key, (box = { job, kind, stage, index, lines: "", count: 0, ids: ids ? [] : undefined, waiters: [], timer: undefined }));
    box.lines += lines;
    box.count += count;
    if (ids) box.ids!.push(...ids);
    const done = new Promise<void>((resolve, reject) => box.waiters.push({ resolve, reject }));
    if (box.count >= this.opts.cfg.rainstorm.batch_size) this.flush(key);
    else box.timer ??= setTimeout(() => this.flush(key), OUTBOX_LINGER_MS);
    return done;
  }

  private flush(key: string): void {
    const box = this.outboxes.get(key);
    if (!box) return;
    this.outboxes.delete(key);
    clearTimeout(box.timer);
    // Over MAX_BATCH_TUPLES (receivers refuse more): several batches, one after the other, in order.
    const parts = splitBatch({ job: box.job, stage: box.stage, index: box.index, count: box.count, lines: box.lines, ...(box.ids ? { ids: box.ids } : {}) }, MAX_BATCH_TUPLES);
    parts.reduce((prev: Promise<void>, part) => prev.then(() => this.sendWithRetry(box.job, box.kind, part)), Promise.resolve()).then(
      () => {
        for (const w of box.waiters) w.resolve();
      },
      (err: Error) => {
        for (const w of box.waiters) w.reject(err);
      },
    );
  }

  /** Send until acknowledged, following route changes; gives up only when the job stops. */
  async sendWithRetry(job: string, kind: "task" | "sink", batch: Batch): Promise<void> {
    let delayMs = 50;
    for (let attempt = 0; ; attempt++) {
      if (this.stoppedJobs.has(job)) throw new TaskGone(`job ${job} stopped`);
      const routes = this.routes.get(job);
      const tasks = routes?.stages[batch.stage];
      // A stage that autoscaling shrank: the batch goes to a remaining task (only stateless
      // stages are rescaled, so any task of the stage may take any tuple).
      if (kind === "task" && tasks && tasks.length > 0 && batch.index >= tasks.length) batch = { ...batch, index: batch.index % tasks.length };
      const target = kind === "sink" ? routes?.sink : tasks?.[batch.index];
      if (target) {
        try {
          await postBatch(this.http, target, kind === "sink" ? "/sink" : "/data", batch, this.opts.cfg.rainstorm.batch_timeout_ms);
          return;
        } catch (err) {
          if (attempt % 20 === 0) this.opts.log.debug?.(`batch for ${job} stage ${batch.stage} task ${batch.index} at ${target}: ${(err as Error).message}; retrying`);
        }
      }
      await Bun.sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 500);
    }
  }
}

/**
 * A result as a line of dest: `key\tvalue`. dest holds one result per line, so a line break
 * inside a key or value (only an operator of your own can make one) is written as the two
 * characters \n (or \r).
 */
export function destLine(key: string, value: string): string {
  const flat = (s: string) => (s.includes("\n") || s.includes("\r") ? s.replaceAll("\n", "\\n").replaceAll("\r", "\\r") : s);
  return `${flat(key)}\t${flat(value)}\n`;
}

/** POST one msgpack batch; resolves on 2xx, rejects otherwise (the caller retries). */
export async function postBatch(http: ClusterHttp, target: string, path: string, batch: Batch, timeoutMs: number): Promise<void> {
  const res = await http.fetch(`http://${target}${path}`, { method: "POST", headers: { "content-type": "application/msgpack" }, body: encode(batch), timeoutMs });
  if (!res.ok) throw new Error(`${target}${path}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** A batch of `max` tuples or fewer as it is, a larger one cut into consecutive batches of at most `max` (lines and ids alike). */
export function splitBatch(batch: Batch, max: number): Batch[] {
  if (batch.count <= max) return [batch];
  const parts: Batch[] = [];
  let from = 0;
  for (let done = 0; done < batch.count; done += max) {
    let to = from;
    const n = Math.min(max, batch.count - done);
    for (let i = 0; i < n; i++) to = batch.lines.indexOf("\n", to) + 1;
    parts.push({ job: batch.job, stage: batch.stage, index: batch.index, count: n, lines: batch.lines.slice(from, to), ...(batch.ids ? { ids: batch.ids.slice(done, done + n) } : {}) });
    from = to;
  }
  return parts;
}

/** A batch the receiver refuses: malformed, or not what the route takes. Answered 400 with {"error"}. */
export class BatchError extends RequestError {}

/** The fields a batch may have; any other is refused. */
const BATCH_FIELDS = new Set(["job", "stage", "index", "count", "lines", "ids"]);
/**
 * One decoder for every batch, with limits: a batch is a map of at most BATCH_FIELDS.size
 * entries whose ids list has at most MAX_BATCH_TUPLES entries, with no binary or extension data.
 */
const BATCH_DECODER = new Decoder({ maxMapLength: BATCH_FIELDS.size, maxArrayLength: MAX_BATCH_TUPLES, maxBinLength: 0, maxExtLength: 0 });

/**
 * A batch from the wire, checked before anything is done with it; a BatchError (400) says what is
 * wrong. `kind` is the route: "task" (/data, lines are operator input lines, never ids) or
 * "sink" (/sink, lines are `key\tvalue` results, ids one per line or none). Checked:
 * the msgpack itself; the fields and their types; job against JOB_ID_PATTERN; stage and index
 * (integers, stage < MAX_STAGES for a task and <= MAX_STAGES for the sink, which is the stage
 * after the last; index < MAX_TASKS_PER_STAGE, 0 for the sink); count in [0, MAX_BATCH_TUPLES];
 * and that lines holds exactly `count` complete lines of the route's form. So a batch that
 * reaches an operator gets exactly one answer per line, and one line cannot carry a control
 * message ({"restore"}, {"snapshot"}) or a blank line the operator would not answer.
 */
export function decodeBatch(bytes: Uint8Array, kind: "task" | "sink"): Batch {
  let raw: unknown;
  try {
    raw = BATCH_DECODER.decode(bytes);
  } catch (err) {
    throw new BatchError(`batch: not valid msgpack (${(err as Error).message})`);
  }
  if (!isRecord(raw)) throw new BatchError(`batch: expected a msgpack map {job, stage, index, count, lines}, got ${describe(raw)}`);
  for (const field of Object.keys(raw)) if (!BATCH_FIELDS.has(field)) throw new BatchError(`batch: unknown field ${JSON.stringify(field)}; expected job, stage, index, count, lines${kind === "sink" ? ", ids" : ""}`);
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new BatchError(`batch: ${(err as Error).message}`);
    }
  };
  const job = wrap(() => checkJobId(raw.job));
  const stage = wrap(() => checkIndex(raw.stage, "stage", kind === "sink" ? MAX_STAGES + 1 : MAX_STAGES));
  const index = wrap(() => checkIndex(raw.index, "index", kind === "sink" ? 1 : MAX_TASKS_PER_STAGE));
  if (kind === "sink" && stage === 0) throw new BatchError("batch: stage: a sink batch comes from the last stage, so its stage is at least 1, got 0");
  const count = wrap(() => checkIndex(raw.count, "count", MAX_BATCH_TUPLES + 1));
  const lines = raw.lines;
  if (typeof lines !== "string") throw new BatchError(`batch: lines: expected a string, got ${describe(lines)}`);
  const problem = kind === "task" ? inputLinesProblem(lines, count) : resultLinesProblem(lines, count);
  if (problem) throw new BatchError(`batch: ${problem}`);
  const batch: Batch = { job, stage, index, count, lines };
  if (raw.ids !== undefined) {
    if (kind === "task") throw new BatchError("batch: ids: only sink batches carry ids");
    const ids = raw.ids;
    if (!Array.isArray(ids) || ids.length !== count || !ids.every((id) => typeof id === "string")) {
      throw new BatchError(`batch: ids: expected a list of ${count} strings (one per line), got ${Array.isArray(ids) ? `${ids.length} items` : describe(ids)}`);
    }
    batch.ids = ids as string[];
  }
  return batch;
}

/**
 * Why `lines` is not exactly `count` operator input lines as inputLine writes them, each
 * `{"id":<string>,"key":<string>,"value":<string>}` and a newline; undefined when it is. One pass
 * over the characters, without building objects: every batch of every task goes through here.
 */
export function inputLinesProblem(lines: string, count: number): string | undefined {
  let pos = 0;
  let n = 0;
  while (pos < lines.length) {
    if (n === count) return `count is ${count} but lines holds more than ${count} lines`;
    const start = pos;
    const bad = () => `line ${n + 1}: expected an operator input line {"id":"...","key":"...","value":"..."} (JSON strings, then a newline), got ${describe(lineAt(lines, start))}`;
    if (!lines.startsWith('{"id":', pos)) return bad();
    pos = jsonStringEnd(lines, pos + 6);
    if (pos < 0 || !lines.startsWith(',"key":', pos)) return bad();
    pos = jsonStringEnd(lines, pos + 7);
    if (pos < 0 || !lines.startsWith(',"value":', pos)) return bad();
    pos = jsonStringEnd(lines, pos + 9);
    if (pos < 0 || !lines.startsWith("}\n", pos)) return bad();
    pos += 2;
    n++;
  }
  if (n !== count) return `count is ${count} but lines holds ${n} lines`;
  return undefined;
}

/** Why `lines` is not exactly `count` result lines `key\tvalue` and a newline (no \r); undefined when it is. */
export function resultLinesProblem(lines: string, count: number): string | undefined {
  let pos = 0;
  let n = 0;
  // One search for a carriage return per batch (a per-line search would rescan the rest of the
  // batch for every line): lines before the first one hold none.
  const firstCr = lines.indexOf("\r");
  while (pos < lines.length) {
    if (n === count) return `count is ${count} but lines holds more than ${count} lines`;
    const end = lines.indexOf("\n", pos);
    if (end < 0) return `line ${n + 1}: expected a newline at its end, got ${describe(lines.slice(pos, pos + 80))}`;
    const tab = lines.indexOf("\t", pos);
    if (tab < 0 || tab > end) return `line ${n + 1}: expected a result line key<TAB>value, got ${describe(lines.slice(pos, Math.min(end, pos + 80)))}`;
    if (firstCr >= pos && firstCr < end) return `line ${n + 1}: a result line holds no carriage return`;
    pos = end + 1;
    n++;
  }
  if (n !== count) return `count is ${count} but lines holds ${n} lines`;
  return undefined;
}

/**
 * The index just after the JSON string starting at `pos` (at its opening quote), or -1 when
 * there is none: a raw control character, a bad escape or the end comes first.
 */
function jsonStringEnd(s: string, pos: number): number {
  if (s.charCodeAt(pos) !== 34 /* " */) return -1;
  for (let i = pos + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) return i + 1;
    if (c < 0x20) return -1;
    if (c === 92 /* \ */) {
      const e = s.charCodeAt(++i);
      if (e === 117 /* u */) {
        if (!/^[0-9A-Fa-f]{4}$/.test(s.slice(i + 1, i + 5))) return -1;
        i += 4;
      } else if (!(e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116)) return -1; // " \ / b f n r t
    }
  }
  return -1;
}

function lineAt(s: string, pos: number): string {
  const end = s.indexOf("\n", pos);
  return s.slice(pos, end < 0 ? s.length : end);
}
