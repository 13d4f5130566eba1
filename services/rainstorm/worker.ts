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
import { decode, encode } from "@msgpack/msgpack";
import { existsSync, mkdirSync, appendFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { canonicalOperatorName, operatorFactory } from "../../ops/registry.ts";
import type { NodeConfig } from "../shared/config.ts";
import { ClusterHttp } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import { replayLog, splitSeen, TaskLog, taskLogName } from "./exactly_once.ts";
import { type Answer, inputLine, OperatorProcess, type Output } from "./operator_proc.ts";
import { partitionOf } from "./plan.ts";

export interface Routes {
  /** Increases with every change; older tables are ignored. */
  version: number;
  /** stages[s][i] = "host:port" of the worker running task i of stage s. */
  stages: string[][];
  /** "host:port" of the leader, which takes the last stage's output. */
  sink: string;
}

export interface TaskStart {
  job: string;
  stage: number;
  index: number;
  op: string;
  args: string[];
  routes: Routes;
  /** Log every batch to HyDFS before forwarding and drop repeated inputs (exactly_once=true). */
  exactlyOnce?: boolean;
}

/**
 * A batch on the wire (msgpack): `count` tuples as text. For a task, the lines are the
 * operator's own input lines (`{"id","key","value"}`), written to its stdin as they come; for
 * the sink, they are the result lines `key\tvalue` that go to dest.
 */
export interface Batch {
  job: string;
  stage: number;
  index: number;
  count: number;
  lines: string;
  /** Exactly-once sink batches: the output id of each line, in order (the sink drops known ids). */
  ids?: string[];
}

export class TaskGone extends Error {}

const REPO_ROOT = resolve(import.meta.dir, "../..");
/** Under `bun services/rainstormd.ts` (a checkout) rather than a compiled executable. */
const RUNNING_FROM_SOURCE = !import.meta.dir.startsWith("/$bunfs");
/** How long outputs wait for more outputs to the same destination before they are sent. */
const OUTBOX_LINGER_MS = 2;
/**
 * Built-in operators whose outputs depend on the input alone (no state, no clock, no
 * randomness). Under exactly-once they skip the task log; any other operator keeps it.
 */
const REPLAYABLE_OPERATORS = new Set(["grep", "grep2", "transform", "echo"]);

export function isReplayable(op: string): boolean {
  const canonical = canonicalOperatorName(op);
  return canonical !== undefined && REPLAYABLE_OPERATORS.has(canonical);
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
  onTaskDied: (t: { job: string; stage: number; index: number; pid: number; reason: string }) => void;
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
   * The command that runs operator `op`: an executable of that name in the operators directory;
   * in a source checkout run by bun (not compiled), a built-in operator's .ts entry works too.
   */
  operatorCommand(op: string, args: string[]): string[] {
    const exe = join(this.opsDir(), op);
    if (existsSync(exe)) return [exe, ...args];
    if (RUNNING_FROM_SOURCE && operatorFactory(op)) return [process.execPath, join(REPO_ROOT, "ops", "main.ts"), op, ...args];
    throw new TaskGone(`operator ${JSON.stringify(op)} not found in ${this.opsDir()} (run npm run build, or set rainstorm.ops_dir)`);
  }

  opsDir(): string {
    const configured = this.opts.cfg.rainstorm.ops_dir;
    if (configured) return resolve(configured);
    // Compiled daemons live in dist/bin, operators in dist/ops beside it.
    if (!RUNNING_FROM_SOURCE) return resolve(dirname(process.execPath), "..", "ops");
    return join(REPO_ROOT, "dist", "ops");
  }

  startTask(start: TaskStart): { pid: number; logPath: string } {
    const k = this.key(start.job, start.stage, start.index);
    const old = this.tasks.get(k);
    if (old) this.stopTask(old);
    this.stoppedJobs.delete(start.job);
    this.setRoutes(start.job, start.routes);
    const jobDir = join(this.logDir, start.job.replace(/[^A-Za-z0-9_-]/g, "_"));
    mkdirSync(jobDir, { recursive: true });
    const logPath = join(jobDir, `stage${start.stage}-task${start.index}.log`);
    const op = new OperatorProcess(this.operatorCommand(start.op, start.args), logPath, RUNNING_FROM_SOURCE ? REPO_ROOT : jobDir);
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

  setRoutes(job: string, routes: Routes): void {
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
    const k = this.key(job, stage, index);
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

  list(): {
    job: string;
    stage: number;
    index: number;
    op: string;
    args: string[];
    pid: number;
    ratePerSec: number;
    inputs: number;
    outputs: number;
    batches: number;
    active: number;
    waiting: number;
    logPath: string;
    alive: boolean;
  }[] {
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

  /** One input batch for a task here: resolves once its outputs are acknowledged downstream. */
  async handleBatch(batch: Batch): Promise<void> {
    const k = this.key(batch.job, batch.stage, batch.index);
    const t = this.tasks.get(k);
    if (!t || t.stopping || !t.op.alive) throw new TaskGone(`task ${k} is not running here`);
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
    this.sendWithRetry(box.job, box.kind, { job: box.job, stage: box.stage, index: box.index, count: box.count, lines: box.lines, ...(box.ids ? { ids: box.ids } : {}) }).then(
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

export function decodeBatch(bytes: Uint8Array): Batch {
  const b = decode(bytes) as Batch;
  if (!b || typeof b.job !== "string" || !Number.isInteger(b.stage) || !Number.isInteger(b.index) || !Number.isInteger(b.count) || b.count < 0 || typeof b.lines !== "string") {
    throw new Error("batch: expected {job, stage, index, count, lines}");
  }
  if (b.ids !== undefined && (!Array.isArray(b.ids) || b.ids.length !== b.count || b.ids.some((id) => typeof id !== "string"))) {
    throw new Error(`batch: ids must be a list of ${b.count} strings (one per line)`);
  }
  return b;
}
