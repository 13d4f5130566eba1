/**
 * Sections 1-4 (exactly_once=false): generate the big input, time the Unix pipelines on it, then on
 * each cluster (3 nodes, then 5) store it in HyDFS and run the throughput jobs (apps.ts) and the
 * latency run (latency.ts), with every daemon's peak RSS per phase (memory.ts) and the CPU of
 * every process (cpu.ts).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_RAINSTORM } from "../../../services/rainstorm/config.ts";
import { type LocalCluster, SERVICES } from "../../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { procStatus, resetPeak, shq, timeShell } from "../procs.ts";
import { fmtMs, fmtSec, int, percentile } from "../stats.ts";
import * as apps from "./apps.ts";
import * as cpu from "./cpu.ts";
import { type BenchCtx, benchCluster, onCluster, type UploadRow, uploadInput } from "./context.ts";
import { APP1, APP2, type Reference, ROW_TAILS, TASKS, writeInput } from "./input.ts";
import type { JobStats } from "./job.ts";
import * as latency from "./latency.ts";
import * as memory from "./memory.ts";
import { UPLOAD_TIMEOUT_MS } from "./options.ts";

/** Runs of each Unix pipeline (the median is reported). */
const PIPELINE_REPS = 3;

export interface ClusterSpec {
  nodes: number;
  subnet: string;
}

/** Lines of the big input. */
export const bigLines = (quick: boolean): number => (quick ? 100_000 : 1_000_000);
/** The clusters sections 1-4 run on. */
export const clustersFor = (quick: boolean): ClusterSpec[] =>
  quick
    ? [{ nodes: 3, subnet: "127.0.36" }]
    : [
        { nodes: 3, subnet: "127.0.36" },
        { nodes: 5, subnet: "127.0.37" },
      ];

export interface AtLeastOnceResult {
  ref: Reference;
  clusters: ClusterSpec[];
  quick: boolean;
  cpus: number;
  throughput: apps.ThroughputRow[];
  uploads: UploadRow[];
  latency: latency.LatencyRow[];
  daemons: memory.DaemonRow[];
  jobStats: JobStats[];
  resetRefused: boolean;
}

/** The Unix pipeline baselines on the same file (warm page cache, like HyDFS's chunks), median of PIPELINE_REPS, and `grep -c` of App 2's pattern. */
async function pipelines(ctx: BenchCtx, bigPath: string, ref: Reference): Promise<{ app1: apps.Pipeline; app2: apps.Pipeline; grepCount: number }> {
  const mismatch = (what: string) => ctx.problems.mismatch(what);
  const file = shq(bigPath);
  const grepCount = Number((await timeShell(`grep -F -c ${shq(APP2.pattern)} ${file}`, 120_000)).out.trim());
  const pipe1: number[] = [];
  const pipe2: number[] = [];
  let pipe1Check = "";
  let pipe2Check = "";
  for (let rep = 0; rep < PIPELINE_REPS; rep++) {
    const p1 = await timeShell(`grep -F ${shq(APP1.pattern)} ${file} | cut -d, -f7 | sort | uniq -c`, 300_000);
    pipe1.push(p1.ms);
    const groups = p1.out.trim().split("\n").filter(Boolean);
    const total = groups.reduce((s, g) => s + Number(g.trim().split(/\s+/)[0]), 0);
    pipe1Check =
      total === ref.app1
        ? `counts sum to ${int(total)} = reference; ${groups.length} groups (cut's field 7 is not CSV-aware)`
        : mismatch(`pipeline App 1: counts sum to ${total}, reference ${ref.app1}`);
    const p2 = await timeShell(`grep -F ${shq(APP2.pattern)} ${file} | cut -d, -f1-3 | wc -l`, 300_000);
    pipe2.push(p2.ms);
    const n = Number(p2.out.trim());
    pipe2Check = n === ref.app2 ? `${int(n)} lines = reference` : mismatch(`pipeline App 2: ${n} lines, reference ${ref.app2}`);
  }
  const out = { app1: { ms: percentile(pipe1, 50)!, check: pipe1Check }, app2: { ms: percentile(pipe2, 50)!, check: pipe2Check }, grepCount };
  ctx.log(
    `pipelines: App 1 ${fmtMs(out.app1.ms)} (${pipe1.map((m) => m.toFixed(0)).join(", ")}), App 2 ${fmtMs(out.app2.ms)} (${pipe2.map((m) => m.toFixed(0)).join(", ")}); grep -c ${grepCount}`,
  );
  return out;
}

/** Every daemon's idle RSS now, and a `phase` that resets their peaks before `f` and reads them after. */
function daemonPeaks(c: LocalCluster, cluster: string) {
  const rows = new Map<string, memory.DaemonRow>();
  let resetRefused = false;
  for (const k of c.nodeNumbers)
    for (const s of SERVICES) rows.set(`${k}/${s}`, { cluster, node: k, service: s, idleKb: procStatus(c.pid(k, s) ?? 0).rss, peaks: [] });
  const phase = async <T>(name: memory.Phase, f: () => Promise<T>): Promise<T> => {
    for (const k of c.nodeNumbers) for (const s of SERVICES) if (!resetPeak(c.pid(k, s))) resetRefused = true;
    const out = await f();
    for (const row of rows.values()) row.peaks[memory.PHASES.indexOf(name)] = procStatus(c.pid(row.node, row.service) ?? 0).hwm;
    return out;
  };
  return { rows: [...rows.values()], phase, resetRefused: () => resetRefused };
}

