/**
 * In-process simulator of a RainStorm cluster: the real Leader and Workers (their drivers, the job
 * state machine, routing, the exactly-once steps), wired by the in-process transport over a
 * seeded network (delay; loss of batches and of their acknowledgements, which the protocol
 * retries; crashed nodes), on a virtual clock. Operators run in-process (ops/registry.ts
 * factories), HyDFS is an in-memory store with the semantics the engine relies on (create
 * fails on an existing name, appends are all or nothing and applied once per (client, sequence
 * number), and a (client, seq) reused for other bytes is refused). Minutes of a job run in milliseconds and replay exactly from the seed.
 */
import { operatorFactory } from "../../ops/registry.ts";
import type { Operator } from "../../ops/runtime.ts";
import { buildNodeConfig, type NodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import type { WatchedMember } from "../member/watch.ts";
import { type Rng, seededRng } from "../shared/rng.ts";
import type { Clock } from "../rainstorm/clock.ts";
import { encodeRecord, taskLogClientId } from "../rainstorm/exactly_once.ts";
import type { DestStore } from "../rainstorm/dest_writer.ts";
import type { FileWriter, JobFiles } from "../rainstorm/job_files.ts";
import { type JobEvent, Leader } from "../rainstorm/leader.ts";
import type { KillJobAnswer } from "../rainstorm/model.ts";
import { type Answer, OperatorExited } from "../rainstorm/operator_proc.ts";
import { parseJobArgs } from "../rainstorm/plan.ts";
import { countViolations } from "./rainstorm_client.ts";
import type { TaskLogStore, TaskOperator } from "../rainstorm/task.ts";
import {
  CONTROL_CALL_TIMEOUT_MS,
  FLUSH_CALL_TIMEOUT_MS,
  InProcessTransport,
  LIST_CALL_TIMEOUT_MS,
  NOTICE_CALL_TIMEOUT_MS,
  type RainstormTransport,
  REPORT_CALL_TIMEOUT_MS,
  reportDeath,
  RETIRE_CALL_TIMEOUT_MS,
  Unreachable,
} from "../rainstorm/transport.ts";
import { type Batch, Worker } from "../rainstorm/worker.ts";

/** Wall-clock time at simulated time 0 (job ids and log stamps). */
export const WALL_EPOCH_MS = 1_700_000_000_000;
const RAINSTORM_PORT = 15000;
/** How long after a crash the leader hears of it (membership's failure detection, simulated). */
const DETECT_MS = 300;
/** Virtual time one operator batch and one store write take. */
const OPERATOR_MS = 1;
const STORE_MS = 2;

/** Timers on a virtual clock: `fireNext` advances time to the earliest and runs it. */
export class VirtualClock implements Clock {
  private now = 0;
  private seq = 0;
  private queue: { atMs: number; seq: number; fn: () => void; cancelled: boolean }[] = [];

  nowMs(): number {
    return this.now;
  }
  wallMs(): number {
    return WALL_EPOCH_MS + this.now;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }
  after(ms: number, fn: () => void): { cancel(): void } {
    const entry = { atMs: this.now + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    // Sorted by time, then by creation: equal times fire in the order they were set.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.queue[mid]!.atMs <= entry.atMs) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, entry);
    return { cancel: () => void (entry.cancelled = true) };
  }
  /** Run the earliest live timer if it is due by `limitMs`; false when there is none. */
  fireNext(limitMs: number): boolean {
    for (;;) {
      const next = this.queue[0];
      if (!next || next.atMs > limitMs) return false;
      this.queue.shift();
      if (next.cancelled) continue;
      this.now = next.atMs;
      next.fn();
      return true;
    }
  }
}

/** HyDFS as the engine uses it, in memory: whole files, create-once, appends applied once per (client, seq). */
export class MemoryStore implements JobFiles {
  readonly files = new Map<string, string>();
  /** What each (client, seq) wrote, as HyDFS keeps it (manifest.ts opKey): applied once, never reused for other bytes. */
  private readonly applied = new Map<string, string>();

  constructor(private readonly clock: Clock) {}

  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }

  async lines(name: string): Promise<AsyncIterable<string>> {
    const text = this.files.get(name);
    if (text === undefined) throw new Error(`reading ${name}: 404 no such file`);
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    return (async function* () {
      yield* lines;
    })();
  }

  writer(name: string, clientId: string): FileWriter {
    let seq = 0;
    return { write: (kind, text) => this.write(name, clientId, ++seq, kind, text) };
  }

  /** A last-stage task's dest, as dest_writer.ts hydfsDest writes it: each append names its own seq. */
  dest(name: string, clientId: string): DestStore {
    return { append: (text, seq) => this.write(name, clientId, seq, "append", text) };
  }

  private async write(name: string, client: string, seq: number, kind: "create" | "append", text: string): Promise<void> {
    await this.clock.sleep(STORE_MS);
    const key = `${client}#${seq}`;
    const had = this.applied.get(key);
    if (had === `${kind}:${text}`) return; // a repeat of what is applied: once only
    if (had !== undefined) throw new Error(`${kind} of ${name}: 409 client ${client} seq ${seq} was already used for different bytes`);
    if (kind === "create" && this.files.has(name)) throw new Error(`create of ${name}: 409 exists`);
    if (kind === "append" && !this.files.has(name)) throw new Error(`append to ${name}: 404 no such file`);
    this.files.set(name, (this.files.get(name) ?? "") + text);
    this.applied.set(key, `${kind}:${text}`);
  }

  async remove(name: string): Promise<void> {
    this.files.delete(name);
  }

  /** A task's exactly-once log, as TaskLog keeps it in HyDFS. */
  taskLog(name: string, _incarnation: string): TaskLogStore {
    return {
      load: async () => {
        await this.clock.sleep(STORE_MS);
        if (!this.files.has(name)) this.files.set(name, "");
        return this.files.get(name)!;
      },
      append: (record, recordNo) => this.write(name, taskLogClientId(name), recordNo, "append", encodeRecord(record)),
    };
  }
}

/** An operator run in-process through its ops/registry.ts factory, answering as an operator process would. */
class SimOperator implements TaskOperator {
  alive = true;
  readonly exited: Promise<number>;
  private exit!: (code: number) => void;
  private readonly op: Operator;

  constructor(
    readonly pid: number,
    op: string,
    args: string[],
    private readonly clock: Clock,
  ) {
    const factory = operatorFactory(op);
    if (!factory) throw new Error(`operator ${op}: not a built-in (the simulator runs built-ins only)`);
    this.op = factory(args);
    this.exited = new Promise((resolve) => (this.exit = resolve));
  }

  async processLines(lines: string, count: number): Promise<Answer[]> {
    if (!this.alive) throw new OperatorExited("operator already exited");
    const answers: Answer[] = [];
    for (const line of lines.split("\n")) {
      if (!line) continue;
      const { id, key, value } = JSON.parse(line) as { id: string; key: string; value: string };
      answers.push({ id, outputs: this.op.process(key, value) });
    }
    if (answers.length !== count) throw new Error(`batch of ${count} inputs holds ${answers.length} lines`);
    await this.clock.sleep(OPERATOR_MS);
    if (!this.alive) throw new OperatorExited("operator exited");
    return answers;
  }
  async snapshot(): Promise<unknown> {
    if (!this.alive) throw new OperatorExited("operator exited");
    return structuredClone(this.op.snapshot?.() ?? null);
  }
  restore(state: unknown): void {
    this.op.restore?.(state);
  }
  async endInput(): Promise<number | undefined> {
    this.stop(0);
    return 0;
  }
  kill(): void {
    this.stop(137);
  }
  stderrTail(): string {
    return "";
  }
  private stop(code: number): void {
    if (!this.alive) return;
    this.alive = false;
    this.exit(code);
  }
}

export interface RainstormSimOptions {
  seed: number;
  nodes?: number;
  /** Probability that a batch, or its acknowledgement, is lost (the sender retries). */
  lossRate?: number;
  /** One-way delay of every call, uniform in [min, max] ms. */
  delayMs?: [number, number];
  /** rainstorm.* settings for every node (batch_size, window, log_flush_ms, ...). */
  rainstorm?: Record<string, unknown>;
}

export interface SimNode {
  index: number;
  addr: string;
  worker: Worker;
  crashed: boolean;
}

/** The outcome of one job: its events, result lines as streamed, and dest's content. */
export interface SimRun {
  job: string;
  events: JobEvent[];
  outputs: string[];
  done: boolean;
  failed?: string;
  /** kill_job ended it. */
  cancelled: boolean;
  dest: string;
}

export class RainstormSim {
  readonly clock = new VirtualClock();
  readonly store: MemoryStore;
  readonly nodes: SimNode[] = [];
  readonly leader: Leader;
  readonly rng: Rng;
  private readonly inProc = new InProcessTransport();
  private readonly lossRate: number;
  private readonly delayMs: [number, number];
  private nextPid = 1000;
  /** Every operator ever started, by job: the simulated processes (tasksOf checks none of a job is left alive). */
  private readonly operators: { job: string; op: SimOperator }[] = [];

  constructor(readonly opts: RainstormSimOptions) {
    this.rng = seededRng(opts.seed);
    this.lossRate = opts.lossRate ?? 0;
    this.delayMs = opts.delayMs ?? [1, 3];
    this.store = new MemoryStore(this.clock);
    const n = opts.nodes ?? 5;
    const log = makeLogger("rainstorm-sim", (process.env.RAINSTORM_SIM_LOG as "info" | undefined) ?? "silent");
    const leaderAddr = `10.0.0.1:${RAINSTORM_PORT}`;
    for (let index = 1; index <= n; index++) {
      const addr = `10.0.0.${index}:${RAINSTORM_PORT}`;
      const cfg = this.config(index);
      const transport = this.transportFrom(addr);
      const worker = new Worker({
        cfg,
        log,
        transport,
        clock: this.clock,
        spawnOperator: (start) => {
          const op = new SimOperator(this.nextPid++, start.op, start.args, this.clock);
          this.operators.push({ job: start.job, op });
          return op;
        },
        taskLog: (name, incarnation) => this.store.taskLog(name, incarnation),
        openDest: (name, clientId) => this.store.dest(name, clientId),
        leaderAddr: () => leaderAddr,
        sourceLines: (src) => this.store.lines(src),
        localLogs: { mkdir: () => {}, append: () => {} },
        onTaskDied: (death) => void reportDeath(transport, leaderAddr, death, (ms) => this.clock.sleep(ms)),
      });
      this.nodes.push({ index, addr, worker, crashed: false });
      this.inProc.register(addr, { worker });
    }
    this.leader = new Leader({
      cfg: this.config(1),
      log,
      worker: this.nodes[0]!.worker,
      transport: this.transportFrom(leaderAddr),
      files: this.store,
      clock: this.clock,
    });
    this.inProc.register(leaderAddr, { leader: this.leader });
    this.leader.setViewReady(true);
    this.announceMembers();
  }

  private config(index: number): NodeConfig {
    return buildNodeConfig({
      host: `10.0.0.${index}`,
      data_dir: "/nonexistent/rainstorm-sim",
      rainstorm: { batch_size: 32, window: 4, log_flush_ms: 2, ...this.opts.rainstorm },
    });
  }

  private delay(): number {
    const [lo, hi] = this.delayMs;
    return lo + this.rng.next() * (hi - lo);
  }

  private down(addr: string): boolean {
    return this.nodes.some((n) => n.crashed && n.addr === addr);
  }

  /**
   * What node `from` sees of the network: every call takes a delay each way, a crashed node
   * neither sends nor answers, and a batch or its acknowledgement may be lost.
   */
  private transportFrom(from: string): RainstormTransport {
    const call = async <T>(to: string, f: () => Promise<T>, timeoutMs = CONTROL_CALL_TIMEOUT_MS, lossy = false): Promise<T> => {
      await this.clock.sleep(this.delay());
      if (this.down(from) || this.down(to)) throw new Unreachable(`${from} -> ${to}: node down`);
      if (lossy && this.rng.next() < this.lossRate) throw new Error(`${from} -> ${to}: batch lost`);
      // As over HTTP, a call has a deadline: a receiver that crashed mid-call never answers.
      let timer: { cancel(): void } | undefined;
      const deadline = new Promise<never>(
        (_, reject) => (timer = this.clock.after(timeoutMs, () => reject(new Error(`${from} -> ${to}: no answer within ${timeoutMs} ms`)))),
      );
      const answer = await Promise.race([f(), deadline]).finally(() => timer!.cancel());
      await this.clock.sleep(this.delay());
      if (this.down(from) || this.down(to)) throw new Unreachable(`${to} -> ${from}: node down`);
      if (lossy && this.rng.next() < this.lossRate) throw new Error(`${to} -> ${from}: acknowledgement lost`);
      return answer;
    };
    const p = this.inProc;
    return {
      startTask: (to, start) => call(to, () => p.startTask(to, start)),
      setRoutes: (to, job, routes) => call(to, () => p.setRoutes(to, job, routes)),
      stopJob: (to, job, eos, term) => call(to, () => p.stopJob(to, job, eos, term)),
      retireTask: (to, job, stage, index, term) => call(to, () => p.retireTask(to, job, stage, index, term), RETIRE_CALL_TIMEOUT_MS),
      killTask: (to, pid, term) => call(to, () => p.killTask(to, pid, term)),
      listTasks: (to) => call(to, () => p.listTasks(to), LIST_CALL_TIMEOUT_MS),
      adopt: (to, term) => call(to, () => p.adopt(to, term), LIST_CALL_TIMEOUT_MS),
      startSource: (to, start) => call(to, () => p.startSource(to, structuredClone(start))),
      reportSource: (to, report) => call(to, () => p.reportSource(to, report), REPORT_CALL_TIMEOUT_MS, true),
      // A batch travels as bytes: the receiver gets its own copy.
      sendBatch: (to, batch, timeoutMs) => call(to, () => p.sendBatch(to, structuredClone(batch) as Batch), timeoutMs, true),
      reportTaskDied: (to, death) => call(to, () => p.reportTaskDied(to, death), REPORT_CALL_TIMEOUT_MS),
      // A notice may be lost too (the worker sends it again; the leader drops a seq it has had).
      sendOutputs: (to, notice) => call(to, () => p.sendOutputs(to, structuredClone(notice)), NOTICE_CALL_TIMEOUT_MS, true),
      flushOutputs: (to, job) => call(to, () => p.flushOutputs(to, job), FLUSH_CALL_TIMEOUT_MS),
    };
  }

  /** Tell the leader who is alive (as its memberd would). */
  private announceMembers(): void {
    const ports = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: RAINSTORM_PORT };
    const live: WatchedMember[] = this.nodes.filter((n) => !n.crashed).map((n) => ({ id: `10.0.0.${n.index}:5000@${WALL_EPOCH_MS}`, state: "alive", ports }));
    this.leader.onMembers(live);
  }

  /** Node `index` (not 1, the leader's) crashes: its operators die, it stops answering, and the leader hears DETECT_MS later. */
  crash(index: number): void {
    if (index === 1) throw new Error("the simulator keeps the leader's node up");
    const node = this.nodes[index - 1]!;
    if (node.crashed) return;
    node.crashed = true;
    node.worker.stop();
    this.clock.after(DETECT_MS, () => this.announceMembers());
  }

  /** Kill one running task of `job`, picked by the seeded generator; returns what was killed, if any. */
  killRandomTask(job: string): { node: number; stage: number; index: number; pid: number } | undefined {
    const running = this.nodes
      .filter((n) => !n.crashed)
      .flatMap((n) =>
        n.worker
          .list()
          .filter((t) => t.job === job && t.alive)
          .map((t) => ({ node: n, t })),
      );
    if (running.length === 0) return undefined;
    const { node, t } = running[Math.floor(this.rng.next() * running.length)]!;
    return node.worker.killPid(t.pid) ? { node: node.index, stage: t.stage, index: t.index, pid: t.pid } : undefined;
  }

  /**
   * kill_job of `job`, as ctl sends it: resolves with the leader's answer once every task is
   * stopped, or rejects with its refusal (404 unknown, 409 ended). Call it from a timer (clock.after)
   * so it runs while runUntil turns the clock.
   */
  cancel(job: string): Promise<KillJobAnswer> {
    return this.leader.killJob(job);
  }

  /** What is left of `job` on the workers: the tasks some worker still holds, and the pids of its operators still alive. */
  leftOf(job: string): { tasks: string[]; livePids: number[] } {
    const tasks = this.nodes.flatMap((n) =>
      n.worker
        .list()
        .filter((t) => t.job === job)
        .map((t) => `stage${t.stage}[${t.index}] on node ${n.index}`),
    );
    return { tasks, livePids: this.operators.filter((o) => o.job === job && o.op.alive).map((o) => o.op.pid) };
  }

  /** Let every pending promise settle, then run timers until `done()` or `limitMs` of virtual time. */
  async runUntil(done: () => boolean, limitMs: number): Promise<void> {
    const deadline = this.clock.nowMs() + limitMs;
    for (;;) {
      // A macrotask runs only once the microtask queue is empty: everything that can happen now has.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (done()) return;
      if (!this.clock.fireNext(deadline))
        throw new Error(
          `seed ${this.opts.seed}: nothing left to do at ${Math.round(this.clock.nowMs())} ms (or past the ${limitMs} ms limit) and the condition is not met`,
        );
    }
  }

  /**
   * Store `input` as `src`, submit the job (`args` as ctl sends them, src and dest included) and
   * run until it is done, failed or cancelled. `onEvent` sees every event as it happens (to fire faults).
   */
  async runJob(args: string[], input: string, onEvent: (ev: JobEvent, run: SimRun) => void = () => {}, limitMs = 600_000): Promise<SimRun> {
    const spec = parseJobArgs(args);
    this.store.files.set(spec.src, input);
    const run: SimRun = { job: "", events: [], outputs: [], done: false, cancelled: false, dest: "" };
    let refused: Error | undefined;
    void this.leader
      .submit(spec, (ev) => {
        if (ev.event === "output") run.outputs.push(...ev.lines);
        else run.events.push(ev);
        if (ev.event === "done") run.done = true;
        if (ev.event === "failed") run.failed = ev.error;
        if (ev.event === "cancelled") run.cancelled = true;
        onEvent(ev, run);
      })
      .then(
        (id) => (run.job = id),
        (err: Error) => (refused = err),
      );
    await this.runUntil(() => run.done || run.failed !== undefined || run.cancelled || refused !== undefined, limitMs);
    if (refused) throw refused;
    run.dest = this.store.files.get(spec.dest) ?? "";
    return run;
  }

  /** Stop every worker's timers (the virtual clock then holds nothing of this run). */
  stop(): void {
    for (const n of this.nodes) n.worker.stop();
  }
}

