/**
 * The seam between RainStorm nodes: what the leader asks a worker (start, stop, routes, retire,
 * kill, list, flush its output notices), what a worker sends to the next hop (batches to a task)
 * and what it reports back (a task died, a last-stage task's outputs). Three implementations:
 * - HttpTransport: the calls as they go over the wire (the routes in http.ts), unchanged;
 * - InProcessTransport: direct calls to endpoints registered by address (the simulator wires a
 *   whole cluster with it; the leader uses it for its own node's worker);
 * - localFirst: the leader's own node in-process, every other node over HTTP.
 * A call that the receiver refuses or cannot make rejects; callers decide whether to retry.
 */
import type { ClusterHttp } from "../shared/http.ts";
import { CALL_TIMEOUT_MS, RainstormClient } from "./client.ts";
import type { Adopted, Batch, OutputsNotice, Routes, SourceReport, SourceStart, TaskDeath, TaskStart, TaskStarted, WorkerTask } from "./model.ts";

// The wire shapes are model.ts's; this name has always been imported from here too.
export type { TaskDeath };

export interface RainstormTransport {
  startTask(addr: string, start: TaskStart): Promise<TaskStarted>;
  setRoutes(addr: string, job: string, routes: Routes): Promise<void>;
  /** `term`: the calling leader's (a worker that has seen a higher one refuses, election.ts); absent for callers that are no leader. */
  stopJob(addr: string, job: string, endOfStream: boolean, term?: number): Promise<void>;
  /** Resolves once the worker has retired the task (it waits until the task is idle). */
  retireTask(addr: string, job: string, stage: number, index: number, term?: number): Promise<void>;
  killTask(addr: string, pid: number, term?: number): Promise<void>;
  /** A new leader's term to the worker, which answers the tasks and sources it runs (or refuses a term lower than one it has seen). */
  adopt(addr: string, term: number): Promise<Adopted>;
  /** Run a job's source on the worker (source_task.ts); resolves once it started. */
  startSource(addr: string, start: SourceStart): Promise<void>;
  /** A source's report to the leader (its progress, or its end). */
  reportSource(leaderAddr: string, report: SourceReport): Promise<void>;
  listTasks(addr: string): Promise<WorkerTask[]>;
  /** Resolves once the receiver acknowledged the batch (end to end, see worker.ts). */
  sendBatch(addr: string, batch: Batch, timeoutMs: number): Promise<void>;
  reportTaskDied(leaderAddr: string, death: TaskDeath): Promise<void>;
  /** One output notice to the leader (outputs.ts); rejects when it did not take it; resolves whether the job's next notices should carry their lines. */
  sendOutputs(leaderAddr: string, notice: OutputsNotice): Promise<boolean>;
  /** Resolves once the worker's notice queue holds nothing of `job` (or it gave up after FLUSH_OUTPUTS_WAIT_MS). */
  /** Resolves true once the worker's output notices of the job reached the leader, false if it gave up waiting. */
  flushOutputs(addr: string, job: string): Promise<boolean>;
}

/** Default deadline of a control call to a worker (the client's default). */
export const CONTROL_CALL_TIMEOUT_MS = CALL_TIMEOUT_MS;
/** How long the leader waits for a worker to retire a removed task (the worker gives up at 30 s). */
export const RETIRE_CALL_TIMEOUT_MS = 35_000;
/** Deadline of a worker's task list (list_tasks, autoscale samples). */
export const LIST_CALL_TIMEOUT_MS = 2000;
/** Deadline of one task death report (the caller retries). */
export const REPORT_CALL_TIMEOUT_MS = 2000;
/** Deadline of one output notice (the worker's notice queue retries). */
export const NOTICE_CALL_TIMEOUT_MS = 5000;
/** How long a worker waits for its notices of a job to reach the leader before it answers flush_outputs anyway. */
export const FLUSH_OUTPUTS_WAIT_MS = 10_000;
/** Deadline of a flush_outputs call: the worker's wait and a margin. */
export const FLUSH_CALL_TIMEOUT_MS = FLUSH_OUTPUTS_WAIT_MS + 2000;

/** Today's wire, through the one client of rainstormd (client.ts): JSON control calls, msgpack batches, signed. */
export class HttpTransport implements RainstormTransport {
  private readonly client: RainstormClient;

  constructor(http: ClusterHttp) {
    this.client = new RainstormClient(http);
  }

  startTask(addr: string, start: TaskStart): Promise<TaskStarted> {
    return this.client.startTask(addr, start, { timeoutMs: CONTROL_CALL_TIMEOUT_MS });
  }

  setRoutes(addr: string, job: string, routes: Routes): Promise<void> {
    return this.client.setRoutes(addr, job, routes, { timeoutMs: CONTROL_CALL_TIMEOUT_MS });
  }

