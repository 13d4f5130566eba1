/**
 * A minimal RainStorm client for tests and benchmarks: submit a job to the leader of a
 * LocalCluster and collect its event stream; list and kill tasks.
 */
import { readLines } from "../shared/lines.ts";
import type { LocalCluster } from "./cluster.ts";

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

export class RainstormTestClient {
  constructor(private readonly c: LocalCluster) {}

  private headers(): Record<string, string> {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (this.c.secret) h.authorization = `Bearer ${this.c.secret}`;
    return h;
  }

  url(k: number, path: string): string {
    return `http://${this.c.host(k)}:${RAINSTORM_PORT}${path}`;
  }

  /**
   * Submit `args` (the words after `rainstorm`) to the leader (node 1) and read events until the
   * job ends or `timeoutMs` passes. `onEvent` sees each event as it arrives (to act mid-job).
   */
  async run(args: string[], timeoutMs = 60_000, onEvent?: (ev: Record<string, any>) => void): Promise<JobRun> {
    const res = await fetch(this.url(1, "/jobs"), { method: "POST", headers: this.headers(), body: JSON.stringify({ args }), signal: AbortSignal.timeout(timeoutMs) });
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
    const res = await fetch(this.url(1, "/tasks"), { headers: this.headers(), signal: AbortSignal.timeout(5000) });
    return ((await res.json()) as { tasks: any[] }).tasks;
  }

  async killTask(node: string, pid: number): Promise<Response> {
    return fetch(this.url(1, "/kill_task"), { method: "POST", headers: this.headers(), body: JSON.stringify({ node, pid }), signal: AbortSignal.timeout(5000) });
  }
}
