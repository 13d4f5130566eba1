/**
 * Section 5, exactly-once (issue 5, "Benchmark"), on its own 5-node cluster: throughput EO against
 * non-EO (eo_throughput.ts), kill to resume (kill_recovery.ts), chaos (chaos.ts) and the
 * microbenchmarks (probes.ts), under the issue's targets.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { CHAOS_LINES } from "../../../services/testing/chaos_plan.ts";
import { DEFAULT_RAINSTORM } from "../../../services/rainstorm/config.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { fmtSec, int, mdTable, percentile } from "../stats.ts";
import * as chaos from "./chaos.ts";
import { type BenchCtx, benchCluster, onCluster, type UploadRow, uploadInput } from "./context.ts";
import * as eoThroughput from "./eo_throughput.ts";
import { TASKS, writeInput } from "./input.ts";
import * as kills from "./kill_recovery.ts";
import { UPLOAD_TIMEOUT_MS } from "./options.ts";
import * as probes from "./probes.ts";

export const EO_CLUSTER = { nodes: 5, subnet: "127.0.41" };
/** Target of issue 5: EO tuples/s >= 0.8 x non-EO tuples/s. */
export const EO_RATIO_TARGET = 0.8;

export interface ExactlyOnceResult {
  /** The cluster came up and the section started (its input paragraph is shown). */
  started: boolean;
  cpus: number;
  throughput: eoThroughput.EoThroughputResult;
  kills: kills.KillResult;
  chaos: chaos.ChaosResult;
  probes: probes.ProbeRow[];
  uploads: UploadRow[];
}

/** Section 5: generate its input in `scratch`, then run 5a-5d on a fresh cluster; a failed part is recorded and the next one runs. */
export async function run(ctx: BenchCtx, scratch: string): Promise<ExactlyOnceResult> {
  const { quick } = ctx.opts;
  const eoPath = join(scratch, "eo-input.csv");
  const ref = writeInput(eoPath, eoThroughput.eoLines(quick));
  ctx.log(`exactly-once section: ${int(ref.lines)} lines (${(ref.bytes / 1024 / 1024).toFixed(1)} MiB) in ${eoPath}`);
  const result: ExactlyOnceResult = {
    started: false,
    cpus: ctx.cpus,
    throughput: { ref, reps: eoThroughput.eoReps(quick), rows: [], jobStats: [], cpus: ctx.cpus },
    kills: { killAtS: kills.killAtS(quick), killSeconds: kills.killSeconds(quick), runs: [] },
    chaos: { seed: ctx.opts.chaosSeed, runs: ctx.opts.chaosRuns, rows: [] },
    probes: [],
    uploads: [],
  };
  const { nodes, subnet } = EO_CLUSTER;
  const cluster = `${nodes} nodes (EO)`;
  const { dir, c } = benchCluster(ctx, "bench-rainstorm-eo-", subnet, true);
  const hydfs = new HydfsTestClient(c, "bench-rainstorm-eo", UPLOAD_TIMEOUT_MS);
  const rs = new RainstormTestClient(c);
  const section = async (what: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (err) {
      ctx.problems.error(`exactly-once ${what}: ${(err as Error).message}`);
    }
  };
  const upload = async (lines: number, name: string, path: string, bytes: number) => {
    result.uploads.push(await uploadInput(ctx, hydfs, cluster, `${int(lines)}-line input`, name, path, bytes));
  };
  await onCluster(ctx, cluster, c, dir, async () => {
    ctx.log(`${cluster}: starting on ${subnet}.1-${nodes} in ${dir}`);
    await c.up(nodes, 60_000);
    ctx.log(`${cluster}: up`);
    result.started = true;
    await upload(ref.lines, "eo-input.csv", eoPath, ref.bytes);
    await section("throughput", () => eoThroughput.run(ctx, c, hydfs, rs, result.throughput));

    await section("kill to resume", async () => {
      const lines = kills.KILL_RATE * result.kills.killSeconds;
      const path = join(dir, "eo-kill.csv");
      const killRef = (result.kills.ref = writeInput(path, lines));
      await upload(lines, "eo-kill.csv", path, killRef.bytes);
      for (const stage of [1, 0] as const)
        await section(
          `kill run (stage ${stage})`,
          async () => void result.kills.runs.push(await kills.run(ctx, c, hydfs, rs, stage, killRef, result.kills.killAtS)),
        );
    });

    await section("chaos", async () => {
      const path = join(dir, "chaos.csv");
      const chaosRef = (result.chaos.ref = writeInput(path, CHAOS_LINES));
      await upload(CHAOS_LINES, "chaos.csv", path, chaosRef.bytes);
      await chaos.run(ctx, rs, result.chaos);
    });

    await section("probes", () => probes.run(ctx, c, dir, result.throughput.rows, result.probes));
  });
  rmSync(eoPath, { force: true });
  return result;
}

