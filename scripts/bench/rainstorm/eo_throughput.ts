/**
 * Section 5a: App 1 and App 2 with exactly_once=false and =true on the same input at input_rate 0:
 * tuples/s of both, the ratio EO / non-EO, and the HyDFS bytes written per input tuple, with the
 * task logs read back to show what those bytes are.
 */
import { decodeRecord, taskLogName } from "../../../services/rainstorm/exactly_once.ts";
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import type { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import type { RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { fmtMs, fmtSec, int, mdTable, median } from "../stats.ts";
import { checkApp1, checkApp2, checkDest, checkIncreasing, notIncreasing } from "./checks.ts";
import type { BenchCtx } from "./context.ts";
import * as cpu from "./cpu.ts";
import { APP1, APP1_OPS, APP2, APP2_OPS, app1Args, app2Args, type Reference, shares, TASKS } from "./input.ts";
import { forget, type JobStats, jobStatsOf, runJob } from "./job.ts";

/** Repetitions of each (app, mode) pair. */
export const eoReps = (quick: boolean): number => (quick ? 1 : 3);
/** Lines of the exactly-once section's input. */
export const eoLines = (quick: boolean): number => (quick ? 50_000 : 200_000);

export type App = "App 1" | "App 2";

export interface HydfsCounters {
  /** Sum over the nodes of hydfs_bytes_written_total: bytes acknowledged by coordinators, before the x3 replication. */
  written: number;
  /** Sum over the nodes of hydfs_ops_total by op (create, append, get, merge). */
  ops: Map<string, number>;
}

/** One hydfsd's counters from its /metrics text. */
export function parseHydfsCounters(text: string): HydfsCounters | undefined {
  const w = /^hydfs_bytes_written_total (\d+)$/m.exec(text);
  if (!w) return undefined;
  const ops = new Map<string, number>();
  for (const m of text.matchAll(/^hydfs_ops_total\{op="([^"]+)"\} (\d+)$/gm)) ops.set(m[1]!, (ops.get(m[1]!) ?? 0) + Number(m[2]));
  return { written: Number(w[1]), ops };
}

async function hydfsCounters(c: LocalCluster): Promise<HydfsCounters> {
  const out: HydfsCounters = { written: 0, ops: new Map() };
  await Promise.all(
    c.nodeNumbers.map(async (k) => {
      const text = await (await c.http.fetch(c.hydfsUrl(k, "/metrics"), { timeoutMs: 5000 })).text();
      const one = parseHydfsCounters(text);
      if (!one) throw new Error(`node ${k}: no hydfs_bytes_written_total in hydfsd's /metrics`);
      out.written += one.written;
      for (const [op, n] of one.ops) out.ops.set(op, (out.ops.get(op) ?? 0) + n);
    }),
  );
  return out;
}

/** The ops counters that changed from `before` to `after`, by how much. */
export function opsDelta(before: HydfsCounters, after: HydfsCounters): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of after.ops) if (v - (before.ops.get(k) ?? 0) !== 0) d.set(k, v - (before.ops.get(k) ?? 0));
  return d;
}

/** One stage's task logs, read back from HyDFS: what the exactly-once bytes are made of. */
export interface LogStage {
  stage: number;
  tasks: { index: number; bytes: number; records: number; inputs: number }[];
  bytes: number;
  records: number;
  /** Inputs answered: each processed input once, in the record of its batch. */
  inputs: number;
  /** Inputs whose answer has no output (a filter's misses): logged only so a resend is recognized. */
  empty: number;
  outputs: number;
  /** Bytes of the records' `answers` and `state` JSON. */
  answerBytes: number;
  stateBytes: number;
}

/** Add one task's log (its bytes, as stored) to its stage's figures. */
export function addTaskLog(st: LogStage, index: number, bytes: Uint8Array): void {
  const t = { index, bytes: bytes.length, records: 0, inputs: 0 };
  for (const line of new TextDecoder().decode(bytes).split("\n")) {
    if (!line) continue;
    const r = decodeRecord(line);
    t.records++;
    t.inputs += r.answers.length;
    for (const a of r.answers) {
      if (a.outputs.length === 0) st.empty++;
      st.outputs += a.outputs.length;
    }
    const stateBytes = Buffer.byteLength(JSON.stringify(r.state ?? null));
    st.stateBytes += stateBytes;
    st.answerBytes += Buffer.byteLength(line) - stateBytes;
  }
  st.tasks.push(t);
  st.bytes += t.bytes;
  st.records += t.records;
  st.inputs += t.inputs;
}

async function readTaskLogs(hydfs: HydfsTestClient, job: string, stages: number): Promise<LogStage[]> {
  const out: LogStage[] = [];
  for (let stage = 0; stage < stages; stage++) {
    const st: LogStage = { stage, tasks: [], bytes: 0, records: 0, inputs: 0, empty: 0, outputs: 0, answerBytes: 0, stateBytes: 0 };
    for (let index = 0; index < TASKS; index++) {
      // Deterministic stateless operators (grep, transform...) keep no log under exactly-once.
      const bytes = await hydfs.get(1, taskLogName(job, stage, index)).catch((err: { status?: number }) => {
        if (err.status === 404) return new Uint8Array(0);
        throw err;
      });
      addTaskLog(st, index, bytes);
    }
    out.push(st);
  }
  return out;
}

export interface EoRow {
  app: App;
  eo: boolean;
  rep: number;
  job: string;
  lines: number;
  outputs: number;
  check: string;
  durationMs: number;
  wallMs: number;
  tuplesPerS: number;
  /** Delta of the summed hydfs_bytes_written_total over the job. */
  written: number;
  destBytes: number;
  ops: Map<string, number>;
  logs?: LogStage[];
  stats?: JobStats;
}

export interface EoThroughputResult {
  ref: Reference;
  reps: number;
  rows: EoRow[];
  jobStats: JobStats[];
  cpus: number;
}

/** One job of 5a: `app` with exactly_once=`eo` over eo-input.csv, its checks and its HyDFS bytes. */
async function oneJob(
  ctx: BenchCtx,
  c: LocalCluster,
  hydfs: HydfsTestClient,
  rs: RainstormTestClient,
  ref: Reference,
  app: App,
  eo: boolean,
  rep: number,
  reps: number,
): Promise<EoRow> {
  const mismatch = (what: string) => ctx.problems.mismatch(what);
  const label = `EO section ${app} exactly_once=${eo}${reps > 1 ? ` rep ${rep + 1}` : ""}`;
  const dest = `eo-${app === "App 1" ? "app1" : "app2"}-${eo ? "eo" : "alo"}-${rep}.txt`;
  const before = await hydfsCounters(c);
  ctx.log(`${label}: over ${int(ref.lines)} lines`);
  const r = await runJob(ctx, c, rs, label, app === "App 1" ? app1Args("eo-input.csv", dest, 0, eo) : app2Args("eo-input.csv", dest, 0, eo), false);
  const after = await hydfsCounters(c);
  const checks = [app === "App 1" ? checkApp1(mismatch, label, r.run, ref) : checkApp2(mismatch, label, r.run, ref, undefined)];
  if (app === "App 1") {
    // At-least-once promises no order: a task forwards up to TASK_CONCURRENCY batches at once.
    const bad = notIncreasing(r.run.outputs);
    checks.push(
      eo
        ? checkIncreasing(mismatch, label, r.run.outputs)
        : bad === 0
          ? "counts strictly increase"
          : `${bad} count updates reached the sink after a larger one (no order is promised at-least-once)`,
    );
  }
  const d = await checkDest(mismatch, hydfs, label, dest, r.run.outputs);
  checks.push(d.check);
  const done = r.run.done!;
  const row: EoRow = {
    app,
    eo,
    rep,
    job: done.job,
    lines: done.tuples_read,
    outputs: r.run.outputs.length,
    check: checks.join("; "),
    durationMs: done.duration_ms,
    wallMs: r.wallMs,
    tuplesPerS: done.tuples_read / (done.duration_ms / 1000),
    written: after.written - before.written,
    destBytes: d.bytes,
    ops: opsDelta(before, after),
    logs: eo ? await readTaskLogs(hydfs, done.job, 2) : undefined,
  };
  row.stats = jobStatsOf(
    `EO ${eo ? "on" : "off"}`,
    `${app}${reps > 1 ? ` rep ${rep + 1}` : ""}`,
    app === "App 1" ? APP1_OPS : APP2_OPS,
    r,
    shares("eo-input.csv", ref.lines, app === "App 1" ? ref.app1Counts : ref.app2Keys),
  );
  ctx.log(`${label}: ${done.duration_ms} ms, ${int(row.tuplesPerS)} tuples/s, HyDFS +${int(row.written)} B (dest ${int(row.destBytes)} B); ${row.check}`);
  forget(r);
  return row;
}

/**
 * 5a on the exactly-once cluster, with eo-input.csv (`ref`) stored. Rows are added to `into` as
 * they finish, so a failure keeps the jobs done before it (the section's error is recorded by the caller).
 */
export async function run(ctx: BenchCtx, c: LocalCluster, hydfs: HydfsTestClient, rs: RainstormTestClient, into: EoThroughputResult): Promise<void> {
  for (let rep = 0; rep < into.reps; rep++) {
    for (const app of ["App 1", "App 2"] as const) {
      // Alternate the order between repetitions, so neither mode always runs first.
      for (const eo of rep % 2 === 0 ? [false, true] : [true, false]) {
        const row = await oneJob(ctx, c, hydfs, rs, into.ref, app, eo, rep, into.reps);
        into.rows.push(row);
        into.jobStats.push(row.stats!);
      }
    }
  }
}

/** Median tuples/s of `app` with exactly_once=`eo`. */
export const tput = (rows: readonly EoRow[], app: App, eo: boolean): number | undefined =>
  median(rows.filter((r) => r.app === app && r.eo === eo).map((r) => r.tuplesPerS));

/** EO / non-EO of the median tuples/s. */
export function ratio(rows: readonly EoRow[], app: App): number | undefined {
  const on = tput(rows, app, true);
  const off = tput(rows, app, false);
  return on !== undefined && off !== undefined ? on / off : undefined;
}

/** Median log bytes per input tuple (HyDFS bytes written minus dest) of `rows`. */
export const perTuple = (rows: readonly EoRow[]): number | undefined => median(rows.map((r) => (r.written - r.destBytes) / r.lines));

const repLabel = (r: EoRow, reps: number) => `${r.app}${reps > 1 ? ` (rep ${r.rep + 1})` : ""}`;

function throughputTable(r: EoThroughputResult): string {
  return mdTable(
    [
      "job",
      "exactly_once",
      "lines in",
      "outputs",
      "check",
      "job duration",
      "tuples/s",
      "EO / non-EO",
      "HyDFS bytes written (sum over coordinators)",
      "of which dest",
      "log bytes (written - dest)",
      "log bytes / input tuple",
      "HyDFS ops (sum over coordinators)",
    ],
    r.rows.map((row) => {
      const offMedian = tput(r.rows, row.app, false);
      return [
        repLabel(row, r.reps),
        String(row.eo),
        int(row.lines),
        int(row.outputs),
        row.check,
        fmtSec(row.durationMs),
        `**${int(row.tuplesPerS)}**`,
        row.eo && offMedian ? (row.tuplesPerS / offMedian).toFixed(3) : "",
        int(row.written),
        int(row.destBytes),
        int(row.written - row.destBytes),
        ((row.written - row.destBytes) / row.lines).toFixed(1),
        [...row.ops].map(([k, v]) => `${k} ${int(v)}`).join(", "),
      ];
    }),
  );
}

function logsTable(r: EoThroughputResult): string {
  return mdTable(
    [
      "job",
      "stage: operator",
      "log bytes",
      "records (= HyDFS appends)",
      "inputs logged",
      "mean inputs / record",
      "inputs without output",
      "outputs logged",
      "answers JSON",
      "state JSON",
      "bytes / input",
      "records per task",
      "job duration / busiest task's records",
    ],
    r.rows
      .filter((row) => row.logs)
      .flatMap((row) =>
        row.logs!.map((st) => {
          const busiest = Math.max(...st.tasks.map((t) => t.records));
          const opName = (row.app === "App 1" ? APP1_OPS : APP2_OPS)[st.stage];
          return [
            repLabel(row, r.reps),
            `${st.stage}: \`${opName}\``,
            int(st.bytes),
            int(st.records),
            int(st.inputs),
            st.records ? (st.inputs / st.records).toFixed(1) : "n/a",
            int(st.empty),
            int(st.outputs),
            `${int(st.answerBytes)} (${((100 * st.answerBytes) / Math.max(1, st.bytes)).toFixed(0)}%)`,
            `${int(st.stateBytes)} (${((100 * st.stateBytes) / Math.max(1, st.bytes)).toFixed(0)}%)`,
            st.inputs ? (st.bytes / st.inputs).toFixed(1) : "n/a",
            st.tasks.map((t) => int(t.records)).join(" / "),
            busiest > 0 ? fmtMs(row.durationMs / busiest) : "n/a",
          ];
        }),
      ),
  );
}

/** What exactly-once adds to each group's CPU seconds, per app: mean(on) - mean(off), and each group's share. */
export function cpuAdded(rows: readonly EoRow[]): string[][] {
  const meanParts = (rs: EoRow[]) => {
    const ps = rs.flatMap((r) => (r.stats ? [cpu.cpuParts(r.stats)] : []));
    return ps.length ? cpu.CPU_PARTS.map((_, i) => ps.reduce((a, p) => a + p[i]!, 0) / ps.length) : undefined;
  };
  return (["App 1", "App 2"] as const).flatMap((app) => {
    const on = meanParts(rows.filter((r) => r.app === app && r.eo));
    const off = meanParts(rows.filter((r) => r.app === app && !r.eo));
    if (!on || !off) return [];
    const d = on.map((x, i) => x - off[i]!);
    const total = d.reduce((a, b) => a + b, 0);
    const offTotal = off.reduce((a, b) => a + b, 0);
    return [
      [
        app,
        ...d.map((x) => `${x >= 0 ? "+" : ""}${x.toFixed(2)} (${((100 * x) / total).toFixed(0)}%)`),
        `${total >= 0 ? "+" : ""}${total.toFixed(2)} (x${((offTotal + total) / offTotal).toFixed(2)} of off)`,
      ],
    ];
  });
}

/** The Markdown of section 5a. `haveInput`: false when the section failed before its input was stored. */
export function report(r: EoThroughputResult, haveInput: boolean): string {
  const out: string[] = [];
  const { ref, reps } = r;
  out.push(`### 5a. Throughput and HyDFS bytes: App 1 and App 2, exactly_once off and on, same input (input_rate 0)`);
  out.push("");
  out.push(
    haveInput
      ? `Input: the first ${int(ref.lines)} lines (${(ref.bytes / 1024 / 1024).toFixed(1)} MiB) of the generated file (section 1's, same generator), stored once as eo-input.csv; ${int(ref.app1)} lines contain \`${APP1.pattern}\`, ${int(ref.app2)} contain \`${APP2.pattern}\`. ` +
          `${reps > 1 ? `${reps} repetitions, the order of off/on alternating; the ratio uses the medians. ` : "One run each, off before on. "}`
      : "No input (the section failed before it).",
  );
  out.push("");
  out.push(throughputTable(r));
  out.push("");
  out.push(
    "HyDFS bytes written = the increase over the job of `hydfs_bytes_written_total` summed over the 5 hydfsd (bytes each coordinator acknowledged to its clients, counted once per create/append, " +
      "before replication: each is stored on 3 replicas, so the disks take ~3x, plus one fdatasync'ed manifest line and one chunk file per append on each replica). " +
      "`of which dest` is dest's size by HyDFS stat (checked = the streamed outputs). With exactly_once=false nothing but dest is written (written - dest = 0 is a check of the method). " +
      "HyDFS ops counts the creates/appends/gets each coordinator served (an EO task appends one record per batch it processes; the sink appends dest in group commits).",
  );
  out.push("");
  if (r.rows.some((row) => row.logs)) {
    out.push(
      "What the logs hold (every task log read back from HyDFS after the job; a record = one processed group of batches = `{a: answers, s: state}` JSON):",
    );
    out.push("");
    out.push(logsTable(r));
    out.push("");
    out.push(
      "A task's batches go through the exactly-once steps one group at a time (the batches that arrived meanwhile share one record), and each step ends only when its outputs are acknowledged downstream, so `job duration / busiest task's records` " +
        "is the mean time of one serialized step of that task (an upper bound: it includes start-up and idle time).",
    );
    out.push("");
  }
  if (r.jobStats.length > 0) {
    out.push("CPU seconds per group of processes from submission to the done event (as in section 4):");
    out.push("");
    out.push(cpu.cpuTable(r.jobStats, r.cpus));
    out.push("");
    const added = cpuAdded(r.rows);
    if (added.length > 0) {
      out.push("CPU seconds exactly-once adds to a job (mean of the on runs - mean of the off runs), per group, and each group's share of the added total:");
      out.push("");
      out.push(mdTable(["job", ...cpu.CPU_PARTS, "total added"], added));
      out.push("");
    }
  }
  return out.join("\n");
}
