/**
 * In-process simulator of a RainStorm cluster: the real Leader and Workers (their drivers, the job
 * state machine, routing, the exactly-once steps), wired by the in-process transport over a
 * seeded network (delay; loss of batches and of their acknowledgements, which the protocol
 * retries; crashed nodes), on a virtual clock. Operators run in-process (ops/registry.ts
 * factories), HyDFS is an in-memory store with the semantics the engine relies on (create
 * fails on an existing name, appends are all or nothing and applied once per (client, sequence
 * number), and a (client, seq) reused for other bytes is refused). Minutes of a job run in milliseconds and replay exactly from the seed.
 *
 * Every node runs what a rainstormd runs (start.ts buildEngine): a Worker and a LeaderSeat, which
 * elects the leader from the node's membership view, claims the next term in the store and takes
 * the running jobs over (leader.ts recover). So the leader's node can crash (`crashLeader`) or be
 * paused past failure detection (`pauseLeader`, a SIGSTOP): each node has its own view of the
 * virtual clock (NodeClock), whose timers never fire once the node crashed and wait while it is
 * paused, and every call and store write of a node goes through that clock, so a paused node
 * does nothing until it resumes, and then goes on with what it was doing.
 */
import { splitTsv } from "../../ops/protocol.ts";
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
import type { JobEvent, Leader } from "../rainstorm/leader.ts";
import { LeaderSeat } from "../rainstorm/leader_seat.ts";
import { needLeaderOf } from "../rainstorm/http.ts";
import type { KillJobAnswer, OutputsNotice, SourceReport, TaskDeath, TaskStart } from "../rainstorm/model.ts";
import { isStaleTerm } from "../rainstorm/election.ts";
import { ReplayFilter } from "../ctl/replay_filter.ts";
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
export const DETECT_MS = 300;
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

/**
 * One node's view of the virtual clock: its timers fire while the node runs, wait while it is
 * paused (then fire at once, in order, when it resumes, as a SIGCONT process finds its timers
 * overdue), and never fire once it crashed. Every timer, sleep, call and store write of a node
 * goes through its NodeClock, so a paused or crashed node's code stops where it is.
 */
export class NodeClock implements Clock {
  private state: "up" | "paused" | "crashed" = "up";
  private held: (() => void)[] = [];

  constructor(private readonly base: VirtualClock) {}

  nowMs(): number {
    return this.base.nowMs();
  }
  wallMs(): number {
    return this.base.wallMs();
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }
  after(ms: number, fn: () => void): { cancel(): void } {
    let cancelled = false;
    const timer = this.base.after(ms, () => this.whenRunning(() => !cancelled && fn()));
    return {
      cancel: () => {
        cancelled = true;
        timer.cancel();
      },
    };
  }
  get paused(): boolean {
    return this.state === "paused";
  }
  pause(): void {
    if (this.state === "up") this.state = "paused";
  }
  resume(): void {
    if (this.state !== "paused") return;
    this.state = "up";
    for (const fn of this.held.splice(0)) this.base.after(0, fn);
  }
  crash(): void {
    this.state = "crashed";
    this.held = [];
  }
  private whenRunning(fn: () => void): void {
    if (this.state === "up") fn();
    else if (this.state === "paused") this.held.push(fn);
  }
}

/** HyDFS as the engine uses it, in memory: whole files, create-once, appends applied once per (client, seq). */
export class MemoryStore implements JobFiles {
  constructor(
    private readonly clock: Clock,
    readonly files = new Map<string, string>(),
    /** What each (client, seq) wrote, as HyDFS keeps it (manifest.ts opKey): applied once, never reused for other bytes. */
    private readonly applied = new Map<string, string>(),
  ) {}