// ---- App 1 and the seeded chaos plan (shared by rainstorm_sim_test.ts and scripts/bench/rainstorm_sim.ts) ----

/** App 1: lines holding PATTERN, counted per CSV field COL (grep then aggregate). */
export const APP1_PATTERN = "SIGN_";
export const APP1_COL = 6;

/** The job command of App 1 over `src` into `dest`. */
export function app1Args(src: string, dest: string, exactlyOnce: boolean, tasksPerStage = 3): string[] {
  return [
    String(2),
    String(tasksPerStage),
    "-stage-config-map",
    `stage0 grep-wrapper ${APP1_PATTERN} ${APP1_COL} stage1 aggregate-wrapper`,
    src,
    dest,
    String(exactlyOnce),
    "false",
    "0",
    "0",
    "0",
  ];
}

/**
 * What exactly-once must give for App 1 over `lines`: each key's count, and dest as a sorted list
 * of lines (for each key with N matching input lines, exactly `key\t1` .. `key\tN`).
 */
export function app1Golden(lines: string[]): { counts: Map<string, number>; dest: string[] } {
  const counts = new Map<string, number>();
  const grep = operatorFactory("grep-wrapper")!([APP1_PATTERN, String(APP1_COL)]);
  for (const line of lines) for (const o of grep.process("", line)) counts.set(o.key, (counts.get(o.key) ?? 0) + 1);
  const dest: string[] = [];
  for (const [key, n] of counts) for (let i = 1; i <= n; i++) dest.push(`${key}\t${i}`);
  return { counts, dest: dest.sort() };
}

