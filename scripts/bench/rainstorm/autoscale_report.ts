/**
 * Section 6's analysis and report (pure): time to the new parallelism, backlog drain, scale-down,
 * flapping, steady-load actions and throughput before and after, from the runs autoscale.ts made.
 */
import { parseRateSchedule, timeDueMs } from "../../../services/rainstorm/rate_schedule.ts";
import { DEFAULT_RAINSTORM } from "../../../services/rainstorm/config.ts";
import { fmtMs, fmtSec as fmtS, int, mdTable, median, percentile } from "../stats.ts";
import { AS_APP, AS_CLUSTER, AS_HW, AS_LW, AS_POLL_MS, AS_RATE, type AsRun, type AutoscaleResult, type RateSample, type ScaledEvent } from "./autoscale.ts";
import { lineOfOutput } from "./input.ts";

/** Latency bins (by scheduled send time) after the step. */
export const AS_BIN_MS = 500;
/** The drain threshold is max(1.5 x the pre-step median, the pre-step median + this): a few ms are noise. */
export const AS_LATENCY_FLOOR_MS = 5;
/** Target: new parallelism within 10 s of the step (the bound of autoscale_cluster_test.ts). */
export const AS_PARALLELISM_TARGET_MS = 10_000;
/** Target: backlog drained within 10 s of the step. */
export const AS_DRAIN_TARGET_MS = 10_000;

/** Median over the samples in [fromMs, toMs) of f(stage's rates), skipping samples where f is undefined. */
export function medianOver(samples: RateSample[], fromMs: number, toMs: number, f: (s: RateSample) => number | undefined): number | undefined {
  const xs: number[] = [];
  for (const s of samples) {
    if (s.atMs < fromMs || s.atMs >= toMs) continue;
    const x = f(s);
    if (x !== undefined && Number.isFinite(x)) xs.push(x);
  }
  return median(xs);
}

/** A stage's summed rate in a sample, when every task's rate is known and it has `tasks` tasks (any, if undefined). */
export function stageTotal(s: RateSample, stage: number, tasks?: number): number | undefined {
  const rates = s.stages[stage] ?? [];
  if (rates.length === 0 || (tasks !== undefined && rates.length !== tasks) || rates.some((r) => r === null)) return undefined;
  return (rates as number[]).reduce((a, b) => a + b, 0);
}

/** How the step run's backlog drained: latencies relative to the fastest pre-step line, per AS_BIN_MS bin of send time. */
export interface Drain {
  /** The fastest pre-step line's raw latency (the bias of the method). */
  offset: number;
  preMedian: number;
  threshold: number;
  /** End of the last bin (ms after the step) whose median exceeded the threshold; 0 = none did. */
  drainMs: number;
  peakBin: number;
  peakBinAt: number;
  postP99?: number;
  bins: number;
}

/** The step run's drain analysis; undefined without pre-step or post-step lines. */
export function drainOf(step: AsRun, stepMs: number, stepDownMs: number): Drain | undefined {
  const steps = parseRateSchedule(step.schedule);
  const pre: number[] = [];
  const bins = new Map<number, number[]>();
  const post: number[] = [];
  for (const a of step.arrivals) {
    for (const line of a.lines) {
      const n = lineOfOutput(line.slice(line.indexOf("\t") + 1));
      if (!Number.isInteger(n) || n < 1) continue;
      const sendMs = timeDueMs(steps, n);
      const lat = a.atMs - sendMs;
      if (sendMs >= Math.max(2000, stepMs - 10_000) && sendMs < stepMs) pre.push(lat);
      else if (sendMs >= stepMs && sendMs < stepDownMs) {
        const b = Math.floor((sendMs - stepMs) / AS_BIN_MS);
        let xs = bins.get(b);
        if (!xs) bins.set(b, (xs = []));
        xs.push(lat);
        if (sendMs < stepMs + 10_000) post.push(lat);
      }
    }
  }
  // accepted reaches the submitter after the source's real start (and the source sends up to 5 ms
  // early), so raw latencies are biased low by an unknown constant: measure from the fastest pre-step line.
  const offset = pre.reduce((a, b) => Math.min(a, b), Infinity);
  const rawPreMedian = median(pre);
  if (rawPreMedian === undefined || bins.size === 0) return undefined;
  const preMedian = rawPreMedian - offset;
  const threshold = Math.max(1.5 * preMedian, preMedian + AS_LATENCY_FLOOR_MS);
  let lastBad = -1;
  let peakBin = -Infinity;
  let peakBinAt = 0;
  for (const [b, xs] of bins) {
    const m = median(xs)! - offset;
    if (m > threshold) lastBad = Math.max(lastBad, b);
    if (m > peakBin) {
      peakBin = m;
      peakBinAt = b;
    }
  }
  const p99 = percentile(post, 99);
  return {
    offset,
    preMedian,
    threshold,
    drainMs: (lastBad + 1) * AS_BIN_MS,
    peakBin,
    peakBinAt: peakBinAt * AS_BIN_MS,
    postP99: p99 === undefined ? undefined : p99 - offset,
    bins: bins.size,
  };
}