  async stopJob(addr: string, job: string, endOfStream: boolean, term?: number): Promise<void> {
    await this.client.stopJob(addr, job, endOfStream, { timeoutMs: CONTROL_CALL_TIMEOUT_MS, term });
  }

  async retireTask(addr: string, job: string, stage: number, index: number, term?: number): Promise<void> {
    await this.client.retireTask(addr, job, stage, index, { timeoutMs: RETIRE_CALL_TIMEOUT_MS, term });
  }

  async killTask(addr: string, pid: number, term?: number): Promise<void> {
    await this.client.killPid(addr, pid, { timeoutMs: CONTROL_CALL_TIMEOUT_MS, term });
  }

  adopt(addr: string, term: number): Promise<Adopted> {
    return this.client.adopt(addr, term, { timeoutMs: LIST_CALL_TIMEOUT_MS });
  }

  startSource(addr: string, start: SourceStart): Promise<void> {
    return this.client.startSource(addr, start, { timeoutMs: CONTROL_CALL_TIMEOUT_MS });
  }

  reportSource(leaderAddr: string, report: SourceReport): Promise<void> {
    return this.client.reportSource(leaderAddr, report, { timeoutMs: REPORT_CALL_TIMEOUT_MS });
  }

  listTasks(addr: string): Promise<WorkerTask[]> {
    return this.client.workerTasks(addr, { timeoutMs: LIST_CALL_TIMEOUT_MS });
  }

  sendBatch(addr: string, batch: Batch, timeoutMs: number): Promise<void> {
    return this.client.sendBatch(addr, batch, timeoutMs);
  }

  reportTaskDied(leaderAddr: string, death: TaskDeath): Promise<void> {
    return this.client.reportTaskDied(leaderAddr, death, { timeoutMs: REPORT_CALL_TIMEOUT_MS });
  }

  sendOutputs(leaderAddr: string, notice: OutputsNotice): Promise<boolean> {
    return this.client.sendOutputs(leaderAddr, notice, { timeoutMs: NOTICE_CALL_TIMEOUT_MS });
  }

  flushOutputs(addr: string, job: string): Promise<boolean> {
    return this.client.flushOutputs(addr, job, { timeoutMs: FLUSH_CALL_TIMEOUT_MS });
  }
}

/** What a worker does for the transport (worker.ts Worker has exactly these). */
export interface WorkerEndpoint {
  startTask(start: TaskStart): TaskStarted;
  setRoutes(job: string, routes: Routes): void;
  stopJob(job: string, endOfStream?: boolean, term?: number): Promise<number>;
  retireTask(job: string, stage: number, index: number, quietMs?: number, timeoutMs?: number, term?: number): Promise<number | false>;
  killPid(pid: number, term?: number): TaskStart | undefined;
  adopt(term: number): Adopted;
  startSource(start: SourceStart): void;
  list(): WorkerTask[];
  handleBatch(batch: Batch): Promise<void>;
  flushOutputs(job: string): Promise<boolean>;
}

/** What the leader does for the transport (leader.ts Leader has exactly these). */
export interface LeaderEndpoint {
  outputs(notice: OutputsNotice): Promise<{ lines: boolean }>;
  onTaskDied(death: TaskDeath): Promise<void>;
  onSourceReport(report: SourceReport): Promise<void>;
}

/** A call to an address nothing is registered at (a crashed node, in the simulator). */
export class Unreachable extends Error {}

/**
 * Direct calls to endpoints by address. Answers and refusals are those of the endpoint itself,
 * except that an address without an endpoint rejects with Unreachable and, as over HTTP, a
 * retire or kill of a task the worker does not have rejects (404 on the wire).
 */
export class InProcessTransport implements RainstormTransport {
  private readonly workers = new Map<string, WorkerEndpoint>();
  private readonly leaders = new Map<string, LeaderEndpoint>();

  register(addr: string, endpoints: { worker?: WorkerEndpoint; leader?: LeaderEndpoint }): void {
    if (endpoints.worker) this.workers.set(addr, endpoints.worker);
    if (endpoints.leader) this.leaders.set(addr, endpoints.leader);
  }

  /** Whether anything is registered at `addr`. */
  has(addr: string): boolean {
    return this.workers.has(addr) || this.leaders.has(addr);
  }

  unregister(addr: string): void {
    this.workers.delete(addr);
    this.leaders.delete(addr);
  }

  private worker(addr: string): WorkerEndpoint {
    const w = this.workers.get(addr);
    if (!w) throw new Unreachable(`${addr}: no worker there`);
    return w;
  }