  /** The same files as seen from one node: its writes take time on its clock (a paused node's write lands once it resumes; a crashed node's never). */
  on(clock: Clock): MemoryStore {
    return new MemoryStore(clock, this.files, this.applied);
  }

  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }

  async text(name: string): Promise<string | undefined> {
    return this.files.get(name);
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
      const fields = splitTsv(line, 3);
      if (!fields) throw new Error(`not a tuple line: ${line.slice(0, 80)}`);
      const [id, key, value] = fields as [string, string, string];
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
  /** Whether this node leads, and its Leader when it does (leader_seat.ts), as in a rainstormd. */
  seat: LeaderSeat;
  clock: NodeClock;
  crashed: boolean;
  /** In the group: not crashed, and not declared failed (a pause past DETECT_MS) unless it rejoined since. */
  member: boolean;
  /** The boot time in its member id: a node that rejoins after a pause comes back younger, so it does not lead again. */
  bootMs: number;
}

/** The outcome of one job: its events, result lines as streamed, and dest's content. */
export interface SimRun {
  job: string;
  /** Events as the submitter (and, after a failover, a watcher of the new leader) saw them, each once (ReplayFilter). */
  events: JobEvent[];
  outputs: string[];
  done: boolean;
  failed?: string;
  /** kill_job ended it. */
  cancelled: boolean;
  dest: string;
  /** The terms of the leaders the run followed, in order (one entry per failover plus the first). */
  terms: number[];
}

/** What the simulator lets a test see as it happens (to fire faults at a precise step of a job). */
export interface SimHooks {
  /** A worker starts an operator of a task (the leader's start call reached it). */
  taskStarting?(start: TaskStart, node: number): void;
  /** A source heard that a leader took its report (its progress, or its end). */
  sourceReported?(report: SourceReport): void;
}

/** A leader's call that a worker refused because it has seen a higher term (the stale leader steps down on it). */
export interface StaleRefusal {
  from: string;
  to: string;
  error: string;
}

export class RainstormSim {
  readonly clock = new VirtualClock();
  readonly store: MemoryStore;
  readonly nodes: SimNode[] = [];
  /** Jobs submitted so far (each is named job-sim-<n>). */
  private submissions = 0;
  readonly rng: Rng;
  readonly hooks: SimHooks = {};
  /** Every call a worker refused for a stale leader term, in order. */
  readonly staleRefusals: StaleRefusal[] = [];
  private readonly inProc = new InProcessTransport();
  private readonly lossRate: number;
  private readonly delayMs: [number, number];
  private nextPid = 1000;
  private lastLeader: Leader | undefined;
  /** Every operator ever started, by job: the simulated processes (tasksOf checks none of a job is left alive). */
  private readonly operators: { job: string; op: SimOperator }[] = [];

  constructor(readonly opts: RainstormSimOptions) {
    this.rng = seededRng(opts.seed);
    this.lossRate = opts.lossRate ?? 0;
    this.delayMs = opts.delayMs ?? [1, 3];
    this.store = new MemoryStore(this.clock);
    const n = opts.nodes ?? 5;
    for (let index = 1; index <= n; index++) this.nodes.push(this.makeNode(index));
    for (const node of this.nodes) node.seat.setViewReady(true);
    this.announceMembers();
  }