/** ms from the step to the first sample where stage 1's summed rate reaches 95% of 2R. */
export function rateBackOf(step: AsRun, stepMs: number): number | undefined {
  const first = step.samples.find((s) => s.atMs >= stepMs && (stageTotal(s, 1) ?? 0) >= 0.95 * 2 * AS_RATE);
  return first ? first.atMs - stepMs : undefined;
}

/** What the analysis of a result needs: the runs, and the step's times (ms after accepted). */
interface View {
  step?: AsRun;
  steady?: AsRun;
  stepInputStored: boolean;
  stepMs: number;
  stepDownMs: number;
  settleMs: number;
  s1: number;
  s2: number;
  steadyS: number;
  cpus: number;
  /** Each stage's first scale-up after the step. */
  ups: (ScaledEvent | undefined)[];
}

function viewOf(r: AutoscaleResult): View {
  const [s1, s2] = r.stepsS;
  const stepMs = s1 * 1000;
  const step = r.runs.find((x) => x.label === "autoscale step run");
  return {
    step,
    steady: r.runs.find((x) => x.label === "autoscale steady run"),
    stepInputStored: r.stepInputStored,
    stepMs,
    stepDownMs: (s1 + s2) * 1000,
    settleMs: DEFAULT_RAINSTORM.autoscale_settle_ms,
    s1,
    s2,
    steadyS: r.steadyS,
    cpus: r.cpus,
    ups: [0, 1].map((stage) => step?.scaled.find((e) => e.stage === stage && e.atMs >= stepMs && e.to > e.from)),
  };
}

const verdict = (ok: boolean | undefined) => (ok === undefined ? "**not measured**" : ok ? "pass" : "**miss**");