  private leader(addr: string): LeaderEndpoint {
    const l = this.leaders.get(addr);
    if (!l) throw new Unreachable(`${addr}: no leader there`);
    return l;
  }

  async startTask(addr: string, start: TaskStart): Promise<TaskStarted> {
    return this.worker(addr).startTask(start);
  }

  async setRoutes(addr: string, job: string, routes: Routes): Promise<void> {
    this.worker(addr).setRoutes(job, routes);
  }

  async stopJob(addr: string, job: string, endOfStream: boolean, term?: number): Promise<void> {
    await this.worker(addr).stopJob(job, endOfStream, term);
  }

  async retireTask(addr: string, job: string, stage: number, index: number, term?: number): Promise<void> {
    if ((await this.worker(addr).retireTask(job, stage, index, undefined, undefined, term)) === false)
      throw new Error(`${addr}: task ${job}/${stage}/${index} is not running on this worker`);
  }

  async killTask(addr: string, pid: number, term?: number): Promise<void> {
    if (!this.worker(addr).killPid(pid, term)) throw new Error(`${addr}: pid ${pid} is not an operator process of this worker`);
  }

  async adopt(addr: string, term: number): Promise<Adopted> {
    return this.worker(addr).adopt(term);
  }

  async startSource(addr: string, start: SourceStart): Promise<void> {
    this.worker(addr).startSource(start);
  }

  async reportSource(leaderAddr: string, report: SourceReport): Promise<void> {
    await this.leader(leaderAddr).onSourceReport(report);
  }

  async listTasks(addr: string): Promise<WorkerTask[]> {
    return this.worker(addr).list();
  }

  async sendBatch(addr: string, batch: Batch): Promise<void> {
    await this.worker(addr).handleBatch(batch);
  }

  async reportTaskDied(leaderAddr: string, death: TaskDeath): Promise<void> {
    await this.leader(leaderAddr).onTaskDied(death);
  }

  async sendOutputs(leaderAddr: string, notice: OutputsNotice): Promise<boolean> {
    return (await this.leader(leaderAddr).outputs(notice)).lines;
  }

  async flushOutputs(addr: string, job: string): Promise<boolean> {
    return this.worker(addr).flushOutputs(job);
  }
}

/**
 * A node's transport: the endpoints registered in `here` (this node's own worker, and its leader
 * on the leader node) are called directly, as they always were; every other node over `remote`.
 * Batches always go through `remote`, even to this node: the data plane takes one path (and the
 * same checks, decodeBatch) whoever sends.
 */
export function localFirst(here: InProcessTransport, remote: RainstormTransport): RainstormTransport {
  const pick = (addr: string) => (here.has(addr) ? here : remote);
  return {
    startTask: (addr, start) => pick(addr).startTask(addr, start),
    setRoutes: (addr, job, routes) => pick(addr).setRoutes(addr, job, routes),
    stopJob: (addr, job, endOfStream, term) => pick(addr).stopJob(addr, job, endOfStream, term),
    retireTask: (addr, job, stage, index, term) => pick(addr).retireTask(addr, job, stage, index, term),
    killTask: (addr, pid, term) => pick(addr).killTask(addr, pid, term),
    adopt: (addr, term) => pick(addr).adopt(addr, term),
    startSource: (addr, start) => pick(addr).startSource(addr, start),
    reportSource: (leaderAddr, report) => pick(leaderAddr).reportSource(leaderAddr, report),
    listTasks: (addr) => pick(addr).listTasks(addr),
    sendBatch: (addr, batch, timeoutMs) => remote.sendBatch(addr, batch, timeoutMs),
    reportTaskDied: (leaderAddr, death) => pick(leaderAddr).reportTaskDied(leaderAddr, death),
    sendOutputs: (leaderAddr, notice) => pick(leaderAddr).sendOutputs(leaderAddr, notice),
    flushOutputs: (addr, job) => pick(addr).flushOutputs(addr, job),
  };
}

/** A worker tells the leader of a dead task up to this many times... */
export const DEATH_REPORT_ATTEMPTS = 10;
/** ...waiting this long times the attempt number between tries. */
export const DEATH_REPORT_BACKOFF_MS = 200;

/** Tell the leader that a task died, retrying with growing pauses; false if it never took the report. */
export async function reportDeath(transport: RainstormTransport, leaderAddr: string, death: TaskDeath, sleep: (ms: number) => Promise<void>): Promise<boolean> {
  for (let attempt = 1; attempt <= DEATH_REPORT_ATTEMPTS; attempt++) {
    try {
      await transport.reportTaskDied(leaderAddr, death);
      return true;
    } catch {}
    await sleep(DEATH_REPORT_BACKOFF_MS * attempt);
  }
  return false;
}