  /** One node as start.ts buildEngine wires a rainstormd: its worker and its leader seat, registered at its address. */
  private makeNode(index: number): SimNode {
    const log = makeLogger("rainstorm-sim", (process.env.RAINSTORM_SIM_LOG as "info" | undefined) ?? "silent");
    const addr = `10.0.0.${index}:${RAINSTORM_PORT}`;
    const cfg = this.config(index);
    const clock = new NodeClock(this.clock);
    const store = this.store.on(clock);
    const node = { index, addr, clock, crashed: false, member: true, bootMs: WALL_EPOCH_MS } as SimNode;
    const transport = this.transportFrom(node);
    // The leader as this node's view elects it, at each use (it changes across a failover).
    const leaderAddr = () => node.seat?.elected();
    const toLeader: RainstormTransport = { ...transport, reportTaskDied: (_to, death) => transport.reportTaskDied(leaderAddr() ?? "", death) };
    node.worker = new Worker({
      cfg,
      log,
      transport,
      clock,
      spawnOperator: (start) => {
        this.hooks.taskStarting?.(start, index);
        const op = new SimOperator(this.nextPid++, start.op, start.args, clock);
        this.operators.push({ job: start.job, op });
        return op;
      },
      taskLog: (name, incarnation) => store.taskLog(name, incarnation),
      openDest: (name, clientId) => store.dest(name, clientId),
      leaderAddr,
      sourceLines: (src) => store.lines(src),
      localLogs: { mkdir: () => {}, append: () => {} },
      onTaskDied: (death) => void reportDeath(toLeader, leaderAddr() ?? "", death, (ms) => clock.sleep(ms)),
      onLeaderTerm: (term) => node.seat?.onWorkerTerm(term),
      leader: {
        get addr() {
          return leaderAddr() ?? "";
        },
        jobs: (timeoutMs) => this.call(node, leaderAddr() ?? "", () => this.leaderAt(leaderAddr() ?? "").then((l) => l.jobList()), timeoutMs),
      },
    });
    node.seat = new LeaderSeat({ cfg, log, worker: node.worker, transport, files: store, clock });
    this.inProc.register(addr, {
      worker: node.worker,
      // As rainstormd's leader routes (http.ts): wait while this node may be about to lead, else 421/503.
      leader: {
        outputs: async (notice: OutputsNotice) => (await this.leaderAt(addr)).outputs(notice),
        onTaskDied: async (death: TaskDeath) => (await this.leaderAt(addr)).onTaskDied(death),
        onSourceReport: async (report: SourceReport) => (await this.leaderAt(addr)).onSourceReport(report),
      },
    });
    return node;
  }

  /** The Leader of the node at `addr`, as its leader routes find it (a bounded wait while it takes over, else 421 or 503). */
  private async leaderAt(addr: string): Promise<Leader> {
    const seat = this.nodes.find((n) => n.addr === addr)?.seat;
    if (!seat) throw new Unreachable(`${addr}: no such node`);
    return (await seat.leading()) ?? needLeaderOf(seat);
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
   * One call as node `from` sees the network: it takes a delay each way (on the caller's clock: a
   * paused caller sends and hears nothing until it resumes), a crashed node neither sends nor
   * answers, a paused one takes the request only once it resumes (the caller's deadline may come
   * first), and a batch or its acknowledgement may be lost.
   */
  private async call<T>(from: SimNode, to: string, f: () => Promise<T>, timeoutMs = CONTROL_CALL_TIMEOUT_MS, lossy = false): Promise<T> {
    await from.clock.sleep(this.delay());
    if (this.down(from.addr) || this.down(to)) throw new Unreachable(`${from.addr} -> ${to}: node down`);
    if (lossy && this.rng.next() < this.lossRate) throw new Error(`${from.addr} -> ${to}: batch lost`);
    // As over HTTP, a call has a deadline: a receiver that crashed mid-call never answers.
    let timer: { cancel(): void } | undefined;
    const deadline = new Promise<never>(
      (_, reject) => (timer = from.clock.after(timeoutMs, () => reject(new Error(`${from.addr} -> ${to}: no answer within ${timeoutMs} ms`)))),
    );
    const receiver = this.nodes.find((n) => n.addr === to);
    const handled = receiver?.clock.paused ? receiver.clock.sleep(0).then(f) : f();
    const answer = await Promise.race([handled.catch((err: unknown) => this.noteRefusal(from, to, err)), deadline]).finally(() => timer!.cancel());
    await from.clock.sleep(this.delay());
    if (this.down(from.addr) || this.down(to)) throw new Unreachable(`${to} -> ${from.addr}: node down`);
    if (lossy && this.rng.next() < this.lossRate) throw new Error(`${to} -> ${from.addr}: acknowledgement lost`);
    return answer;
  }

  /** Rethrows `err`, noting it first if it is a worker's refusal of a stale leader term. */
  private noteRefusal(from: SimNode, to: string, err: unknown): never {
    if (isStaleTerm(err)) this.staleRefusals.push({ from: from.addr, to, error: (err as Error).message });
    throw err;
  }

  /** What node `from` sees of the network (see call). */
  private transportFrom(from: SimNode): RainstormTransport {
    const call = <T>(to: string, f: () => Promise<T>, timeoutMs?: number, lossy?: boolean) => this.call(from, to, f, timeoutMs, lossy);
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
      reportSource: async (to, report) => {
        await call(to, () => p.reportSource(to, report), REPORT_CALL_TIMEOUT_MS, true);
        this.hooks.sourceReported?.(report);
      },
      // A batch travels as bytes: the receiver gets its own copy.
      sendBatch: (to, batch, timeoutMs) => call(to, () => p.sendBatch(to, structuredClone(batch) as Batch), timeoutMs, true),
      reportTaskDied: (to, death) => call(to, () => p.reportTaskDied(to, death), REPORT_CALL_TIMEOUT_MS),
      // A notice may be lost too (the worker sends it again; the leader drops a seq it has had).
      sendOutputs: (to, notice) => call(to, () => p.sendOutputs(to, structuredClone(notice)), NOTICE_CALL_TIMEOUT_MS, true),
      flushOutputs: (to, job) => call(to, () => p.flushOutputs(to, job), FLUSH_CALL_TIMEOUT_MS),
    };
  }

