/**
 * One job of the benchmark: submit it, follow its event stream, and sample its processes (peak RSS
 * and CPU of every operator process, CPU of every daemon, tuples and batches per task).
 */
import { type LocalCluster, SERVICES } from "../../../services/testing/cluster.ts";
import type { JobRun, RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { fmtMs } from "../stats.ts";
import type { BenchCtx } from "./context.ts";
import { jobTimeoutMs } from "./options.ts";
import { cpuSeconds, procStatus } from "../procs.ts";

/** Operator processes' /proc sampling period during a job. */
export const SAMPLE_MS = 200;

export interface OpPeak {
  stage: number;
  index: number;
  node: string;
  pid: number;
  hwm: number;
  rss: number;
  /** CPU seconds, last seen (the done event comes before the tasks are stopped). */
  cpu: number;
  /** From the worker's task list, last poll: tuples given to the operator and input batches. */
  inputs?: number;
  batches?: number;
}

export interface JobResult {
  label: string;
  run: JobRun;
  wallMs: number;
  /** performance.now() when the accepted event reached us. */
  acceptedAt?: number;
  /** Output events with their arrival time (kept only when asked for). */
  arrivals: { t: number; lines: string[] }[];
  ops: Map<string, OpPeak>;
  /** CPU seconds each daemon ("k/service") used from submission to the done event. */
  daemonCpu: Map<string, number>;
  /** CPU seconds this process (the submitter, reading the event stream) used in that time. */
  clientCpu: number;
}

/** What the process tables show of a job. */
export interface JobStats {
  cluster: string;
  job: string;
  durationMs: number;
  /** Operator command of each stage. */
  stageOps: string[];
  ops: OpPeak[];
  /** Exact tuples per task of stage 0 and stage 1 (the same partition function as the workers). */
  shares: [number[], number[]];
  daemonCpu: Map<string, number>;
  clientCpu: number;
}

export function jobStatsOf(cluster: string, job: string, stageOps: string[], r: JobResult, shares: [number[], number[]]): JobStats {
  const ops = [...r.ops.values()].sort((a, b) => a.stage - b.stage || a.index - b.index || a.pid - b.pid);
  return { cluster, job, durationMs: r.run.done!.duration_ms, stageOps, ops, shares, daemonCpu: r.daemonCpu, clientCpu: r.clientCpu };
}

/** Drop a finished job's outputs and events (the big jobs hold millions of lines). */
export function forget(r: JobResult): void {
  r.run.outputs.length = 0;
  r.run.events.length = 0;
}

type TaskEntry = { stage: number; index: number; node: string; pid: number };

/** Samples the job's operator processes and asks the workers for their task lists while it runs. */
class JobSampler {
  jobId: string | undefined;
  private ticks = 0;
  private listing = false;
  private timer: Timer | undefined;

  constructor(
    private readonly c: LocalCluster,
    private readonly rs: RainstormTestClient,
    private readonly result: JobResult,
  ) {}

  track(stage: number, index: number, node: string, pid: number): void {
    const key = `${stage}/${index}/${pid}`;
    if (!this.result.ops.has(key)) this.result.ops.set(key, { stage, index, node, pid, hwm: 0, rss: 0, cpu: 0 });
  }

  sample(): void {
    for (const op of this.result.ops.values()) {
      const s = procStatus(op.pid);
      if (s.hwm !== undefined) op.hwm = Math.max(op.hwm, s.hwm);
      if (s.rss !== undefined) op.rss = Math.max(op.rss, s.rss);
      op.cpu = cpuSeconds(op.pid) ?? op.cpu;
    }
  }

  /** Each worker's task list: tuples and batches per task (for the mean batch size). */
  private pollWorkers() {
    return Promise.allSettled(
      this.c.nodeNumbers.map(async (k) => {
        for (const t of await this.rs.workerTasks(k, 2000)) {
          const op = this.result.ops.get(`${t.stage}/${t.index}/${t.pid}`);
          if (t.job === this.jobId && op) {
            op.inputs = t.inputs;
            op.batches = t.batches;
          }
        }
      }),
    );
  }

  start(): void {
    this.timer = setInterval(() => {
      this.sample();
      // list_tasks once a second picks up restarted tasks (new pids).
      if (this.jobId && ++this.ticks % 5 === 0 && !this.listing) {
        this.listing = true;
        this.rs
          .tasks()
          .then((ts) => {
            for (const t of ts) if (t.job === this.jobId && t.pid) this.track(t.stage, t.task, t.node, t.pid);
            return this.pollWorkers();
          })
          .catch(() => {})
          .finally(() => {
            this.listing = false;
          });
      }
    }, SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Submit `args`, follow the job to its done event (`onEvent` sees every event), and measure it. */
export async function runJob(
  ctx: BenchCtx,
  c: LocalCluster,
  rs: RainstormTestClient,
  label: string,
  args: string[],
  trackArrivals: boolean,
  onEvent?: (ev: Record<string, any>, now: number) => void,
): Promise<JobResult> {
  const { log } = ctx;
  const timeoutMs = jobTimeoutMs(ctx.opts.quick);
  const result: JobResult = { label, run: { events: [], outputs: [] }, wallMs: NaN, arrivals: [], ops: new Map(), daemonCpu: new Map(), clientCpu: NaN };
  const daemonPids = c.nodeNumbers.flatMap((k) => SERVICES.map((s) => ({ key: `${k}/${s}`, pid: c.pid(k, s) })));
  const cpuBefore = new Map(daemonPids.map((d) => [d.key, cpuSeconds(d.pid)]));
  const clientBefore = process.cpuUsage();
  const sampler = new JobSampler(c, rs, result);
  sampler.start();
  let deadline: Timer | undefined;
  const t0 = performance.now();
  try {
    const run = await Promise.race([
      rs.run(args, timeoutMs, (ev) => {
        const now = performance.now();
        if (ev.event === "accepted") {
          result.acceptedAt = now;
          sampler.jobId = ev.job;
          const tasks = ev.tasks as TaskEntry[];
          for (const t of tasks) sampler.track(t.stage, t.index, t.node, t.pid);
          sampler.sample();
          log(
            `${label}: accepted as ${ev.job} after ${fmtMs(now - t0)}; tasks ${tasks.map((t) => `s${t.stage}[${t.index}]@${t.node.split(".").pop()}`).join(" ")}`,
          );
        } else if (ev.event === "output") {
          if (trackArrivals) result.arrivals.push({ t: now, lines: ev.lines });
        } else if (ev.event === "done") {
          // The done event comes before the leader stops the tasks: their last peak is readable now.
          sampler.sample();
          for (const d of daemonPids) result.daemonCpu.set(d.key, (cpuSeconds(d.pid) ?? NaN) - (cpuBefore.get(d.key) ?? NaN));
          const cu = process.cpuUsage(clientBefore);
          result.clientCpu = (cu.user + cu.system) / 1e6;
        } else if (ev.event === "task_restarted") {
          log(`${label}: task stage${ev.stage}[${ev.index}] restarted on ${ev.node} as pid ${ev.pid}: ${ev.reason}`);
          sampler.track(ev.stage, ev.index, ev.node, ev.pid);
        } else if (ev.event === "failed") {
          log(`${label}: FAILED: ${ev.error}`);
        }
        onEvent?.(ev, now);
      }),
      new Promise<never>((_, reject) => {
        deadline = setTimeout(() => reject(new Error(`${label}: no done event within ${timeoutMs / 1000} s`)), timeoutMs + 5000);
      }),
    ]);
    result.wallMs = performance.now() - t0;
    result.run = run;
  } finally {
    sampler.stop();
    clearTimeout(deadline);
  }
  if (result.run.rejected) throw new Error(`${label}: rejected: ${result.run.rejected.status} ${result.run.rejected.error}`);
  if (result.run.failed) throw new Error(`${label}: failed: ${result.run.failed}`);
  if (!result.run.done) throw new Error(`${label}: the event stream ended without a done event`);
  return result;
}
