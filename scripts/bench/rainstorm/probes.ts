/**
 * Section 5d, microbenchmarks for the diagnosis of the exactly-once cost: sequential HyDFS appends
 * of a log record's size (one writer, and 6 at once), and an operator's batch and snapshot round
 * trips, on the exactly-once cluster with no job running.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { csvField } from "../../../ops/csv.ts";
import { tupleLine, OperatorProcess } from "../../../services/rainstorm/operator_proc.ts";
import { DEFAULT_RAINSTORM } from "../../../services/rainstorm/config.ts";
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { fmtMs, int, mdTable, percentile } from "../stats.ts";
import type { BenchCtx } from "./context.ts";
import type { EoRow } from "./eo_throughput.ts";
import { APP1, genLine, REPO_ROOT } from "./input.ts";

/** Appends per writer (6 writers: half as many each). */
export const probeAppends = (quick: boolean): number => (quick ? 50 : 200);
/** Operator batches timed (after 5 warm-up ones). */
export const probeBatches = (quick: boolean): number => (quick ? 50 : 200);
/** Operator batches run before the timed ones. */
const WARMUP_BATCHES = 5;

export interface ProbeRow {
  what: string;
  samples: number[];
}

/** `writers` clients each append `n` records of `size` bytes in sequence, through different nodes. */
async function appendProbe(c: LocalCluster, size: number, writers: number, n: number): Promise<number[]> {
  const body = `${"x".repeat(Math.max(0, size - 1))}\n`;
  const samples: number[] = [];
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const k = c.nodeNumbers[(w + 1) % c.nodeNumbers.length]!;
      const name = `probe/${size}-${writers}-${w}.log`;
      const client = new HydfsTestClient(c, `probe-${size}-${writers}-${w}`);
      await client.write(k, "create", name, "");
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await client.write(k, "append", name, body);
        samples.push(performance.now() - t0);
      }
    }),
  );
  return samples;
}

/** An operator process as a worker runs it: time of a batch, and of the snapshot asked after it. */
async function operatorProbe(
  dir: string,
  op: string,
  args: string[],
  lines: string,
  count: number,
  n: number,
): Promise<{ batch: number[]; snapshot: number[] }> {
  const exe = join(REPO_ROOT, "dist", "ops", op);
  const cmd = existsSync(exe) ? [exe, ...args] : [process.execPath, join(REPO_ROOT, "ops", "main.ts"), op, ...args];
  const proc = new OperatorProcess(cmd, join(dir, `probe-${op}.log`), dir, undefined, "tsv");
  const batch: number[] = [];
  const snapshot: number[] = [];
  try {
    for (let i = 1; i <= n + WARMUP_BATCHES; i++) {
      const t0 = performance.now();
      const answers = await proc.processLines(lines, count);
      const t1 = performance.now();
      await proc.snapshot(i, 10_000);
      const t2 = performance.now();
      if (answers.length !== count) throw new Error(`${op}: ${answers.length} answers to ${count} inputs`);
      if (i > WARMUP_BATCHES) {
        batch.push(t1 - t0);
        snapshot.push(t2 - t1);
      }
    }
  } finally {
    proc.kill();
  }
  return { batch, snapshot };
}

/** Mean record size of App 1's stage `stage` log in the first exactly-once App 1 run, else `fallback`. */
export function recordSize(rows: readonly EoRow[], stage: number, fallback: number): number {
  const st = rows.find((r) => r.app === "App 1" && r.eo && r.logs)?.logs?.[stage];
  return st && st.records > 0 ? Math.round(st.bytes / st.records) : fallback;
}

/** One batch of App 1 stage-`stage` inputs in the operator protocol, from line n0 on. */
export function batchLines(n0: number, stage: 0 | 1): string {
  let s = "";
  for (let n = n0; n < n0 + DEFAULT_RAINSTORM.batch_size; n++) {
    const line = genLine(n);
    s += stage === 0 ? tupleLine(`eo-input.csv:${n}`, `eo-input.csv:${n}`, line) : tupleLine(`eo-input.csv:${n}>`, csvField(line, APP1.col) ?? "", line);
  }
  return s;
}

/** The probes; rows are added to `into` as they finish. `eoRows`: 5a's rows, for the record sizes. */
export async function run(ctx: BenchCtx, c: LocalCluster, dir: string, eoRows: readonly EoRow[], into: ProbeRow[]): Promise<void> {
  const appends = probeAppends(ctx.opts.quick);
  // Record sizes as the exactly-once runs logged them (their mean per stage), else typical values.
  for (const [stage, size] of [
    [0, recordSize(eoRows, 0, 64 * 1024)],
    [1, recordSize(eoRows, 1, 16 * 1024)],
  ] as const) {
    for (const writers of [1, 6]) {
      const per = writers === 1 ? appends : Math.ceil(appends / 2);
      ctx.log(`probe: ${writers} writer(s) x ${per} sequential HyDFS appends of ${int(size)} B (App 1 stage-${stage} mean record)`);
      into.push({
        what: `HyDFS append of ${int(size)} B (App 1 stage-${stage} mean log record), ${writers === 1 ? "1 writer through node 2" : `${writers} writers at once through nodes 2,3,4,5,1,2`}, ${per} each`,
        samples: await appendProbe(c, size, writers, per),
      });
    }
  }
  // Operator round trips on an otherwise idle machine (the daemons are up but no job runs).
  const b = DEFAULT_RAINSTORM.batch_size;
  const batches = probeBatches(ctx.opts.quick);
  for (const [op, args, stage] of [
    ["grep-wrapper", [APP1.pattern, String(APP1.col)], 0],
    ["aggregate-wrapper", [], 1],
  ] as const) {
    ctx.log(`probe: ${op}: ${batches} batches of ${b} inputs, each followed by a snapshot`);
    const p = await operatorProbe(dir, op, [...args], batchLines(2, stage), b, batches);
    const name = [op, ...args].join(" ");
    into.push({ what: `\`${name}\`: answers to a batch of ${b} App 1 stage-${stage} inputs (operator pipe round trip)`, samples: p.batch });
    into.push({ what: `\`${name}\`: snapshot round trip right after it`, samples: p.snapshot });
  }
}

/** The Markdown of section 5d. */
export function report(rows: readonly ProbeRow[]): string {
  return [
    "### 5d. Microbenchmarks for the diagnosis",
    "",
    mdTable(
      ["what", "n", "p50", "p90", "p99", "max"],
      rows.map((p) => [
        p.what,
        String(p.samples.length),
        fmtMs(percentile(p.samples, 50), 2),
        fmtMs(percentile(p.samples, 90), 2),
        fmtMs(percentile(p.samples, 99), 2),
        fmtMs(percentile(p.samples, 100), 2),
      ]),
    ),
    "",
    "Measured after the jobs, on the same cluster with no job running. HyDFS appends: sequential appends through a coordinator (a task's log goes through its own node's hydfsd), " +
      "acknowledged at a quorum of 2 of 3 replicas, each replica writing a chunk file (fdatasync, rename, fsync of the directory) and a manifest line (fdatasync). " +
      "Operator: an operator process driven the way a worker drives it (OperatorProcess: one stdin write per batch, answers read from stdout), a snapshot asked once the batch is answered, " +
      "as handleExactlyOnce does (worker.ts).",
    "",
  ].join("\n");
}