  /** Tell every member's seat who is in the group (as its memberd would); a paused node hears nothing. */
  private announceMembers(): void {
    const ports = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: RAINSTORM_PORT };
    const members = this.nodes.filter((n) => n.member);
    const live: WatchedMember[] = members.map((n) => ({ id: `10.0.0.${n.index}:5000@${n.bootMs}`, state: "alive", ports }));
    for (const n of members) if (!n.clock.paused) n.seat.onMembers(live);
  }

  /** Node `index` crashes: its operators die, it stops answering, and the others hear DETECT_MS later. */
  crash(index: number): void {
    const node = this.nodes[index - 1]!;
    if (node.crashed) return;
    node.crashed = true;
    node.member = false;
    node.clock.crash();
    node.seat.stop();
    node.worker.stop();
    this.clock.after(DETECT_MS, () => this.announceMembers());
  }

  /**
   * A Leader, as a leader call would make one: the elected node claims its term at the first call
   * that needs a leader (leader_seat.ts standby), so ask it (seat.leading) and run until it leads.
   */
  async ensureLeader(): Promise<void> {
    await this.runUntil(() => this.nodes.some((n) => !n.crashed && n.seat.elected() === n.addr), 60_000);
    for (const n of this.nodes) if (!n.crashed && n.seat.elected() === n.addr) void n.seat.leading();
    await this.runUntil(() => this.currentLeader() !== undefined, 60_000);
  }

  /** The Leader now: the one of the highest term among the nodes that run (a paused stale one may still think it leads). */
  currentLeader(): Leader | undefined {
    let best: Leader | undefined;
    for (const n of this.nodes) {
      const l = n.crashed ? undefined : n.seat.current();
      if (l && (!best || l.term > best.term)) best = l;
    }
    return best;
  }

  /** The current Leader; after stop(), the one that led last (its jobs can still be listed and watched). */
  get leader(): Leader {
    const l = this.currentLeader() ?? this.lastLeader;
    if (!l) throw new Error(`seed ${this.opts.seed}: no node leads RainStorm at ${Math.round(this.clock.nowMs())} ms`);
    return l;
  }

  /** The node of the current leader. */
  leaderNode(): SimNode {
    const l = this.leader;
    return this.nodes.find((n) => n.seat.current() === l)!;
  }

  /** The leader's node crashes (leader and worker): DETECT_MS later the others elect a successor, which claims the next term and takes the jobs over. */
  crashLeader(): number {
    const node = this.leaderNode();
    this.crash(node.index);
    return node.index;
  }

  /**
   * The leader's node stops for `ms` (SIGSTOP: it neither runs nor answers). Past DETECT_MS the
   * others declare it failed and a successor takes over; when it resumes, its old Leader goes on
   * where it was, under its old term, and DETECT_MS later its memberd has rejoined under a new
   * (younger) id, so its seat sees the successor elected. Returns the paused node and its Leader.
   */
  pauseLeader(ms: number): { index: number; leader: Leader } {
    const node = this.leaderNode();
    const leader = this.leader;
    this.pause(node.index, ms);
    return { index: node.index, leader };
  }

  /** Node `index` stops for `ms` (see pauseLeader). */
  pause(index: number, ms: number): void {
    const node = this.nodes[index - 1]!;
    node.clock.pause();
    this.clock.after(DETECT_MS, () => {
      if (!node.clock.paused || node.crashed) return;
      node.member = false;
      this.announceMembers();
    });
    this.clock.after(ms, () => {
      if (node.crashed) return;
      node.clock.resume();
      if (node.member) return; // back before anyone noticed
      // Its memberd learns it was declared failed and renews its id: rainstormd drops what it ran (start.ts onRenewed).
      void node.worker.abandonAll("this node was declared failed and rejoins under a new id");
      this.clock.after(DETECT_MS, () => {
        if (node.crashed) return;
        node.member = true;
        node.bootMs = this.clock.wallMs();
        this.announceMembers();
      });
    });
  }

  /** Kill one running task of `job`, picked by the seeded generator; returns what was killed, if any. */
  killRandomTask(job: string): { node: number; stage: number; index: number; pid: number } | undefined {
    const running = this.nodes
      .filter((n) => !n.crashed && !n.clock.paused)
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

  /** Run the clock `ms` further (timers of the workers' guards included). */
  async runFor(ms: number): Promise<void> {
    let over = false;
    this.clock.after(ms, () => (over = true));
    await this.runUntil(() => over, ms + 1);
  }

  /**
   * Store `input` as `src`, submit the job (`args` as ctl sends them, src and dest included) to
   * the leader and run until it is done, failed or cancelled. `onEvent` sees every event as it
   * happens (to fire faults). The run follows the job across failovers as ctl does: once another
   * leader has taken over, its events come from `watch` on it (its recent past, then live; each
   * event once, by ReplayFilter), and the old leader's are ignored from then on.
   */
  async runJob(args: string[], input: string, onEvent: (ev: JobEvent, run: SimRun) => void = () => {}, limitMs = 600_000): Promise<SimRun> {
    const spec = parseJobArgs(args);
    this.store.files.set(spec.src, input);
    await this.ensureLeader();
    const run: SimRun = { job: "", events: [], outputs: [], done: false, cancelled: false, dest: "", terms: [] };
    const seen = new ReplayFilter();
    let followed = this.leader;
    run.terms.push(followed.term);
    const listenerOf = (leader: Leader) => (ev: JobEvent) => {
      if (leader !== followed || !seen.admit(ev)) return;
      if (ev.event === "output") run.outputs.push(...ev.lines);
      else run.events.push(ev);
      if (ev.event === "done") run.done = true;
      if (ev.event === "failed") run.failed = ev.error;
      if (ev.event === "cancelled") run.cancelled = true;
      onEvent(ev, run);
    };
    let refused: Error | undefined;
    const first = followed;
    // As ctl does, the submitter names the job: it can follow it from before any answer.
    const proposed = `job-sim-${++this.submissions}`;
    void first.submit(spec, listenerOf(first), proposed).then(
      (id) => (run.job = id),
      (err: Error) => (refused = err),
    );
    const jobId = () => run.job || proposed;
    const follow = () => {
      const now = this.currentLeader();
      if (!now || now === followed || run.failed !== undefined) return;
      const id = jobId();
      if (!now.jobList().some((j) => j.job === id)) {
        run.failed = `job ${id ?? "(not yet placed)"} was not taken over by the leader of term ${now.term}`;
        return;
      }
      followed = now;
      run.terms.push(now.term);
      const listener = listenerOf(now);
      for (const ev of now.watch(id!, listener).recent) listener(ev);
    };
    await this.runUntil(() => {
      follow();
      return run.done || run.failed !== undefined || run.cancelled || refused !== undefined;
    }, limitMs);
    if (refused) throw refused;
    run.job ||= jobId() ?? "";
    run.dest = this.store.files.get(spec.dest) ?? "";
    return run;
  }

  /** Stop every worker's and seat's timers (the virtual clock then holds nothing of this run). */
  stop(): void {
    this.lastLeader = this.currentLeader() ?? this.lastLeader;
    for (const n of this.nodes) {
      n.seat.stop();
      n.worker.stop();
    }
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
 * the expected outputs. With `leaderFaults`, a fault may also be a crash of the leader's node or
 * its pause past failure detection; the run then also checks that nothing of the job is left on
 * any worker and that a paused leader stepped down. Returns what went wrong (nothing, if dest is
 * exactly golden).
 */
export async function chaosRun(seed: number, lines: string[], opts: { leaderFaults?: boolean } = {}): Promise<ChaosResult> {
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
  const paused: Leader[] = [];
  let crashes = 0;
  const fault = (at: number, job: string) => {
    // A crash needs a node to spare: one more keeps running tasks.
    const spare = crashes < nodes - 2;
    const leaderFault = opts.leaderFaults ? plan.next() : 1;
    const crash = leaderFault >= 0.4 && plan.next() < 0.3 && spare;
    if (crash || (leaderFault < 0.25 && spare)) crashes++;
    sim.clock.after(0, () => {
      if (leaderFault < 0.4 && sim.currentLeader()) {
        const term = sim.leader.term;
        if (leaderFault < 0.25 && spare) return void faults.push(`crash leader node ${sim.crashLeader()} (term ${term}) at ${at} outputs`);
        const ms = 2 * DETECT_MS + Math.floor(plan.next() * 3000);
        const p = sim.pauseLeader(ms);
        paused.push(p.leader);
        return void faults.push(`pause leader node ${p.index} (term ${term}) for ${ms} ms at ${at} outputs`);
      }
      if (crash) {
        const leaderNode = sim.currentLeader() ? sim.leaderNode().index : 1;
        const up = sim.nodes.filter((n) => n.index !== leaderNode && !n.crashed && !n.clock.paused);
        const victim = up[Math.floor(plan.next() * up.length)]!;
        sim.crash(victim.index);
        faults.push(`crash node ${victim.index} at ${at} outputs`);
      } else {
        const k = sim.killRandomTask(job);
        faults.push(k ? `kill stage${k.stage}[${k.index}] on node ${k.node} at ${at} outputs` : `kill at ${at} outputs: no running task`);
      }
    });
  };
  try {
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), `${lines.join("\n")}\n`, (ev, r) => {
      if (ev.event !== "output") return;
      while (thresholds.length > 0 && r.outputs.length >= thresholds[0]!) fault(thresholds.shift()!, r.job);
    });
    const restarts = run.events.filter((e) => e.event === "task_restarted").length;
    const problems = app1Problems(run, golden);
    if (opts.leaderFaults) problems.push(...(await afterJobProblems(sim, run, paused)));
    return { seed, problems, faults, restarts, virtualMs: Math.round(sim.clock.nowMs()) };
  } catch (err) {
    return { seed, problems: [(err as Error).message], faults, restarts: 0, virtualMs: Math.round(sim.clock.nowMs()) };
  } finally {
    sim.stop();
  }
}

