/**
 * RainStorm in tests and benchmarks: a thin adapter over the one client (rainstorm/client.ts)
 * that submits a job to the leader (node 1) of a LocalCluster and collects its event stream,
 * lists and kills tasks; and the check of an exactly-once App 1 run.
 */
import { RainstormClient, RainstormHttpError } from "../rainstorm/client.ts";
import type { JobEvent, ListedTask, WorkerTask } from "../rainstorm/model.ts";
import type { LocalCluster } from "./cluster.ts";
import { multisetDiff, runningCountLines } from "./reference.ts";

export interface JobRun {
  events: Record<string, any>[];
  /** Output lines `key\tvalue`, as streamed to the submitter. */
  outputs: string[];
  done?: Record<string, any>;
  failed?: string;
  /** HTTP error before the job started (validation). */
  rejected?: { status: number; error: string };
}

const RAINSTORM_PORT = 15000;
/** A test's call to list or kill tasks: a leader answers in milliseconds, a loaded 2-core box in well under this. */
const CALL_TIMEOUT_MS = 5000;

export class RainstormTestClient {
  private readonly client: RainstormClient;

  constructor(private readonly c: LocalCluster) {
    this.client = new RainstormClient(c.http);
  }

  /** "host:port" of node k's rainstormd. */
  addr(k: number): string {
    return `${this.c.host(k)}:${RAINSTORM_PORT}`;
  }

  url(k: number, path: string): string {
    return `http://${this.addr(k)}${path}`;
  }

  /**
   * Submit `args` (the words after `rainstorm`) to the leader (node 1) and read events until the
   * job ends or `timeoutMs` passes. `onEvent` sees each event as it arrives (to act mid-job).
   */
  async run(args: string[], timeoutMs = 60_000, onEvent?: (ev: Record<string, any>) => void): Promise<JobRun> {
    const run: JobRun = { events: [], outputs: [] };
    let events: AsyncGenerator<JobEvent>;
    try {
      events = (await this.client.submitJob(this.addr(1), args, { totalMs: timeoutMs })).events;
    } catch (err) {
      if (!(err instanceof RainstormHttpError)) throw err;
      run.rejected = { status: err.status, error: err.error };
      return run;
    }
    for await (const ev of events) {
      run.events.push(ev);
      if (ev.event === "output") run.outputs.push(...ev.lines);
      if (ev.event === "done") run.done = ev;
      if (ev.event === "failed") run.failed = ev.error;
      onEvent?.(ev);
    }
    return run;
  }

  tasks(): Promise<ListedTask[]> {
    return this.client.listTasks(this.addr(1), { timeoutMs: CALL_TIMEOUT_MS });
  }

  /** Node k's worker's own task list (GET /worker/tasks): counters per task, pid included. */
  workerTasks(k: number, timeoutMs = CALL_TIMEOUT_MS): Promise<WorkerTask[]> {
    return this.client.workerTasks(this.addr(k), { timeoutMs });
  }

  /**
   * Kill a task's operator through the leader. The answer, refusals included, comes back as a
   * Response (its status and JSON body), which is what the tests and the bench assert on.
   */
  async killTask(node: string, pid: number): Promise<Response> {
    try {
      return Response.json(await this.client.killTask(this.addr(1), node, pid, { timeoutMs: CALL_TIMEOUT_MS }));
    } catch (err) {
      if (err instanceof RainstormHttpError) return Response.json(err.body, { status: err.status });
      throw err;
    }
  }
}

/**
 * How an exactly-once App 1 run (`key\tcount` outputs) differs from the reference counts: the
 * final count of every key, each key's counts strictly increasing as emitted, and `stored` (the
 * lines of dest) being exactly `key\t1..N` per key, each once. Empty when it is exact.
 */
export function countViolations(outputs: string[], stored: string[], reference: Map<string, number>): string[] {
  const problems: string[] = [];
  const last = new Map<string, number>();
  for (const line of outputs) {
    const tab = line.lastIndexOf("\t");
    const key = line.slice(0, tab);
    const count = Number(line.slice(tab + 1));
    if (!(count > (last.get(key) ?? 0))) problems.push(`key ${JSON.stringify(key)}: count ${count} emitted after ${last.get(key)}`);
    last.set(key, count);
  }
  for (const key of new Set([...last.keys(), ...reference.keys()])) {
    if (last.get(key) !== reference.get(key)) problems.push(`key ${JSON.stringify(key)}: final count ${last.get(key)}, expected ${reference.get(key)}`);
  }
  // dest must hold exactly key\t1..N per key: its content, not only its length.
  for (const p of multisetDiff(stored, runningCountLines(reference))) problems.push(`dest: ${p}`);
  return problems.slice(0, 20);
}