/** The issue's targets and the section's results against them. */
function targetsTable(r: ExactlyOnceResult): string {
  const { rows, reps, ref } = r.throughput;
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "**not measured**" : ok ? "**PASS**" : "**FAIL**");
  const resumeMs = kills.resumeTimes(r.kills.runs);
  const resumeP99 = percentile(resumeMs, 99);
  const passed = r.chaos.rows.filter((x) => x.pass).length;
  const perTuple = (app: eoThroughput.App) => eoThroughput.perTuple(rows.filter((x) => x.eo && x.app === app))?.toFixed(1) ?? "n/a";
  return mdTable(
    ["measure", "target", "result", "verdict"],
    [
      ...(["App 1", "App 2"] as const).map((app) => {
        const x = eoThroughput.ratio(rows, app);
        return [
          `${app} throughput, EO / non-EO (${r.started ? int(ref.lines) : "n/a"} lines, input_rate 0${reps > 1 ? `, median of ${reps}` : ""})`,
          `>= ${EO_RATIO_TARGET}`,
          x === undefined ? "n/a" : `${x.toFixed(3)} (${int(eoThroughput.tput(rows, app, true))} / ${int(eoThroughput.tput(rows, app, false))} tuples/s)`,
          verdict(x === undefined ? undefined : x >= EO_RATIO_TARGET),
        ];
      }),
      [
        `kill of a task to its output resuming, p99 over ${resumeMs.length} kills (kill = detection)`,
        `<= ${fmtSec(kills.RESUME_TARGET_MS)}`,
        resumeP99 === undefined ? "n/a" : `p50 ${fmtSec(percentile(resumeMs, 50))}, p99 ${fmtSec(resumeP99)}`,
        verdict(resumeP99 === undefined ? undefined : resumeP99 <= kills.RESUME_TARGET_MS),
      ],
      [
        "HyDFS bytes written per input tuple, EO (logs only; dest excluded)",
        "(report)",
        `App 1 ${perTuple("App 1")} B, App 2 ${perTuple("App 2")} B (x3 on the replicas' disks)`,
        "",
      ],
      [
        `chaos runs (seed ${r.chaos.seed})`,
        `${r.chaos.runs} / ${r.chaos.runs}`,
        `${passed} / ${r.chaos.rows.length} passed`,
        verdict(r.chaos.rows.length === 0 ? undefined : passed === r.chaos.runs),
      ],
    ],
  );
}

/** The Markdown of section 5. */
export function report(r: ExactlyOnceResult): string {
  return [
    "## 5. Exactly-once (exactly_once=true) against at-least-once (exactly_once=false)",
    "",
    `Own 5-node cluster (${EO_CLUSTER.subnet}.1-5, memberd + hydfsd + rainstormd per node, default config: batch_size ${DEFAULT_RAINSTORM.batch_size}, window ${DEFAULT_RAINSTORM.window}, ` +
      `max_task_restarts ${DEFAULT_RAINSTORM.max_task_restarts}, HyDFS replica_count 3), ${TASKS} tasks per stage, on the same ${r.cpus}-CPU machine as everything else.`,
    "",
    "### Issue 5 targets",
    "",
    targetsTable(r),
    "",
    eoThroughput.report(r.throughput, r.started),
    kills.report(r.kills),
    chaos.report(r.chaos),
    probes.report(r.probes),
  ].join("\n");
}
