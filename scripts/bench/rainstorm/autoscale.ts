/**
 * Section 6, autoscaling (issue 6, "Benchmark"), on its own 5-node cluster: App 2's shape with a
 * grep that passes every line, 1 task per stage, autoscale=true; a step run (R, 2R, R) and a steady
 * run at R. The analysis and the report are in autoscale_report.ts.
 */
import { join } from "node:path";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import type { ListedTask } from "../../../services/rainstorm/model.ts";
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import { RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { fmtSec, int } from "../stats.ts";
import { checkApp2, checkDest } from "./checks.ts";
import { type BenchCtx, benchCluster, onCluster, type UploadRow, uploadInput } from "./context.ts";
import { type GrepTransformApp, genLine, type Reference, writeInput } from "./input.ts";
import { forget, type JobResult, runJob } from "./job.ts";
import { UPLOAD_TIMEOUT_MS } from "./options.ts";

export const AS_CLUSTER = { nodes: 5, subnet: "127.0.46" };
/**
 * The job: App 2's shape with a grep that passes every line (each has a comma), keyed by the Sign
 * Asset ID, so both stages see the source's full rate and every output names its input line.
 */
export const AS_APP: GrepTransformApp = { pattern: ",", col: 0, fields: 3 };
/** Base rate R (tuples/s); the step doubles it. */
export const AS_RATE = 1500;
/**
 * HW / LW per task (tuples/s). One task at R = 1500 sits inside the band; at 2R = 3000 it is 50% over HW,
 * and the 2 tasks that follow get 1500 each (inside the band, so no further growth; the anti-flapping
 * projection 3000 / 2 = 1500 >= LW allows the step). After the step back to R, 2 tasks get 750 < LW: the
 * stage shrinks to 1 task (projected 1500 <= HW), which shows the way back too.
 */
export const AS_HW = 2000;
export const AS_LW = 1000;
/** Seconds of R, 2R, R. */
export const asStepsS = (quick: boolean): [number, number, number] => (quick ? [10, 15, 12] : [15, 25, 20]);
/** Seconds of the steady run. */
export const asSteadyS = (quick: boolean): number => (quick ? 30 : 60);
/** list_tasks polling period during the autoscaling runs. */
export const AS_POLL_MS = 500;

export interface ScaledEvent {
  /** ms after the accepted event reached the submitter (~ the source's start). */
  atMs: number;
  stage: number;
  from: number;
  to: number;
  avg: number;
  reason: string;
}

/** One list_tasks poll: each stage's per-task rates (tuples/s in the last second; null = unknown). */
export interface RateSample {
  atMs: number;
  stages: (number | null)[][];
}

export interface AsRun {
  label: string;
  schedule: string;
  lines: number;
  outputs: number;
  durationMs: number;
  check: string;
  scaled: ScaledEvent[];
  samples: RateSample[];
  /** Output arrivals, ms after accepted. */
  arrivals: { atMs: number; lines: string[] }[];
  /** Most tasks each stage had at once (from the scaled events; 1 to start with). */
  maxTasks: number[];
}

export interface AutoscaleResult {
  stepsS: [number, number, number];
  steadyS: number;
  cpus: number;
  /** The step run's input was stored (its analysis needs it). */
  stepInputStored: boolean;
  runs: AsRun[];
  uploads: UploadRow[];
}

const asArgs = (src: string, dest: string, rate: number, schedule?: string) => [
  "2",
  "1",
  "-stage-config-map",
  `stage0 grep-wrapper '${AS_APP.pattern}' ${AS_APP.col} stage1 transform-wrapper ${AS_APP.fields}`,
  src,
  dest,
  "false",
  "true",
  String(rate),
  String(AS_LW),
  String(AS_HW),
  ...(schedule ? ["--rate-schedule", schedule] : []),
];

/** Lines of the generated file 1..lines that AS_APP's grep passes (every one: each has a comma). */
function asExpected(lines: number): number {
  let n = 0;
  for (let i = 1; i <= lines; i++) if (genLine(i).includes(AS_APP.pattern)) n++;
  return n;
}

/** One list_tasks answer as a sample: the job's tasks' rates per stage, in task order. */
export function rateSampleOf(atMs: number, tasks: readonly Pick<ListedTask, "job" | "stage" | "task" | "rate">[], jobId: string): RateSample {
  const stages: (number | null)[][] = [[], []];
  for (const t of tasks.filter((x) => x.job === jobId).sort((a, b) => a.task - b.task)) (stages[t.stage] ??= []).push(t.rate);
  return { atMs, stages };
}

/**
 * Follows one autoscale=true run through its events: records each scaled event (and the most tasks
 * each stage had), and polls list_tasks every AS_POLL_MS from accepted to done for the task rates.
 */
export class ScalingWatch {
  readonly scaled: ScaledEvent[] = [];
  readonly samples: RateSample[] = [];
  readonly maxTasks = [1, 1];
  private acceptedAt = 0;
  private jobId: string | undefined;
  private poller: Timer | undefined;
  private polling = false;

  constructor(
    private readonly log: (line: string) => void,
    private readonly rs: Pick<RainstormTestClient, "tasks">,
    private readonly label: string,
  ) {}

  /** runJob's onEvent. */
  onEvent(ev: Record<string, any>, now: number): void {
    if (ev.event === "accepted") {
      this.acceptedAt = now;
      this.jobId = ev.job;
      this.poller = setInterval(() => this.poll(), AS_POLL_MS);
    } else if (ev.event === "scaled") {
      const e: ScaledEvent = { atMs: now - this.acceptedAt, stage: ev.stage, from: ev.from, to: ev.to, avg: ev.avg_rate_per_task, reason: ev.reason };
      this.scaled.push(e);
      this.maxTasks[e.stage] = Math.max(this.maxTasks[e.stage] ?? 1, e.to);
      this.log(`${this.label}: scaled at +${fmtSec(e.atMs)}: stage${e.stage} ${e.from} -> ${e.to} (${e.reason})`);
    } else if (ev.event === "done" || ev.event === "failed") this.stop();
  }

  stop(): void {
    clearInterval(this.poller);
  }

  /** One list_tasks call at a time: a slow answer skips the next tick rather than piling calls up. */
  private poll(): void {
    const jobId = this.jobId;
    if (this.polling || !jobId) return;
    this.polling = true;
    const atMs = performance.now() - this.acceptedAt;
    this.rs
      .tasks()
      .then((ts) => {
        this.samples.push(rateSampleOf(atMs, ts, jobId));
      })
      .catch(() => {})
      .finally(() => {
        this.polling = false;
      });
  }
}

/** The record of a finished run: its job's counts, its checks, and what the watch saw (times after accepted). */
export function asRunOf(label: string, schedule: string, r: Pick<JobResult, "run" | "arrivals" | "acceptedAt">, check: string, watch: ScalingWatch): AsRun {
  return {
    label,
    schedule,
    lines: r.run.done!.tuples_read,
    outputs: r.run.outputs.length,
    durationMs: r.run.done!.duration_ms,
    check,
    scaled: watch.scaled,
    samples: watch.samples,
    arrivals: r.arrivals.map((a) => ({ atMs: a.t - r.acceptedAt!, lines: a.lines })),
    maxTasks: watch.maxTasks,
  };
}

/** Run one autoscale=true job, polling list_tasks every AS_POLL_MS and recording its scaled events. */
async function asRunJob(
  ctx: BenchCtx,
  c: LocalCluster,
  hydfs: HydfsTestClient,
  rs: RainstormTestClient,
  label: string,
  src: string,
  dest: string,
  ref: Reference,
  rate: number,
  schedule?: string,
): Promise<AsRun> {
  const mismatch = (what: string) => ctx.problems.mismatch(what);
  const watch = new ScalingWatch(ctx.log, rs, label);
  ctx.log(
    `${label}: App 2 (grep '${AS_APP.pattern}' ${AS_APP.col} | transform ${AS_APP.fields}), 1 task per stage, autoscale=true LW ${AS_LW} HW ${AS_HW}, ${schedule ? `--rate-schedule ${schedule}` : `input_rate ${rate}`}, ${int(ref.lines)} lines`,
  );
  try {
    const r = await runJob(ctx, c, rs, label, asArgs(src, dest, rate, schedule), true, (ev, now) => watch.onEvent(ev, now));
    const checks = [
      checkApp2(mismatch, label, r.run, ref, undefined, AS_APP, asExpected(ref.lines)),
      (await checkDest(mismatch, hydfs, label, dest, r.run.outputs)).check,
    ];
    const run = asRunOf(label, schedule ?? `${rate} tuples/s constant`, r, checks.join("; "), watch);
    ctx.log(`${label}: done in ${fmtSec(run.durationMs)}, ${run.scaled.length} scaling actions, ${run.samples.length} list_tasks samples; ${run.check}`);
    forget(r);
    return run;
  } finally {
    watch.stop();
  }
}

/** Section 6 on a fresh cluster: the step run, then the steady run; a failed run is recorded and the next one runs. */
export async function run(ctx: BenchCtx): Promise<AutoscaleResult> {
  const { nodes, subnet } = AS_CLUSTER;
  const stepsS = asStepsS(ctx.opts.quick);
  const result: AutoscaleResult = { stepsS, steadyS: asSteadyS(ctx.opts.quick), cpus: ctx.cpus, stepInputStored: false, runs: [], uploads: [] };
  const cluster = `${nodes} nodes (autoscale)`;
  const { dir, c } = benchCluster(ctx, "bench-rainstorm-autoscale-", subnet, false);
  const hydfs = new HydfsTestClient(c, "bench-rainstorm-autoscale", UPLOAD_TIMEOUT_MS);
  const rs = new RainstormTestClient(c);
  const [s1, s2, s3] = stepsS;
  await onCluster(ctx, cluster, c, dir, async () => {
    ctx.log(`${cluster}: starting on ${subnet}.1-${nodes} in ${dir}`);
    await c.up(nodes, 60_000);
    ctx.log(`${cluster}: up`);
    const stepLines = AS_RATE * s1 + 2 * AS_RATE * s2 + AS_RATE * s3;
    const steadyLines = AS_RATE * result.steadyS;
    const stepPath = join(dir, "as-step.csv");
    const steadyPath = join(dir, "as-steady.csv");
    const stepRef = writeInput(stepPath, stepLines);
    result.stepInputStored = true;
    const steadyRef = writeInput(steadyPath, steadyLines);
    result.uploads.push(await uploadInput(ctx, hydfs, cluster, `${int(stepLines)}-line input`, "as-step.csv", stepPath, stepRef.bytes));
    result.uploads.push(await uploadInput(ctx, hydfs, cluster, `${int(steadyLines)}-line input`, "as-steady.csv", steadyPath, steadyRef.bytes));
    const schedule = `${AS_RATE}:${s1}s,${2 * AS_RATE}:${s2}s,${AS_RATE}:${s3}s`;
    for (const [what, f] of [
      ["step run", () => asRunJob(ctx, c, hydfs, rs, "autoscale step run", "as-step.csv", "as-step-out.txt", stepRef, 0, schedule)],
      ["steady run", () => asRunJob(ctx, c, hydfs, rs, "autoscale steady run", "as-steady.csv", "as-steady-out.txt", steadyRef, AS_RATE)],
    ] as const) {
      try {
        result.runs.push(await f());
      } catch (err) {
        ctx.problems.error(`autoscale ${what}: ${(err as Error).message}`);
      }
    }
  });
  return result;
}
