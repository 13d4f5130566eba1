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
import { compiledIsFresh, type HydfsCtx, MiB, newCluster, NODES, runDeadlineMs, sizesFor, SUBNET } from "./common.ts";
import * as merge from "./merge.ts";
import * as rereplication from "./rereplication.ts";
import * as rss from "./rss.ts";
import * as throughput from "./throughput.ts";

export const USAGE = `usage: bun scripts/bench/hydfs.ts [--quick]

  --quick   1 MB and 20 MB files, 100 appends, 20 files, appenders 1 and 2 (about a minute)
  --help    this text

Progress goes to stderr, the Markdown report to stdout; the exit code is 1 when a step failed.`;

export interface HydfsBenchResult {
  quick: boolean;
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
  const sizes = sizesFor(ctx.quick);
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
async function bench(ctx: HydfsCtx, root: string, startMs: number): Promise<HydfsBenchResult> {
  const loadBefore = loadavg()[0]!;
  diskCheck(ctx, root);
  const compiled = compiledIsFresh();
  ctx.log(`daemons: ${compiled.fresh ? "dist/bin executables" : "bun + services/*.ts"} (${compiled.why})`);
  const scratch = join(root, "scratch");
  mkdirSync(scratch, { recursive: true });
  const r: HydfsBenchResult = {
    quick: ctx.quick,
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
  const a = newCluster(join(root, "cluster-a"), compiled.fresh);
  try {
    ctx.log(`cluster A: starting ${NODES} nodes on ${SUBNET}.1-${NODES}`);
    await a.up(NODES, 60_000);
    await step("throughput", async () => void (r.throughput = await throughput.run(ctx, a, scratch, r.rss)));
    await step("append latency", async () => void (r.latency = await appendLatency.run(ctx, a)));
    await step("merge", async () => void (r.merges = await merge.run(ctx, a)));
  } finally {
    await a.down(true);
  }
  const b = newCluster(join(root, "cluster-b"), compiled.fresh);
  try {
    ctx.log(`cluster B: starting ${NODES} fresh nodes on ${SUBNET}.1-${NODES}`);
    await b.up(NODES, 60_000);
    await step("re-replication", async () => void (r.rereplication = await rereplication.run(ctx, b)));
  } finally {
    await b.down(true);
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
  out.push(
    throughput.report(r.throughput),
    appendLatency.report(r.latency, appendLatency.appendsFor(r.quick)),
    rereplication.report(r.rereplication, rereplication.rrFilesFor(r.quick)),
    merge.report(r.merges),
    rss.report(r.rss, Math.max(...sizesFor(r.quick).map((s) => s.bytes))),
  );
  return `${out.join("\n")}\n`;
}

/** Run the benchmark with the script's arguments. */
export async function runCli(argv: readonly string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const quick = argv.includes("--quick");
  const { log, newTempDir, removeTempDirs, startMs, stopWatchdog } = benchHarness(runDeadlineMs(quick));
  try {
    const r = await bench({ quick, log }, newTempDir("bench-hydfs-"), startMs);
    process.stdout.write(report(r));
    log(`done in ${r.totalS.toFixed(0)} s`);
    if (r.failures.length > 0) process.exitCode = 1;
  } finally {
    stopWatchdog();
    removeTempDirs();
  }
}

if (import.meta.main) await runCli(process.argv.slice(2));
