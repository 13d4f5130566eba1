/**
 * Section 2, source-to-sink latency of App 2 at half the input rate App 2 reached on that cluster,
 * over a prefix of the generated input sized to last LATENCY_SECONDS.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { fmtMs, fmtSec, int, mdTable, percentile } from "../stats.ts";
import type { ClusterRun } from "./apps.ts";
import { checkApp2 } from "./checks.ts";
import { type BenchCtx, type UploadRow, uploadInput } from "./context.ts";
import { APP2_OPS, app2Args, lineOfOutput, shares, writeInput } from "./input.ts";
import { type JobResult, type JobStats, jobStatsOf, runJob } from "./job.ts";

/** Seconds the latency run lasts at its paced rate. */
export const latencySeconds = (quick: boolean): number => (quick ? 5 : 20);

export interface LatencyRow {
  cluster: string;
  rate: number;
  lines: number;
  outputs: number;
  expected: number;
  check: string;
  durationMs: number;
  samples: number[];
}

/** Latency of each output line: its arrival - (accepted + n / rate), n its input line. */
export function latencySamples(arrivals: JobResult["arrivals"], acceptedAt: number, rate: number): number[] {
  const samples: number[] = [];
  for (const { t, lines } of arrivals) {
    for (const line of lines) {
      const n = lineOfOutput(line.slice(line.indexOf("\t") + 1));
      if (Number.isInteger(n) && n >= 1) samples.push(t - (acceptedAt + (n / rate) * 1000));
    }
  }
  return samples;
}

/** The latency run on `cl`: App 2 at half `app2Rate`, over at most `maxLines` lines. */
export async function run(
  ctx: BenchCtx,
  cl: ClusterRun,
  hydfs: HydfsTestClient,
  dir: string,
  app2Rate: number,
  maxLines: number,
): Promise<{ row: LatencyRow; stats: JobStats; upload: UploadRow }> {
  const { cluster, c, rs, phase } = cl;
  const rate = Math.max(1, Math.floor(app2Rate / 2));
  const latLines = Math.min(maxLines, Math.max(2000, Math.round(rate * latencySeconds(ctx.opts.quick))));
  const latPath = join(dir, `latency-${latLines}.csv`);
  const latRef = writeInput(latPath, latLines);
  const upload = await uploadInput(ctx, hydfs, cluster, `${int(latLines)}-line latency input`, "latency.csv", latPath, latRef.bytes);
  rmSync(latPath, { force: true });
  const lat = await phase("latency", () => {
    ctx.log(`${cluster}: App 2 at input_rate ${rate} over ${int(latLines)} lines (expected ${fmtSec((latLines / rate) * 1000)})`);
    return runJob(ctx, c, rs, `${cluster} App 2 latency`, app2Args("latency.csv", "out-latency.txt", rate), true);
  });
  const latCheck = checkApp2((w) => ctx.problems.mismatch(w), `${cluster} App 2 at input_rate ${rate}`, lat.run, latRef, undefined);
  const samples = latencySamples(lat.arrivals, lat.acceptedAt!, rate);
  const row: LatencyRow = {
    cluster,
    rate,
    lines: latLines,
    outputs: lat.run.outputs.length,
    expected: latRef.app2,
    check: latCheck,
    durationMs: lat.run.done!.duration_ms,
    samples,
  };
  ctx.log(
    `${cluster}: latency run done in ${lat.run.done!.duration_ms} ms: p50 ${fmtMs(percentile(samples, 50))}, p99 ${fmtMs(percentile(samples, 99))}; ${latCheck}`,
  );
  return { row, stats: jobStatsOf(cluster, "App 2 latency", APP2_OPS, lat, shares("latency.csv", latRef.lines, latRef.app2Keys)), upload };
}

/** One latency row: the percentiles, and the upper bounds once a negative minimum (the method's bias) is subtracted. */
function latencyCells(l: LatencyRow): string[] {
  const min = l.samples.reduce((a, b) => Math.min(a, b), Infinity);
  const p50 = percentile(l.samples, 50);
  const p99 = percentile(l.samples, 99);
  return [
    l.cluster,
    int(l.rate),
    int(l.lines),
    int(l.outputs),
    l.check,
    `${fmtSec(l.durationMs)} (${fmtSec((l.lines / l.rate) * 1000)})`,
    fmtMs(min),
    `**${fmtMs(p50)}**`,
    fmtMs(percentile(l.samples, 90)),
    `**${fmtMs(p99)}**`,
    fmtMs(percentile(l.samples, 100)),
    min < 0 && p50 !== undefined && p99 !== undefined ? `${fmtMs(p50 - min)} / ${fmtMs(p99 - min)}` : "(min >= 0: as measured)",
  ];
}

/** The Markdown of section 2. */
export function report(r: { rows: readonly LatencyRow[]; latencySeconds: number }): string {
  const header = [
    "cluster",
    "input_rate (tuples/s)",
    "lines",
    "outputs",
    "check",
    "job duration (paced: lines/rate)",
    "min",
    "p50",
    "p90",
    "p99",
    "max",
    "p50 / p99 upper bound (- min)",
  ];
  return [
    "## 2. Source-to-sink latency of App 2 at half its maximum rate",
    "",
    mdTable(header, r.rows.map(latencyCells)),
    "",
    "Method: input_rate = half the App 2 tuples/s measured above on the same cluster; the file is the first rate x " +
      `${r.latencySeconds} s lines of the same generated input. The source paces line n to t0 + n/rate (source.ts runSource; it flushes its partial batches whenever it is more than 5 ms ahead), ` +
      "and events carry no timestamps, so t0 is approximated by the moment the job's `accepted` event reaches the submitter (the leader starts the source right after sending it: ~1 ms early). " +
      "Each output's line number n is its Sign Asset ID (generated = line number; transform keeps the first 3 fields), and latency = arrival of its `output` event at the submitter - (accepted + n/rate). " +
      "So it covers source batching, both stages, the sink's HyDFS append to dest (the sink streams a batch to the submitter before appending it) and the event stream; " +
      "a source that falls behind its schedule shows up as latency too. Percentiles are nearest-rank over every output line. " +
      "Both errors of the method make the figures too low: the source sends each line 0-5 ms before its scheduled time (it sends a burst once it is 5 ms ahead, then sleeps), " +
      "and `accepted` reaches the submitter a little after the real t0. A negative minimum measures that bias; the last column subtracts it (assumes the fastest line took 0 ms), " +
      "so the true p50/p99 lie between the bold figures and that column.",
    "",
  ].join("\n");
}