/** Run AFTER_JOB_MS on, then: is any task or operator of the job left on a worker, and did every paused leader step down? */
async function afterJobProblems(sim: RainstormSim, run: SimRun, paused: Leader[]): Promise<string[]> {
  await sim.runFor(AFTER_JOB_MS);
  const problems: string[] = [];
  const left = sim.leftOf(run.job);
  if (left.tasks.length > 0 || left.livePids.length > 0)
    problems.push(`left after the job: tasks ${left.tasks.join(", ")}; live operator pids ${left.livePids.join(", ")}`);
  for (const l of paused) if (!l.isStopped) problems.push(`the paused leader of term ${l.term} did not step down`);
  return problems;
}

// ---- leader failover at each step of a job (rainstorm_failover_sim_test.ts, scripts/bench/rainstorm_sim.ts --leader-faults) ----

/** The job command of grep then echo (stateless: at-least-once cannot repeat a count) over `src` into `dest`. */
export function grepEchoArgs(src: string, dest: string, exactlyOnce: boolean): string[] {
  const stages = `stage0 grep-wrapper ${APP1_PATTERN} ${APP1_COL} stage1 echo-wrapper`;
  return ["2", "3", "-stage-config-map", stages, src, dest, String(exactlyOnce), "false", "0", "0", "0"];
}

