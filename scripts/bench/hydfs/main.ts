/**
 * The HyDFS benchmark's entry (scripts/bench/hydfs.ts runs it): cluster A for throughput
 * (throughput.ts, with the RSS of rss.ts), append latency (append_latency.ts) and merge (merge.ts);
 * a fresh cluster B for re-replication (rereplication.ts); then the Markdown report.
 */
import { mkdirSync, statfsSync } from "node:fs";
import { cpus, hostname, loadavg } from "node:os";
import { join } from "node:path";
import { benchHarness } from "../harness.ts";
import * as appendLatency from "./append_latency.ts";
import { compiledIsFresh, type HydfsCtx, MiB, newCluster, NODES, parseBenchArgs, runDeadlineMs, type Step, sizesOf, SUBNET } from "./common.ts";
import * as merge from "./merge.ts";
import * as rereplication from "./rereplication.ts";
import * as rss from "./rss.ts";
import * as throughput from "./throughput.ts";

export const USAGE = `usage: bun scripts/bench/hydfs.ts [--quick] [--only STEPS] [--sizes LIST] [--reps N] [--appends N]

  --quick         1 MB and 20 MB files, 100 appends, 20 files, appenders 1 and 2 (about a minute)
  --only STEPS    comma-separated steps to run: throughput,latency,merge,rereplication (default all)
  --sizes LIST    throughput file sizes, e.g. 100M,1G (3 reps each unless --reps)
  --reps N        repetitions of each throughput size
  --appends N     timed appends of the latency step
  --help          this text

Progress goes to stderr, the Markdown report to stdout; the exit code is 1 when a step failed.`;

export interface HydfsBenchResult {
  quick: boolean;
  /** The steps that ran (--only). */
  steps: Step[];
  /** Timed appends the latency step was asked for. */
  appends: number;
  /** When the report was made (the end of the run). */
  at: Date;
  host: string;
  nproc: number;
  cpuModel: string;
  bunVersion: string;
  compiled: boolean;
  totalS: number;
  loadBefore: number;
  loadAfter: number;
  failures: string[];
  throughput: throughput.ThroughputRow[];
  rss: rss.RssRow[];
  latency?: appendLatency.LatencyResult;
  merges: merge.MergeRow[];
  rereplication?: rereplication.RereplicationResult;
}

/** Fail early when the disk cannot hold the largest file's copies. */
function diskCheck(ctx: HydfsCtx, dir: string): void {
  const sizes = ctx.sizes;
  const largest = Math.max(...sizes.map((s) => s.bytes));
  // source + cp copy + get copy + 3 replicas of the largest file, plus what earlier sizes left.
  const need = largest * 6 + sizes.reduce((n, s) => n + s.bytes * s.reps * 3, 0) + 512 * MiB;
  try {
    const st = statfsSync(dir);
    const free = Number(st.bavail) * Number(st.bsize);
    ctx.log(`disk: ${(free / 1024 / MiB).toFixed(1)} GB free in ${dir}, need about ${(need / 1024 / MiB).toFixed(1)} GB`);
    if (free < need) throw new Error(`not enough disk in ${dir}: ${(free / 1024 / MiB).toFixed(1)} GB free, need about ${(need / 1024 / MiB).toFixed(1)} GB`);
  } catch (err) {
    if ((err as Error).message.startsWith("not enough disk")) throw err;
    ctx.log(`disk: cannot check free space (${(err as Error).message})`);
  }
}