/** The step run's rows: time to scale up, backlog drained, rate back, scale-down, flapping. */
function stepRows(v: View): string[][] {
  const { step, stepMs, stepDownMs, ups } = v;
  const rows: string[][] = [];
  // 1. Time to the new parallelism, per stage.
  for (const stage of [0, 1]) {
    const e = ups[stage];
    const ms = e ? e.atMs - stepMs : undefined;
    rows.push([
      `stage ${stage}: step ${int(AS_RATE)} -> ${int(2 * AS_RATE)} tuples/s to its first \`scaled\` event`,
      step === undefined ? "n/a" : e ? `**${fmtS(ms)}** (${e.from} -> ${e.to} tasks, avg ${int(e.avg)} tuples/s per task)` : "**no scale-up**",
      `<= ${fmtS(AS_PARALLELISM_TARGET_MS)}`,
      verdict(step === undefined ? undefined : ms !== undefined && ms <= AS_PARALLELISM_TARGET_MS),
    ]);
  }

  // 1b. Backlog drained: output latency back within its threshold.
  const drain = step && v.stepInputStored ? drainOf(step, stepMs, stepDownMs) : undefined;
  const rateBackMs = step && v.stepInputStored ? rateBackOf(step, stepMs) : undefined;
  rows.push([
    "backlog drained after the step: output latency (per 0.5 s of send time, median) back within max(1.5 x pre-step median, pre-step median + 5 ms) for good",
    drain
      ? `**${fmtS(drain.drainMs)}**${drain.drainMs === 0 ? " (never left the band)" : ""}; latency above the fastest pre-step line (raw ${fmtMs(drain.offset)}): pre-step median ${fmtMs(drain.preMedian)}, threshold ${fmtMs(drain.threshold)}, worst bin median ${fmtMs(drain.peakBin)} (lines sent at +${fmtS(drain.peakBinAt)} after the step), p99 of the first 10 s after the step ${fmtMs(drain.postP99)}`
      : "n/a",
    `<= ${fmtS(AS_DRAIN_TARGET_MS)}`,
    verdict(drain === undefined ? undefined : drain.drainMs <= AS_DRAIN_TARGET_MS),
  ]);
  rows.push([
    `stage 1's summed task rate reaches 95% of the new source rate (${int(0.95 * 2 * AS_RATE)} tuples/s), first list_tasks sample`,
    step === undefined ? "n/a" : rateBackMs === undefined ? "**never**" : `${fmtS(rateBackMs)} (rates cover the last second: includes up to ~1 s of lag)`,
    "(report)",
    "",
  ]);

  // Scale-down after the step back to R.
  for (const stage of [0, 1]) {
    const e = step?.scaled.find((x) => x.stage === stage && x.atMs >= stepDownMs && x.to < x.from);
    rows.push([
      `stage ${stage}: step back to ${int(AS_RATE)} tuples/s to its first scale-down`,
      step === undefined ? "n/a" : e ? `${fmtS(e.atMs - stepDownMs)} (${e.from} -> ${e.to} tasks, avg ${int(e.avg)} tuples/s per task)` : "**no scale-down**",
      "(report)",
      "",
    ]);
  }
  // Flapping in the step run: per stage, exactly one step up after the step and one step down after the step down.
  if (step) {
    const expected =
      step.scaled.length === 4 &&
      [0, 1].every(
        (st) =>
          step.scaled.filter((e) => e.stage === st && e.to > e.from).length === 1 && step.scaled.filter((e) => e.stage === st && e.to < e.from).length === 1,
      );
    rows.push([
      "scaling actions in the step run",
      `${step.scaled.length}: ${step.scaled.map((e) => `s${e.stage} ${e.from}->${e.to} @+${(e.atMs / 1000).toFixed(1)} s`).join(", ") || "none"}; most tasks per stage ${step.maxTasks.join(" / ")}`,
      "1 up and 1 down per stage (no flapping)",
      verdict(expected),
    ]);
  }
  return rows;
}

/** The steady run's row: scaling actions per minute. */
function steadyRow(v: View): string[] {
  const { steady } = v;
  // 2. Steady load.
  const steadyActions = steady ? steady.scaled.length / (steady.durationMs / 60_000) : undefined;
  const steadyPerTask = steady ? medianOver(steady.samples, 3000, Infinity, (s) => stageTotal(s, 1, 1)) : undefined;
  return [
    `scaling actions per minute, steady ${int(AS_RATE)} tuples/s for ${v.steadyS} s (LW ${AS_LW} < per-task rate < HW ${AS_HW})`,
    steady
      ? `**${steadyActions!.toFixed(2)}** (${steady.scaled.length} in ${fmtS(steady.durationMs)}; stage-1 task rate median ${int(steadyPerTask)} tuples/s)`
      : "n/a",
    "0",
    verdict(steady === undefined ? undefined : steady.scaled.length === 0),
  ];
}

/** Start of the pre-step throughput window (ms after accepted): up to 8 s before the step, skipping the first 2 s. */
const preStepFromMs = (stepMs: number) => Math.max(2000, stepMs - 8000);

/**
 * `pick` (Math.max or Math.min) of a stage's task rates in a sample where it has exactly `tasks`
 * tasks; undefined with another task count, NaN when a rate is unknown (medianOver skips both).
 */
export function taskRateExtreme(s: RateSample, stage: number, tasks: number | undefined, pick: (...xs: number[]) => number): number | undefined {
  const rates = s.stages[stage] ?? [];
  return rates.length === tasks ? pick(...(rates as number[]).map((x) => x ?? NaN)) : undefined;
}

/** Outputs per second that arrived in [fromMs, toMs) (ms after accepted). */
export function outputRate(arrivals: AsRun["arrivals"], fromMs: number, toMs: number): number {
  return arrivals.filter((a) => a.atMs >= fromMs && a.atMs < toMs).reduce((n, a) => n + a.lines.length, 0) / ((toMs - fromMs) / 1000);
}