/** Every result of grep then echo over `lines`, as dest lines. */
export function grepEchoGolden(lines: string[]): string[] {
  const grep = operatorFactory("grep-wrapper")!([APP1_PATTERN, String(APP1_COL)]);
  return lines.flatMap((l) => grep.process("", l)).map((o) => `${o.key}\t${o.value}`);
}

/**
 * Where in a job the leader fails:
 * - `before_accept`: crash once the first task start reached a worker (no task_started heard yet);
 * - `while_starting`: crash once some, not all, task starts reached their workers;
 * - `early`, `mid`, `late`: crash at ~10 %, ~50 %, ~90 % of the results streamed;
 * - `settle`: crash once the source heard that the leader took its end (the leader is collecting the last output notices before `done`);
 * - `pause`: a pause past failure detection at 30-60 % of the results; the old leader wakes with its old term;
 * - `pause_starting`: the same while the task starts are under way (its start calls go out when it wakes: refused);
 * - `two_crashes`: a crash at ~25 %, and its successor's crash at ~60 %.
 */
export const LEADER_STEPS = ["before_accept", "while_starting", "early", "mid", "late", "settle", "pause", "pause_starting", "two_crashes"] as const;
export type LeaderStep = (typeof LEADER_STEPS)[number];

/**
 * How long the simulator runs on after a job ended before it checks that nothing of the job is
 * left (the workers' orphan guard has a 2 s period and a 2 s grace).
 */