/** Run every step; a failed step is listed and the next one runs. */
async function bench(ctx: HydfsCtx, steps: Step[], root: string, startMs: number): Promise<HydfsBenchResult> {
  const loadBefore = loadavg()[0]!;
  diskCheck(ctx, root);
  const compiled = compiledIsFresh();
  ctx.log(`daemons: ${compiled.fresh ? "dist/bin executables" : "bun + services/*.ts"} (${compiled.why})`);
  const scratch = join(root, "scratch");
  mkdirSync(scratch, { recursive: true });
  const r: HydfsBenchResult = {
    quick: ctx.quick,
    steps,
    appends: ctx.appends,
    at: new Date(),
    host: hostname(),
    nproc: navigator.hardwareConcurrency,
    cpuModel: cpus()[0]?.model ?? "unknown CPU",
    bunVersion: Bun.version,
    compiled: compiled.fresh,
    totalS: NaN,
    loadBefore,
    loadAfter: NaN,
    failures: [],
    throughput: [],
    rss: [],
    merges: [],
  };
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      ctx.log(`${what} FAILED: ${(err as Error).stack ?? err}`);
      r.failures.push(`${what}: ${(err as Error).message}`);
    }
  };
  const runs = (s: Step) => steps.includes(s);
  if (runs("throughput") || runs("latency") || runs("merge")) {
    const a = newCluster(join(root, "cluster-a"), compiled.fresh);
    try {
      ctx.log(`cluster A: starting ${NODES} nodes on ${SUBNET}.1-${NODES}`);
      await a.up(NODES, 60_000);
      if (runs("throughput")) await step("throughput", async () => void (r.throughput = await throughput.run(ctx, a, scratch, r.rss)));
      if (runs("latency")) await step("append latency", async () => void (r.latency = await appendLatency.run(ctx, a)));
      if (runs("merge")) await step("merge", async () => void (r.merges = await merge.run(ctx, a)));
    } finally {
      await a.down(true);
    }
  }
  if (runs("rereplication")) {
    const b = newCluster(join(root, "cluster-b"), compiled.fresh);
    try {
      ctx.log(`cluster B: starting ${NODES} fresh nodes on ${SUBNET}.1-${NODES}`);
      await b.up(NODES, 60_000);
      await step("re-replication", async () => void (r.rereplication = await rereplication.run(ctx, b)));
    } finally {
      await b.down(true);
    }
  }
  r.totalS = (performance.now() - startMs) / 1000;
  r.loadAfter = loadavg()[0]!;
  r.at = new Date();
  return r;
}

/** The whole Markdown report. */
export function report(r: HydfsBenchResult): string {
  const out: string[] = [
    `# HyDFS benchmark${r.quick ? " (--quick smoke run)" : ""}`,
    "",
    `${r.at.toISOString()} on ${r.host}: nproc=${r.nproc} (${r.cpuModel}), Bun ${r.bunVersion}; one run, same machine. ` +
      `${NODES} nodes (memberd + hydfsd each, ${r.compiled ? "dist/bin executables" : "bun + .ts sources"}) on ${SUBNET}.k, default knobs, hydfs.max_body_bytes = 2 GiB; ` +
      `every node's store, the benchmark's files and the cp copies on the same disk. MB = 2^20 bytes. Total runtime ${r.totalS.toFixed(0)} s. ` +
      `1-min load average ${r.loadBefore.toFixed(2)} at the start, ${r.loadAfter.toFixed(2)} at the end (the machine is shared; anything above ~0 at the start is someone else's work).`,
    "",
  ];
  if (r.failures.length > 0) out.push("**Steps that failed:**", "", ...r.failures.map((f) => `- ${f}`), "");
  const runs = (s: Step) => r.steps.includes(s);
  if (runs("throughput")) out.push(throughput.report(r.throughput));
  if (runs("latency")) out.push(appendLatency.report(r.latency, r.appends));
  if (runs("rereplication")) out.push(rereplication.report(r.rereplication, rereplication.rrFilesFor(r.quick)));
  if (runs("merge")) out.push(merge.report(r.merges));
  if (runs("throughput")) out.push(rss.report(r.rss, Math.max(...r.throughput.map((t) => t.bytes), 0)));
  return `${out.join("\n")}\n`;
}

/** Run the benchmark with the script's arguments. */
export async function runCli(argv: readonly string[]): Promise<void> {
  const o = parseBenchArgs(argv);
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { quick } = o;
  const { log, newTempDir, removeTempDirs, startMs, stopWatchdog } = benchHarness(runDeadlineMs(quick));
  try {
    const ctx: HydfsCtx = { quick, log, sizes: sizesOf(o), appends: o.appends ?? appendLatency.appendsFor(quick) };
    const r = await bench(ctx, o.steps, newTempDir("bench-hydfs-"), startMs);
    process.stdout.write(report(r));
    log(`done in ${r.totalS.toFixed(0)} s`);
    if (r.failures.length > 0) process.exitCode = 1;
  } finally {
    stopWatchdog();
    removeTempDirs();
  }
}

if (import.meta.main) await runCli(process.argv.slice(2));