/** A stage's throughput on 1 task before the step and on its new tasks once settled: its detail row and its verdict row. */
function stageThroughput(v: View, step: AsRun, stage: number): { row: string[]; tput: string[] } {
  const { stepMs, stepDownMs, settleMs, ups } = v;
  const up = ups[stage];
  const beforeFrom = preStepFromMs(stepMs);
  const afterFrom = up ? up.atMs + settleMs : undefined;
  const n = up?.to;
  const after = (f: (s: RateSample) => number | undefined) =>
    afterFrom !== undefined && afterFrom < stepDownMs ? medianOver(step.samples, afterFrom, stepDownMs, f) : undefined;
  const bTotal = medianOver(step.samples, beforeFrom, stepMs, (s) => stageTotal(s, stage, 1));
  const aTotal = after((s) => stageTotal(s, stage, n));
  const aPerTask = after((s) => taskRateExtreme(s, stage, n, Math.max));
  const aMinTask = after((s) => taskRateExtreme(s, stage, n, Math.min));
  const tput = [
    `stage ${stage}`,
    `1 task: ${int(bTotal)} tuples/s (+${fmtS(beforeFrom)} to +${fmtS(stepMs)})`,
    afterFrom === undefined
      ? "n/a (no scale-up)"
      : afterFrom >= stepDownMs
        ? "n/a (did not settle before the step down)"
        : `${n} tasks: total ${int(aTotal)} tuples/s, per task ${int(aMinTask)}-${int(aPerTask)} (+${fmtS(afterFrom)} to +${fmtS(stepDownMs)})`,
    `${int(AS_RATE)} -> ${int(2 * AS_RATE)} total; per task inside LW ${AS_LW} .. HW ${AS_HW} after`,
  ];
  const ok =
    bTotal !== undefined &&
    aTotal !== undefined &&
    aPerTask !== undefined &&
    aMinTask !== undefined &&
    Math.abs(aTotal - 2 * AS_RATE) <= 0.05 * 2 * AS_RATE &&
    aPerTask < AS_HW &&
    aMinTask > AS_LW;
  const row = [
    `stage ${stage} throughput, before the step -> after the new parallelism settles (list_tasks rates, median)`,
    aTotal === undefined
      ? `${int(bTotal)} tuples/s on 1 task -> n/a`
      : `${int(bTotal)} tuples/s on 1 task -> ${int(aTotal)} tuples/s on ${n} tasks (${int(aMinTask)}-${int(aPerTask)} per task)`,
    `total = source rate (+-5%), each task inside LW..HW`,
    verdict(ok),
  ];
  return { row, tput };
}

/** The job's outputs/s at the submitter before the step and once the last stage's scale-up settled: detail and verdict rows. */
function outputThroughput(v: View, step: AsRun): { row: string[]; tput: string[] } {
  const { stepMs, stepDownMs, settleMs, ups } = v;
  const lastUp = Math.max(...ups.map((e) => e?.atMs ?? Infinity));
  const oBefore = outputRate(step.arrivals, preStepFromMs(stepMs), stepMs);
  const oAfter = Number.isFinite(lastUp) && lastUp + settleMs < stepDownMs ? outputRate(step.arrivals, lastUp + settleMs, stepDownMs) : undefined;
  const tput = [
    "job outputs/s (arrivals at the submitter)",
    `${int(oBefore)}`,
    oAfter === undefined ? "n/a" : `${int(oAfter)}`,
    `${int(AS_RATE)} -> ${int(2 * AS_RATE)}`,
  ];
  const row = [
    "job outputs/s, before the step -> after the new parallelism settles",
    `${int(oBefore)} -> ${oAfter === undefined ? "n/a" : int(oAfter)}`,
    `= source rate (+-5%)`,
    verdict(oAfter !== undefined && Math.abs(oBefore - AS_RATE) <= 0.05 * AS_RATE && Math.abs(oAfter - 2 * AS_RATE) <= 0.05 * 2 * AS_RATE),
  ];
  return { row, tput };
}

/** Throughput before the step and after the new parallelism settles: the verdict rows, and the detail table's rows. */
function throughputRows(v: View): { rows: string[][]; tput: string[][] } {
  if (!v.step) return { rows: [], tput: [] };
  const parts = [stageThroughput(v, v.step, 0), stageThroughput(v, v.step, 1), outputThroughput(v, v.step)];
  return { rows: parts.map((p) => p.row), tput: parts.map((p) => p.tput) };
}