export const AFTER_JOB_MS = 10_000;

export interface LeaderFaultResult {
  seed: number;
  step: LeaderStep;
  problems: string[];
  /** What was done, and when: "crash leader node 1 (term 1) at 41 ms". */
  faults: string[];
  /** The terms of the leaders the run followed. */
  terms: number[];
  /** The names of the run's events (outputs aside), in order. */
  events: string[];
  /** Calls the workers refused for a stale leader term. */
  staleRefusals: number;
  virtualMs: number;
}

/**
 * One seeded run of App 1 (exactly-once: dest exactly golden, counts rising to golden, tuples_out
 * right) or of grep then echo (at-least-once: no result lost, none invented) with the leader
 * failing at `step`. Afterwards no task or operator of the job may be left on any worker, and a
 * paused leader must have stepped down.
 */
export async function leaderFaultRun(seed: number, lines: string[], step: LeaderStep, exactlyOnce = true): Promise<LeaderFaultResult> {
  const plan = seededRng((seed * 2654435761) >>> 0);
  const sim = new RainstormSim({
    seed,
    nodes: step === "two_crashes" ? 5 : 4 + Math.floor(plan.next() * 2),
    lossRate: plan.next() * 0.05,
    delayMs: [1, 1 + plan.next() * 5],
    rainstorm: { batch_size: 8 + Math.floor(plan.next() * 32), window: 1 + Math.floor(plan.next() * 6) },
  });
  const eoGolden = app1Golden(lines);
  const expected = exactlyOnce ? eoGolden.dest : grepEchoGolden(lines);
  const faults: string[] = [];
  const paused: Leader[] = [];
  const now = () => Math.round(sim.clock.nowMs());
  const fire = (what: "crash" | "pause") =>
    sim.clock.after(0, () => {
      if (!sim.currentLeader()) return void faults.push(`${what} at ${now()} ms: no leader to fail`);
      const term = sim.leader.term;
      if (what === "crash") return void faults.push(`crash leader node ${sim.crashLeader()} (term ${term}) at ${now()} ms`);
      const ms = 2 * DETECT_MS + Math.floor(plan.next() * 3000);
      const p = sim.pauseLeader(ms);
      paused.push(p.leader);
      faults.push(`pause leader node ${p.index} (term ${term}) for ${ms} ms at ${now()} ms`);
    });
  // Fault points: task starts reaching workers, or fractions of the expected results streamed.
  let starts = 0;
  const startAt = step === "before_accept" ? 1 : 2 + Math.floor(plan.next() * 3);
  if (step === "before_accept" || step === "while_starting" || step === "pause_starting")
    sim.hooks.taskStarting = () => void (++starts === startAt && fire(step === "pause_starting" ? "pause" : "crash"));
  let settled = false;
  if (step === "settle") sim.hooks.sourceReported = (r) => void (r.state === "done" && !settled && (settled = true) && fire("crash"));
  const jitter = () => (plan.next() - 0.5) * 0.1;
  const fractions: Partial<Record<LeaderStep, number[]>> = {
    early: [0.1 + jitter()],
    mid: [0.5 + jitter()],
    late: [0.9 + jitter()],
    pause: [0.3 + plan.next() * 0.3],
    two_crashes: [0.25 + jitter(), 0.6 + jitter()],
  };
  const points = (fractions[step] ?? []).map((f) => Math.floor(expected.length * f));
  const args = exactlyOnce ? app1Args("in.csv", "out.txt", true) : grepEchoArgs("in.csv", "out.txt", false);
  try {
    const run = await sim.runJob(args, `${lines.join("\n")}\n`, (ev, r) => {
      while (ev.event === "output" && points.length > 0 && r.outputs.length >= points[0]!) {
        points.shift();
        fire(step === "pause" ? "pause" : "crash");
      }
    });
    const problems = exactlyOnce ? app1Problems(run, eoGolden) : lossProblems(run, expected);
    if (faults.length === 0) problems.push("no fault was fired");
    const end = run.events.at(-1);
    if (!run.done) problems.push(`the job did not end done: ${JSON.stringify(end)}`);
    else if (exactlyOnce && end?.event === "done" && end.tuples_out !== expected.length)
      problems.push(`done says tuples_out ${end.tuples_out}, dest has ${expected.length} results`);
    problems.push(...(await afterJobProblems(sim, run, paused)));
    const events = run.events.map((e) => e.event);
    return { seed, step, problems, faults, terms: run.terms, events, staleRefusals: sim.staleRefusals.length, virtualMs: now() };
  } catch (err) {
    return { seed, step, problems: [(err as Error).message], faults, terms: [], events: [], staleRefusals: sim.staleRefusals.length, virtualMs: now() };
  } finally {
    sim.stop();
  }
}

/** What an at-least-once run lost or invented: every expected line in dest at least once, nothing else. */
function lossProblems(run: SimRun, expected: string[]): string[] {
  if (run.failed !== undefined) return [`job failed: ${run.failed}`];
  const stored = new Set(run.dest.split("\n").filter(Boolean));
  const want = new Set(expected);
  const missing = expected.filter((l) => !stored.has(l));
  const extra = [...stored].filter((l) => !want.has(l));
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`dest lost ${missing.length} results, e.g. ${JSON.stringify(missing.slice(0, 3))}`);
  if (extra.length > 0) problems.push(`dest has ${extra.length} lines no input gives, e.g. ${JSON.stringify(extra.slice(0, 3))}`);
  return problems;
}