/** One cluster's part of sections 1-4; what it measured goes into `into`. */
async function onOneCluster(
  ctx: BenchCtx,
  spec: ClusterSpec,
  bigPath: string,
  ref: Reference,
  pipes: Awaited<ReturnType<typeof pipelines>>,
  into: AtLeastOnceResult,
): Promise<void> {
  const { nodes, subnet } = spec;
  const cluster = `${nodes} nodes`;
  const { dir, c } = benchCluster(ctx, `bench-rainstorm-${nodes}n-`, subnet, true);
  const hydfs = new HydfsTestClient(c, `bench-rainstorm-${nodes}`, UPLOAD_TIMEOUT_MS);
  const rs = new RainstormTestClient(c);
  let peaks: ReturnType<typeof daemonPeaks> | undefined;
  await onCluster(ctx, cluster, c, dir, async () => {
    ctx.log(`${cluster}: starting on ${subnet}.1-${nodes} in ${dir}`);
    await c.up(nodes, 60_000);
    ctx.log(`${cluster}: up`);
    peaks = daemonPeaks(c, cluster);
    into.daemons.push(...peaks.rows);
    const cl: apps.ClusterRun = { cluster, c, rs, phase: peaks.phase };
    into.uploads.push(await peaks.phase("upload", () => uploadInput(ctx, hydfs, cluster, `${int(ref.lines)}-line input`, "input.csv", bigPath, ref.bytes)));
    const a = await apps.run(ctx, cl, ref, pipes, pipes.grepCount);
    into.throughput.push(...a.rows);
    into.jobStats.push(...a.jobStats);
    const lat = await latency.run(ctx, cl, hydfs, dir, a.app2Rate, bigLines(ctx.opts.quick));
    into.uploads.push(lat.upload);
    into.latency.push(lat.row);
    into.jobStats.push(lat.stats);
  });
  if (peaks?.resetRefused()) into.resetRefused = true;
}

/** Sections 1-4: generate the big input in `scratch`, time the Unix pipelines, bench each cluster. */
export async function run(ctx: BenchCtx, scratch: string): Promise<AtLeastOnceResult> {
  const lines = bigLines(ctx.opts.quick);
  const bigPath = join(scratch, "input.csv");
  ctx.log(`generating ${int(lines)} lines into ${bigPath}`);
  const t0 = performance.now();
  const ref = writeInput(bigPath, lines);
  ctx.log(
    `generated ${(ref.bytes / 1024 / 1024).toFixed(1)} MiB in ${fmtSec(performance.now() - t0)}: ${int(ref.app1)} lines contain ${APP1.pattern} (${ref.app1Counts.size} groups), ${int(ref.app2)} contain '${APP2.pattern}'`,
  );
  const pipes = await pipelines(ctx, bigPath, ref);
  const clusters = clustersFor(ctx.opts.quick);
  const result: AtLeastOnceResult = {
    ref,
    clusters,
    quick: ctx.opts.quick,
    cpus: ctx.cpus,
    throughput: [],
    uploads: [],
    latency: [],
    daemons: [],
    jobStats: [],
    resetRefused: false,
  };
  for (const spec of clusters) await onOneCluster(ctx, spec, bigPath, ref, pipes, result);
  rmSync(bigPath, { force: true });
  return result;
}

/** The Markdown of sections 1-4. `uploads` lists every section's input uploads (section 1 shows them all). */
export function report(r: AtLeastOnceResult, uploads: readonly UploadRow[] = r.uploads): string {
  const intro =
    `Input: ${int(r.ref.lines)} lines (${(r.ref.bytes / 1024 / 1024).toFixed(1)} MiB): the header of testdata/dataset1.csv, then its ${ROW_TAILS.length} rows cycled, ` +
    `each with Sign Asset ID := its line number. ${int(r.ref.app1)} lines contain \`${APP1.pattern}\` (App 1), ${int(r.ref.app2)} contain \`${APP2.pattern}\` (App 2). ` +
    `Clusters: ${r.clusters.map((x) => `${x.nodes} nodes on ${x.subnet}.k`).join(", ")}; memberd + hydfsd + rainstormd per node, default config (batch_size ${DEFAULT_RAINSTORM.batch_size}, window ${DEFAULT_RAINSTORM.window}), ${TASKS} tasks per stage, exactly_once=false, input_rate 0.`;
  return [
    intro,
    "",
    apps.report({ rows: r.throughput, uploads, quick: r.quick }),
    latency.report({ rows: r.latency, latencySeconds: latency.latencySeconds(r.quick) }),
    memory.report({ daemons: r.daemons, jobStats: r.jobStats, resetRefused: r.resetRefused }),
    cpu.report({ jobStats: r.jobStats, cpus: r.cpus }),
  ].join("\n");
}
