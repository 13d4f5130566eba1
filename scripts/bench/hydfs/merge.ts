/**
 * Section 4, merge after concurrent appenders: each appender through its own coordinator, then a
 * first POST /merge and at once a second one.
 */
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { fmtMs, mdTable } from "../stats.ts";
import { fmtRatio, type HydfsCtx, NODES, randomBytes, sizeOf } from "./common.ts";

export const mergeAppendersFor = (quick: boolean): number[] => (quick ? [1, 2] : [1, 2, 5, 10]);
export const MERGE_SIZES = [4 * 1024, 32 * 1024];
export const MERGE_APPENDS_EACH = 20;
/** Target: second merge <= this x the first. */
export const SECOND_MERGE_TARGET = 0.1;

export interface MergeRow {
  appenders: number;
  bytes: number;
  appendPhaseMs: number;
  firstMs: number;
  firstUpdated: number;
  secondMs: number;
  secondUpdated: number;
}

/** `n` appenders append MERGE_APPENDS_EACH records of `bytes` to one new file, then two merges. */
async function oneCase(ctx: HydfsCtx, c: LocalCluster, admin: HydfsTestClient, n: number, bytes: number): Promise<MergeRow> {
  const name = `merge-${n}-${bytes}`;
  await admin.write(1, "create", name, "");
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, j) => {
      const client = new HydfsTestClient(c, `bench-merge-${n}-${bytes}-${j}`, 60_000);
      const via = (j % NODES) + 1;
      for (let i = 0; i < MERGE_APPENDS_EACH; i++) await client.write(via, "append", name, randomBytes(bytes));
    }),
  );
  const t1 = performance.now();
  const first = await admin.merge(1, name);
  const t2 = performance.now();
  const second = await admin.merge(1, name);
  const t3 = performance.now();
  ctx.log(
    `merge ${n} appenders x ${bytes / 1024} KiB: appends ${fmtMs(t1 - t0, 0)}, merge ${fmtMs(t2 - t1)} (updated ${first.updated.length}), again ${fmtMs(t3 - t2)}`,
  );
  const size = await sizeOf(admin, 3, name);
  if (size !== n * MERGE_APPENDS_EACH * bytes) throw new Error(`${name}: ${size} bytes, expected ${n * MERGE_APPENDS_EACH * bytes}`);
  return {
    appenders: n,
    bytes,
    appendPhaseMs: t1 - t0,
    firstMs: t2 - t1,
    firstUpdated: first.updated.length,
    secondMs: t3 - t2,
    secondUpdated: second.updated.length,
  };
}

/** Section 4 on cluster A: every append size x appender count. */
export async function run(ctx: HydfsCtx, c: LocalCluster): Promise<MergeRow[]> {
  const rows: MergeRow[] = [];
  const admin = new HydfsTestClient(c, "bench-merge-admin", 120_000);
  for (const bytes of MERGE_SIZES) for (const n of mergeAppendersFor(ctx.quick)) rows.push(await oneCase(ctx, c, admin, n, bytes));
  return rows;
}

function mergeCells(m: MergeRow): string[] {
  const total = m.appenders * MERGE_APPENDS_EACH;
  const ratio = m.secondMs / m.firstMs;
  return [
    String(m.appenders),
    `${m.bytes / 1024} KiB`,
    String(total),
    fmtMs(m.appendPhaseMs, 0),
    (total / (m.appendPhaseMs / 1000)).toFixed(0),
    fmtMs(m.firstMs, 2),
    String(m.firstUpdated),
    fmtMs(m.secondMs, 2),
    String(m.secondUpdated),
    fmtRatio(ratio),
    ratio <= SECOND_MERGE_TARGET ? "PASS" : "FAIL",
  ];
}

/** The Markdown of section 4. */
export function report(rows: readonly MergeRow[]): string {
  return [
    `## 4. Merge after concurrent appenders (${MERGE_APPENDS_EACH} appends each, appender j through node (j mod ${NODES}) + 1)`,
    "",
    "First POST /merge (through node 1) right after the last append is acknowledged, then a second one at once. 'updated' = replicas the merge had to rewrite. Target: second <= 0.1 x first.",
    "",
    mdTable(
      ["appenders", "append size", "appends", "append phase", "appends/s", "first merge", "updated", "second merge", "updated", "second / first", "target"],
      rows.map(mergeCells),
    ),
    "",
  ].join("\n");
}
