/**
 * Section 5c, chaos: seeded runs of App 1 with exactly_once=true, each with the 1-2 random task
 * kills the chaos plan draws (services/testing/chaos_plan.ts: the chaos test's plans for the same
 * seed); a run passes when it completes, every key's counts strictly increase and the final counts
 * equal the golden.
 */
import { seededRng } from "../../../services/shared/rng.ts";
import {
  CHAOS_LINES,
  CHAOS_RATE,
  type ChaosKill,
  chaosJobArgs,
  chaosKillAfterOutputs,
  chaosTarget,
  drawChaosPlan,
} from "../../../services/testing/chaos_plan.ts";
import type { JobRun, RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { fmtSec, int, mdTable, percentile } from "../stats.ts";
import type { BenchCtx } from "./context.ts";
import type { Reference } from "./input.ts";
import { RESUME_TARGET_MS } from "./kill_recovery.ts";

/** Deadline of one chaos run's done event. */
const CHAOS_JOB_TIMEOUT_MS = 60_000;

export interface ChaosRow {
  run: number;
  plan: ChaosKill[];
  killsDone: number;
  restarts: number;
  outputs: number;
  durationMs?: number;
  increasing: boolean;
  countsOk: boolean;
  error?: string;
  pass: boolean;
}

export interface ChaosResult {
  seed: number;
  runs: number;
  /** The input, once stored (undefined: the section failed before it). */
  ref?: Reference;
  rows: ChaosRow[];
}

/** Judge a finished chaos run: its outputs against the golden counts, and how the job ended. */
export function judge(row: ChaosRow, run: JobRun, golden: Map<string, number>): void {
  const last = new Map<string, number>();
  row.increasing = true;
  for (const line of run.outputs) {
    const tab = line.lastIndexOf("\t");
    const count = Number(line.slice(tab + 1));
    if (!(count > (last.get(line.slice(0, tab)) ?? 0))) row.increasing = false;
    last.set(line.slice(0, tab), count);
  }
  const sorted = (m: Map<string, number>) => JSON.stringify([...m].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  row.countsOk = sorted(last) === sorted(golden);
  row.outputs = run.outputs.length;
  row.restarts = run.events.filter((e) => e.event === "task_restarted").length;
  row.durationMs = run.done?.duration_ms;
  if (run.rejected) row.error = `rejected: ${run.rejected.status} ${run.rejected.error}`;
  else if (run.failed) row.error = `failed: ${run.failed}`;
  else if (!run.done) row.error = "no done event";
  row.pass = !row.error && row.increasing && row.countsOk;
}

/** Chaos run `i` with `plan`, over chaos.csv (stored), judged against `ref`. */
async function oneRun(rs: RainstormTestClient, seed: number, i: number, plan: ChaosKill[], ref: Reference): Promise<ChaosRow> {
  const row: ChaosRow = { run: i, plan, killsDone: 0, restarts: 0, outputs: 0, increasing: false, countsOk: false, pass: false };
  const actions: Promise<void>[] = [];
  const fire = (job: string, k: ChaosKill) =>
    (async () => {
      const t = chaosTarget(await rs.tasks(), job, k);
      if (t && (await rs.killTask(t.node, t.pid)).ok) row.killsDone++;
    })().catch(() => {});
  // Kills fire on progress: once the job has streamed the planned share of its outputs.
  let job = "";
  let streamed = 0;
  let next = 0;
  try {
    const run = await rs.run(chaosJobArgs("chaos.csv", `chaos-${seed}-${i}.txt`), CHAOS_JOB_TIMEOUT_MS, (ev) => {
      if (ev.event === "accepted") job = ev.job;
      if (ev.event !== "output") return;
      streamed += (ev.lines as string[]).length;
      while (next < plan.length && streamed >= chaosKillAfterOutputs(plan[next]!, ref.app1)) actions.push(fire(job, plan[next++]!));
    });
    await Promise.all(actions);
    judge(row, run, ref.app1Counts);
  } catch (err) {
    row.error = (err as Error).message;
  }
  return row;
}

/** The chaos runs, over chaos.csv (`into.ref`, stored); rows are added to `into` as they finish. */
export async function run(ctx: BenchCtx, rs: RainstormTestClient, into: ChaosResult): Promise<void> {
  const rng = seededRng(into.seed);
  for (let i = 0; i < into.runs; i++) {
    const plan = drawChaosPlan(rng);
    const row = await oneRun(rs, into.seed, i, plan, into.ref!);
    into.rows.push(row);
    ctx.log(
      `chaos ${i + 1}/${into.runs} (seed ${into.seed}): ${row.durationMs ?? "n/a"} ms, ${row.pass ? "pass" : `FAIL (${row.error ?? `increasing=${row.increasing} counts=${row.countsOk}`})`}; ${row.killsDone}/${plan.length} kills, ${row.restarts} restarts, ${row.outputs} outputs`,
    );
  }
}

const pacedMs = (CHAOS_LINES / CHAOS_RATE) * 1000;
/** A run that lasted more than the resume target beyond its paced length. */
const stalled = (r: ChaosRow) => r.durationMs !== undefined && r.durationMs > pacedMs + RESUME_TARGET_MS;

function summaryTable(r: ChaosResult): string {
  const rows = r.rows;
  const passed = rows.filter((x) => x.pass).length;
  const exact = rows.filter((x) => r.ref && x.outputs === r.ref.app1).length;
  const durations = rows.flatMap((x) => (x.durationMs === undefined ? [] : [x.durationMs]));
  return mdTable(
    [
      "runs",
      "passed",
      "kills planned",
      "kills done (kill_task 200)",
      "task_restarted events",
      "runs with exactly one output per matching line",
      "job duration p50 / max",
      `runs longer than paced + ${fmtSec(RESUME_TARGET_MS)} (${fmtSec(pacedMs + RESUME_TARGET_MS)})`,
    ],
    [
      [
        String(rows.length),
        `**${passed} / ${rows.length}**`,
        String(rows.reduce((n, x) => n + x.plan.length, 0)),
        String(rows.reduce((n, x) => n + x.killsDone, 0)),
        String(rows.reduce((n, x) => n + x.restarts, 0)),
        `${exact} / ${rows.length}`,
        `${fmtSec(percentile(durations, 50))} / ${fmtSec(percentile(durations, 100))}`,
        `${rows.filter(stalled).length}${
          rows.some(stalled)
            ? ` (run ${rows
                .filter(stalled)
                .map((x) => x.run)
                .join(", ")})`
            : ""
        }`,
      ],
    ],
  );
}

function runsTable(rows: readonly ChaosRow[]): string {
  return mdTable(
    ["run", "kills (stage@share of outputs)", "done", "restarts", "outputs", "job duration", "increasing", "final = golden", "result"],
    rows.map((r) => [
      String(r.run),
      r.plan.map((k) => `s${k.stage}@${Math.round(k.afterFraction * 100)}%`).join(" "),
      `${r.killsDone}/${r.plan.length}`,
      String(r.restarts),
      int(r.outputs),
      stalled(r) ? `**${fmtSec(r.durationMs)}** (stalled)` : fmtSec(r.durationMs),
      r.increasing ? "yes" : "**no**",
      r.countsOk ? "yes" : "**no**",
      r.pass ? "pass" : `**FAIL**${r.error ? `: ${r.error}` : ""}`,
    ]),
  );
}

/** The Markdown of section 5c. */
export function report(r: ChaosResult): string {
  const out: string[] = [];
  out.push(`### 5c. Chaos: ${r.runs} seeded runs, seed ${r.seed}`);
  out.push("");
  out.push(
    `App 1 with exactly_once=true over the first ${CHAOS_LINES} lines of the generated file at ${CHAOS_RATE} tuples/s (~1 s), ${r.ref ? `golden counts ${JSON.stringify(Object.fromEntries([...r.ref.app1Counts].sort()))}` : ""}. ` +
      "Each run draws 1-2 kills, each at 150-850 ms after `accepted`, of a random task of a random stage (the draws of the chaos test in services/rainstorm/rainstorm_cluster_test.ts: " +
      `the same seed gives the same plans). A run passes when it ends with done, every key's counts strictly increase, and the final counts equal the golden ones. Replay: \`--chaos-seed ${r.seed}\`.`,
  );
  out.push("");
  out.push(summaryTable(r));
  out.push("");
  out.push(runsTable(r.rows));
  out.push("");
  out.push(
    `A planned kill can miss only when the job had already finished (its tasks are gone from list_tasks). A run is correct or not by the pass criteria above; one that lasts more than ${fmtSec(RESUME_TARGET_MS)} ` +
      `beyond its paced ${fmtSec(pacedMs)} is also flagged as stalled: some kill in it took longer than the resume target to recover from (the job still has to be correct).`,
  );
  out.push("");
  return out.join("\n");
}
