/**
 * The seam between RainStorm nodes: what the leader asks a worker (start, stop, routes, retire,
 * kill, list), what a worker sends to the next hop (batches to a task or to the leader's sink) and
 * what it reports back (a task died). Three implementations:
 * - HttpTransport: the calls as they go over the wire (the routes in http.ts), unchanged;
 * - InProcessTransport: direct calls to endpoints registered by address (the simulator wires a
 *   whole cluster with it; the leader uses it for its own node's worker);
 * - localFirst: the leader's own node in-process, every other node over HTTP.
 * A call that the receiver refuses or cannot make rejects; callers decide whether to retry.
 */
import { encode } from "@msgpack/msgpack";
import type { ClusterHttp } from "../shared/http.ts";
import type { Batch, Routes, TaskStart } from "./worker.ts";

/** What a worker answers to a start: the operator's pid and the task's local log file. */
export interface StartedTask {
  pid: number;
  logPath: string;
}

/** A task as its worker lists it (GET /worker/tasks). */
export interface TaskListing {
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
}

/** A worker's report that a task's operator died unasked (POST /leader/task_died). */
export interface TaskDeath {
  job: string;
  stage: number;
  index: number;
  pid: number;
  reason: string;
}

/** Where a batch goes: a task's input (/data) or the leader's sink (/sink). */
export type BatchKind = "task" | "sink";

export interface RainstormTransport {
  startTask(addr: string, start: TaskStart): Promise<StartedTask>;
  setRoutes(addr: string, job: string, routes: Routes): Promise<void>;
  stopJob(addr: string, job: string, endOfStream: boolean): Promise<void>;
  /** Resolves once the worker has retired the task (it waits until the task is idle). */
  retireTask(addr: string, job: string, stage: number, index: number): Promise<void>;
  killTask(addr: string, pid: number): Promise<void>;
  listTasks(addr: string): Promise<TaskListing[]>;
  /** Resolves once the receiver acknowledged the batch (end to end, see worker.ts). */
  sendBatch(addr: string, kind: BatchKind, batch: Batch, timeoutMs: number): Promise<void>;
  reportTaskDied(leaderAddr: string, death: TaskDeath): Promise<void>;
}

/** Default deadline of a control call to a worker. */
export const CONTROL_CALL_TIMEOUT_MS = 5000;
/** How long the leader waits for a worker to retire a removed task (the worker gives up at 30 s). */
export const RETIRE_CALL_TIMEOUT_MS = 35_000;
/** Deadline of a worker's task list (list_tasks, autoscale samples). */
export const LIST_CALL_TIMEOUT_MS = 2000;
/** Deadline of one task death report (the caller retries). */
export const REPORT_CALL_TIMEOUT_MS = 2000;

/** Today's wire: JSON control calls, msgpack batches, every request signed by ClusterHttp. */
export class HttpTransport implements RainstormTransport {
  constructor(private readonly http: ClusterHttp) {}