/** How the section measures, for the reader of the report. */
function method(v: View): string {
  const { step, s1, s2, settleMs } = v;
  return (
    `Own ${AS_CLUSTER.nodes}-node cluster (${AS_CLUSTER.subnet}.1-${AS_CLUSTER.nodes}, default config: autoscale_sustain_samples ${DEFAULT_RAINSTORM.autoscale_sustain_samples}, autoscale_settle_ms ${settleMs}, batch_size ${DEFAULT_RAINSTORM.batch_size}), ` +
    `on the same ${v.cpus}-CPU machine. Job: \`grep-wrapper '${AS_APP.pattern}' ${AS_APP.col} | transform-wrapper ${AS_APP.fields}\` (App 2's shape; every line has a comma, so both stages see the whole source rate), ` +
    `1 task per stage at the start, exactly_once=false, autoscale=true, LW ${AS_LW}, HW ${AS_HW} tuples/s per task. ` +
    `Step run: \`--rate-schedule ${step?.schedule ?? `${AS_RATE}:${s1}s,${2 * AS_RATE}:${s2}s,...`}\`: R = ${AS_RATE} keeps one task inside the band, 2R = ${2 * AS_RATE} puts it 50% over HW, ` +
    `and two tasks at ${AS_RATE} each are inside the band again (so exactly one step up is right); back at R, two tasks get ${AS_RATE / 2} < LW, so each stage should return to 1 task. ` +
    `Times are relative to the step at accepted + ${s1} s (the leader starts the source as it sends \`accepted\`). ` +
    `Backlog drained: each output's latency = its arrival at the submitter - its line's scheduled send time (accepted + the schedule's due time of its line number, read from the Sign Asset ID), ` +
    "minus the smallest such latency among the lines sent in the 10 s before the step (accepted reaches the submitter after the source starts, so raw figures are biased low by a constant; this assumes the fastest line took ~0 ms); " +
    `lines sent after the step are binned by send time (${AS_BIN_MS} ms) and the drain time is the end of the last bin before the step down whose median exceeds max(1.5 x the median of the 10 s before the step, that median + ${AS_LATENCY_FLOOR_MS} ms) ` +
    `(0 = no bin ever exceeded it: there was no backlog to drain). At these rates one task is far from saturated (App 2 runs at tens of thousands of tuples/s per stage), so the scaling is driven by the watermarks, not by a backlog. ` +
    `Throughput: list_tasks rates polled every ${AS_POLL_MS} ms (tuples/s over the last second), median over ${Math.min(8, s1 - 2)} s before the step and over the rest of the 2R step from the scale-up + settle (${fmtS(settleMs)}). ` +
    `Steady run: input_rate ${AS_RATE} for ${v.steadyS} s; actions/min = scaled events / job duration. Every run's output is checked line by line and dest against the streamed outputs.`
  );
}

/** The Markdown of section 6. */
export function report(r: AutoscaleResult): string {
  const v = viewOf(r);
  const tp = throughputRows(v);
  const rows = [...stepRows(v), steadyRow(v), ...tp.rows];
  for (const run of r.runs)
    rows.push([
      `output of the ${run.label.replace("autoscale ", "")} (${int(run.lines)} lines)`,
      run.check,
      "exactly one output per input line; dest = outputs",
      verdict(!run.check.includes("MISMATCH")),
    ]);
  if (r.runs.length < 2) rows.push(["runs completed", `${r.runs.length} of 2 (see Problems)`, "2", "**miss**"]);
  const out: string[] = [
    "## 6. Autoscaling",
    "",
    "### Benchmark: autoscaling",
    "",
    mdTable(["measure", "result", "target", "pass/miss"], rows),
    "",
    method(v),
    "",
  ];
  if (tp.tput.length > 0) {
    out.push(mdTable(["stage", "before the step", "after the new parallelism settles", "expected"], tp.tput));
    out.push("");
  }
  const events = r.runs.flatMap((run) =>
    run.scaled.map((e) => [run.label.replace("autoscale ", ""), `+${fmtS(e.atMs)}`, `stage ${e.stage}`, `${e.from} -> ${e.to}`, int(e.avg), e.reason]),
  );
  if (events.length > 0) {
    out.push(mdTable(["run", "at (after accepted)", "stage", "tasks", "avg tuples/s per task", "reason"], events));
    out.push("");
  }
  return out.join("\n");
}