/**
 * What is wrong with an App 1 exactly-once run: the streamed counts must rise per key to the
 * golden ones (countViolations), and dest must hold exactly the golden lines.
 */
export function app1Problems(run: SimRun, golden: { counts: Map<string, number>; dest: string[] }): string[] {
  if (run.failed !== undefined) return [`job failed: ${run.failed}`];
  const stored = run.dest.split("\n").filter(Boolean);
  const problems = countViolations(run.outputs, stored, golden.counts);
  const sorted = [...stored].sort();
  if (sorted.join("\n") !== golden.dest.join("\n")) {
    const have = new Set(sorted);
    const want = new Set(golden.dest);
    problems.push(
      `dest differs from the golden lines: missing ${JSON.stringify(golden.dest.filter((l) => !have.has(l)).slice(0, 5))}; extra ${JSON.stringify(sorted.filter((l) => !want.has(l)).slice(0, 5))}`,
    );
  }
  return problems.slice(0, 10);
}

export interface ChaosResult {
  seed: number;
  problems: string[];
  /** What the plan did: "kill stage1[2] on node 3 at 120 outputs", "crash node 4 at 300 outputs". */
  faults: string[];
  restarts: number;
  virtualMs: number;
}

/**
 * One seeded chaos run of App 1 with exactly-once over `lines`: the seed picks the cluster size,
 * batch size, window, network delay and loss, and 1 to 3 faults (a task kill, or the crash of a
 * worker node other than the leader's), each fired when the stream has carried a seeded fraction of
 * the expected outputs. Returns what went wrong (nothing, if dest is exactly golden).
 */
