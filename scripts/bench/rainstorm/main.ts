/**
 * The RainStorm benchmark's entry (scripts/bench/rainstorm.ts runs it): parse the flags, build
 * dist/ if needed, run the sections the flags ask for, and print the Markdown report. Each section
 * is a module with `run(ctx) -> result` and a pure `report(result) -> string`.
 */
import { existsSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { SERVICES } from "../../../services/testing/cluster.ts";
import { benchHarness } from "../harness.ts";
import { firstThree, shq, staleness, timeShell } from "../procs.ts";
import { fmtSec } from "../stats.ts";
import * as atLeastOnce from "./at_least_once.ts";
import * as autoscale from "./autoscale.ts";
import * as autoscaleReport from "./autoscale_report.ts";
import { type BenchCtx, Problems } from "./context.ts";
import * as exactlyOnce from "./exactly_once.ts";
import { REPO_ROOT } from "./input.ts";
import { type Options, parseOptions, runDeadlineMs, USAGE } from "./options.ts";

/** Use dist/ only when every executable exists and is newer than every source it is built from. */
function compiledIsFresh(): { fresh: boolean; why: string } {
  const exes = [...SERVICES.map((s) => join(REPO_ROOT, "dist", "bin", s)), join(REPO_ROOT, "dist", "ops", "rainstorm-op")];
  const { missing, newer } = staleness(REPO_ROOT, exes, ["services", "ops"], (_, rel) => !rel.startsWith("testing/"));
  if (missing.length > 0) return { fresh: false, why: `missing ${missing.join(", ")}` };
  return newer.length === 0
    ? { fresh: true, why: "dist/ is newer than every source" }
    : { fresh: false, why: `sources newer than dist/: ${firstThree(newer)}` };
}

/** Build dist/ when it is stale (unless --no-build); returns what the daemons and operators run as. */
async function ensureBuilt(ctx: BenchCtx): Promise<string> {
  const state = compiledIsFresh();
  if (state.fresh) return `dist/bin + dist/ops executables (${state.why})`;
  if (ctx.opts.noBuild)
    return `${existsSync(join(REPO_ROOT, "dist", "bin", "rainstormd")) ? "dist/ executables" : "bun + .ts sources"}, --no-build (${state.why})`;
  ctx.log(`building dist/ (${state.why})`);
  const t0 = performance.now();
  await timeShell(`${shq(process.execPath)} ${shq(join(REPO_ROOT, "scripts", "build.ts"))}`, 600_000);
  ctx.log(`built dist/ in ${fmtSec(performance.now() - t0)}`);
  return `dist/bin + dist/ops executables (built by this run: ${state.why})`;
}

/** What the whole run measured, and around it. */
export interface BenchResult {
  opts: Options;
  startedAt: Date;
  loadStart: number[];
  loadEnd: number[];
  cpus: number;
  bunVersion: string;
  daemonsUsed: string;
  totalMs: number;
  atLeastOnce?: atLeastOnce.AtLeastOnceResult;
  exactlyOnce?: exactlyOnce.ExactlyOnceResult;
  autoscale?: autoscale.AutoscaleResult;
  mismatches: readonly string[];
  errors: readonly string[];
}

/** The whole Markdown report. */
export function report(r: BenchResult): string {
  const { opts } = r;
  const out: string[] = [];
  out.push(
    `# RainStorm benchmark${opts.quick ? " (--quick)" : ""}${opts.eoOnly ? " (--eo-only: section 5 only)" : ""}${opts.autoscaleOnly ? " (--autoscale-only: section 6 only)" : ""}${opts.throughputOnly ? " (--throughput-only: sections 1-4 only)" : ""}`,
  );
  out.push("");
  out.push(
    `${r.startedAt.toISOString()}, nproc ${r.cpus}, load average ${r.loadStart.map((l) => l.toFixed(2)).join(" ")} at start (${r.loadEnd.map((l) => l.toFixed(2)).join(" ")} at end), ` +
      `one run, same machine; Bun ${r.bunVersion}; daemons and operators: ${r.daemonsUsed}; total ${fmtSec(r.totalMs)}.`,
  );
  out.push("");
  // Section 1 lists the input uploads of every section, in the order they ran.
  const uploads = [...(r.atLeastOnce?.uploads ?? []), ...(r.exactlyOnce?.uploads ?? []), ...(r.autoscale?.uploads ?? [])];
  if (r.atLeastOnce) out.push(atLeastOnce.report(r.atLeastOnce, uploads));
  if (r.exactlyOnce) out.push(exactlyOnce.report(r.exactlyOnce));
  if (r.autoscale) out.push(autoscaleReport.report(r.autoscale));
  if (r.mismatches.length > 0 || r.errors.length > 0) {
    out.push("## Problems");
    out.push("");
    for (const m of r.mismatches) out.push(`- **MISMATCH**: ${m}`);
    for (const e of r.errors) out.push(`- **ERROR**: ${e}`);
    out.push("");
  }
  return `${out.join("\n")}\n`;
}

async function bench(ctx: BenchCtx, startMs: number): Promise<BenchResult> {
  const { opts } = ctx;
  const startedAt = new Date();
  const loadStart = loadavg();
  const daemonsUsed = await ensureBuilt(ctx);
  ctx.log(`daemons: ${daemonsUsed}`);
  const scratch = ctx.newTempDir("bench-rainstorm-input-");
  const alo = opts.eoOnly || opts.autoscaleOnly ? undefined : await atLeastOnce.run(ctx, scratch);
  // 5. Exactly-once and 6. autoscaling, each on its own 5-node cluster.
  const eo = opts.autoscaleOnly || opts.throughputOnly ? undefined : await exactlyOnce.run(ctx, scratch);
  const as = opts.eoOnly || opts.throughputOnly ? undefined : await autoscale.run(ctx);
  return {
    opts,
    startedAt,
    loadStart,
    loadEnd: loadavg(),
    cpus: ctx.cpus,
    bunVersion: Bun.version,
    daemonsUsed,
    totalMs: performance.now() - startMs,
    atLeastOnce: alo,
    exactlyOnce: eo,
    autoscale: as,
    mismatches: ctx.problems.mismatches,
    errors: ctx.problems.errors,
  };
}

/** Run the benchmark with the script's arguments; exits the process with its code. */
export async function runCli(argv: readonly string[]): Promise<never> {
  let opts: Options;
  try {
    opts = parseOptions(argv, process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const { log, newTempDir, removeTempDir, removeTempDirs, startMs, stopWatchdog } = benchHarness(runDeadlineMs(opts));
  const ctx: BenchCtx = { opts, log, newTempDir, removeTempDir, problems: new Problems(log), cpus: availableParallelism() };
  try {
    const result = await bench(ctx, startMs);
    process.stdout.write(report(result));
    const { mismatches, errors } = ctx.problems;
    if (mismatches.length > 0) log(`!!!!!!!! ${mismatches.length} MISMATCH(ES): ${mismatches.join(" | ")}`);
    if (errors.length > 0) log(`${errors.length} error(s): ${errors.join(" | ")}`);
    log(`done in ${fmtSec(performance.now() - startMs)}`);
    stopWatchdog();
    removeTempDirs();
    process.exit(mismatches.length > 0 || errors.length > 0 ? 1 : 0);
  } catch (err) {
    log(`fatal: ${(err as Error).stack ?? err}`);
    removeTempDirs();
    process.exit(1);
  }
}

if (import.meta.main) await runCli(process.argv.slice(2));
