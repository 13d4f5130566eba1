/**
 * A minimal RainStorm client for tests and benchmarks: submit a job to the leader of a
 * LocalCluster and collect its event stream; list and kill tasks.
 */
import { readLines } from "../shared/lines.ts";
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
const JSON_HEADERS = { "content-type": "application/json" };

export class RainstormTestClient {
  constructor(private readonly c: LocalCluster) {}

  url(k: number, path: string): string {
    return `http://${this.c.host(k)}:${RAINSTORM_PORT}${path}`;
  }

  /**
   * Submit `args` (the words after `rainstorm`) to the leader (node 1) and read events until the
   * job ends or `timeoutMs` passes. `onEvent` sees each event as it arrives (to act mid-job).
   */
  async run(args: string[], timeoutMs = 60_000, onEvent?: (ev: Record<string, any>) => void): Promise<JobRun> {
    const res = await this.c.http.fetch(this.url(1, "/jobs"), { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ args }), timeoutMs });
    const run: JobRun = { events: [], outputs: [] };
    if (!res.ok) {
      const text = await res.text();
      let error = text;
      try {
        error = (JSON.parse(text) as { error: string }).error ?? text;
      } catch {}
      run.rejected = { status: res.status, error };
      return run;
    }
    for await (const line of readLines(res.body!)) {
      if (!line) continue;
      const ev = JSON.parse(line);
      run.events.push(ev);
      if (ev.event === "output") run.outputs.push(...ev.lines);
      if (ev.event === "done") run.done = ev;
      if (ev.event === "failed") run.failed = ev.error;
      onEvent?.(ev);
    }
    return run;
  }

  async tasks(): Promise<{ job: string; stage: number; task: number; node: string; pid: number; op: string; rate: number | null; restarts: number; log: string }[]> {
    const res = await this.c.http.fetch(this.url(1, "/tasks"), { timeoutMs: 5000 });
    return ((await res.json()) as { tasks: any[] }).tasks;
  }

  async killTask(node: string, pid: number): Promise<Response> {
    return this.c.http.fetch(this.url(1, "/kill_task"), { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ node, pid }), timeoutMs: 5000 });
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