export async function chaosRun(seed: number, lines: string[]): Promise<ChaosResult> {
  const plan = seededRng((seed * 2654435761) >>> 0);
  const pick = (lo: number, hi: number) => lo + Math.floor(plan.next() * (hi - lo + 1));
  const nodes = pick(3, 5);
  const sim = new RainstormSim({
    seed,
    nodes,
    lossRate: plan.next() * 0.15,
    delayMs: [1, 1 + plan.next() * 9],
    rainstorm: { batch_size: pick(4, 64), window: pick(1, 8) },
  });
  const golden = app1Golden(lines);
  const thresholds = Array.from({ length: pick(1, 3) }, () => Math.floor(golden.dest.length * (0.1 + plan.next() * 0.7))).sort((a, b) => a - b);
  const faults: string[] = [];
  let crashes = 0;
  try {
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), `${lines.join("\n")}\n`, (ev, r) => {
      if (ev.event !== "output") return;
      while (thresholds.length > 0 && r.outputs.length >= thresholds[0]!) {
        const at = thresholds.shift()!;
        // A worker crash needs a node to spare: the leader's stays, and one more keeps running tasks.
        const crash = plan.next() < 0.3 && crashes < nodes - 2;
        if (crash) crashes++;
        sim.clock.after(0, () => {
          if (crash) {
            const up = sim.nodes.filter((n) => n.index !== 1 && !n.crashed);
            const victim = up[Math.floor(plan.next() * up.length)]!;
            sim.crash(victim.index);
            faults.push(`crash node ${victim.index} at ${at} outputs`);
          } else {
            const k = sim.killRandomTask(r.job);
            faults.push(k ? `kill stage${k.stage}[${k.index}] on node ${k.node} at ${at} outputs` : `kill at ${at} outputs: no running task`);
          }
        });
      }
    });
    const restarts = run.events.filter((e) => e.event === "task_restarted").length;
    return { seed, problems: app1Problems(run, golden), faults, restarts, virtualMs: Math.round(sim.clock.nowMs()) };
  } catch (err) {
    return { seed, problems: [(err as Error).message], faults, restarts: 0, virtualMs: Math.round(sim.clock.nowMs()) };
  } finally {
    sim.stop();
  }
}