  private async post(addr: string, path: string, body: unknown, timeoutMs = CONTROL_CALL_TIMEOUT_MS): Promise<any> {
    const res = await this.http.fetch(`http://${addr}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), timeoutMs });
    const text = await res.text();
    let data: any = text;
    try {
      data = JSON.parse(text);
    } catch {}
    if (!res.ok) throw new Error(`${addr}${path}: ${res.status} ${data?.error ?? text}`);
    return data;
  }

  async startTask(addr: string, start: TaskStart): Promise<StartedTask> {
    const r = await this.post(addr, "/worker/start", start);
    return { pid: r.pid, logPath: r.logPath };
  }

  async setRoutes(addr: string, job: string, routes: Routes): Promise<void> {
    await this.post(addr, "/worker/routes", { job, routes });
  }

  async stopJob(addr: string, job: string, endOfStream: boolean): Promise<void> {
    await this.post(addr, "/worker/stop_job", { job, end_of_stream: endOfStream });
  }

  async retireTask(addr: string, job: string, stage: number, index: number): Promise<void> {
    await this.post(addr, "/worker/retire", { job, stage, index }, RETIRE_CALL_TIMEOUT_MS);
  }

  async killTask(addr: string, pid: number): Promise<void> {
    await this.post(addr, "/worker/kill", { pid });
  }

  async listTasks(addr: string): Promise<TaskListing[]> {
    return (await (await this.http.fetch(`http://${addr}/worker/tasks`, { timeoutMs: LIST_CALL_TIMEOUT_MS })).json()) as TaskListing[];
  }

  async sendBatch(addr: string, kind: BatchKind, batch: Batch, timeoutMs: number): Promise<void> {
    const path = kind === "sink" ? "/sink" : "/data";
    const res = await this.http.fetch(`http://${addr}${path}`, { method: "POST", headers: { "content-type": "application/msgpack" }, body: encode(batch), timeoutMs });
    if (!res.ok) throw new Error(`${addr}${path}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }

  async reportTaskDied(leaderAddr: string, death: TaskDeath): Promise<void> {
    const res = await this.http.fetch(`http://${leaderAddr}/leader/task_died`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(death), timeoutMs: REPORT_CALL_TIMEOUT_MS });
    if (!res.ok) throw new Error(`${leaderAddr}/leader/task_died: ${res.status} ${await res.text()}`);
  }
}

/** What a worker does for the transport (worker.ts Worker has exactly these). */
export interface WorkerEndpoint {
  startTask(start: TaskStart): StartedTask;
  setRoutes(job: string, routes: Routes): void;
  stopJob(job: string, endOfStream?: boolean): Promise<number>;
  retireTask(job: string, stage: number, index: number): Promise<number | false>;
  killPid(pid: number): TaskStart | undefined;
  list(): TaskListing[];
  handleBatch(batch: Batch): Promise<void>;
}

/** What the leader does for the transport (leader.ts Leader has exactly these). */
export interface LeaderEndpoint {
  sink(batch: Batch): Promise<void>;
  onTaskDied(death: TaskDeath): Promise<void>;
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

  async startTask(addr: string, start: TaskStart): Promise<StartedTask> {
    return this.worker(addr).startTask(start);
  }

  async setRoutes(addr: string, job: string, routes: Routes): Promise<void> {
    this.worker(addr).setRoutes(job, routes);
  }

  async stopJob(addr: string, job: string, endOfStream: boolean): Promise<void> {
    await this.worker(addr).stopJob(job, endOfStream);
  }

  async retireTask(addr: string, job: string, stage: number, index: number): Promise<void> {
    if ((await this.worker(addr).retireTask(job, stage, index)) === false) throw new Error(`${addr}: task ${job}/${stage}/${index} is not running on this worker`);
  }

  async killTask(addr: string, pid: number): Promise<void> {
    if (!this.worker(addr).killPid(pid)) throw new Error(`${addr}: pid ${pid} is not an operator process of this worker`);
  }

  async listTasks(addr: string): Promise<TaskListing[]> {
    return this.worker(addr).list();
  }

  async sendBatch(addr: string, kind: BatchKind, batch: Batch): Promise<void> {
    if (kind === "sink") await this.leader(addr).sink(batch);
    else await this.worker(addr).handleBatch(batch);
  }

  async reportTaskDied(leaderAddr: string, death: TaskDeath): Promise<void> {
    await this.leader(leaderAddr).onTaskDied(death);
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
    stopJob: (addr, job, endOfStream) => pick(addr).stopJob(addr, job, endOfStream),
    retireTask: (addr, job, stage, index) => pick(addr).retireTask(addr, job, stage, index),
    killTask: (addr, pid) => pick(addr).killTask(addr, pid),
    listTasks: (addr) => pick(addr).listTasks(addr),
    sendBatch: (addr, kind, batch, timeoutMs) => remote.sendBatch(addr, kind, batch, timeoutMs),
    reportTaskDied: (leaderAddr, death) => pick(leaderAddr).reportTaskDied(leaderAddr, death),
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
