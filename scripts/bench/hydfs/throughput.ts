/**
 * Section 1, create and get throughput of generated files against `cp` of the same file on the
 * same disk; on the largest file's last repetition also hydfsd's peak RSS (section 5, rss.ts).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { procStatus, resetPeak } from "../procs.ts";
import { mdTable, median } from "../stats.ts";
import { fmtMBs, fmtRatio, generateFile, type HydfsCtx, MiB, NODES, owners, run as runCmd, sha256File, sizeLabel, syncAll } from "./common.ts";
import type { RssRow } from "./rss.ts";

export interface ThroughputRow {
  bytes: number;
  reps: number;
  cpMs: number[];
  cpSyncMs: number[];
  createMs: number[];
  getMs: number[];
  coordinators: string;
}

/** Timed `cp` of `src` (cp itself does not sync; the fsync is timed after it): [cp ms, cp + sync ms]. */
async function cpBaseline(src: string, dst: string): Promise<[number, number]> {
  await syncAll();
  const t0 = performance.now();
  await runCmd(["cp", src, dst], 600_000);
  const t1 = performance.now();
  await runCmd(["sync", dst], 600_000);
  const t2 = performance.now();
  rmSync(dst, { force: true });
  return [t1 - t0, t2 - t0];
}

/** GET `name` through node `via` into the local file `dst`; returns the bytes received. */
async function getToFile(client: HydfsTestClient, via: number, name: string, dst: string): Promise<number> {
  const resp = await client.request(via, "GET", `/get?name=${encodeURIComponent(name)}`);
  if (!resp.ok) throw new Error(`get ${name}: ${resp.status} ${await resp.text()}`);
  const writer = Bun.file(dst).writer();
  let got = 0;
  for await (const piece of resp.body!) {
    writer.write(piece);
    got += piece.length;
  }
  await writer.end();
  return got;
}

/** RSS before and peak RSS during one transfer of hydfsd on `nodes` (only when `watch`: the largest size's last repetition). */
function watchRss(c: LocalCluster, nodes: number[], watch: boolean, into: RssRow[]) {
  const hydfsPid = (k: number) => c.pid(k, "hydfsd")!;
  const before = new Map(nodes.map((k) => [k, procStatus(hydfsPid(k)).rss]));
  const resetOk = new Map(nodes.map((k) => [k, watch ? resetPeak(hydfsPid(k)) : false]));
  return (what: string, roleOf: (k: number) => string) => {
    if (!watch) return;
    for (const k of nodes)
      into.push({
        what,
        node: k,
        role: roleOf(k),
        beforeMb: before.get(k)! / 1024,
        peakMb: (procStatus(hydfsPid(k)).hwm ?? NaN) / 1024,
        reset: resetOk.get(k)!,
      });
  };
}

/** One repetition: generate, cp, create through a non-replica, get through the other, verify. */
async function oneRep(
  ctx: HydfsCtx,
  c: LocalCluster,
  scratch: string,
  row: ThroughputRow,
  rep: number,
  salt: number,
  watch: boolean,
  rss: RssRow[],
): Promise<string> {
  const small = new HydfsTestClient(c, "bench-tp");
  const big = new HydfsTestClient(c, "bench-tp", 900_000);
  const { bytes } = row;
  const label = `${sizeLabel(bytes)} #${rep + 1}`;
  const src = join(scratch, `src-${bytes}-${rep}.bin`);
  ctx.log(`throughput ${label}: generating ${src}`);
  const want = generateFile(src, bytes, salt);
  const [cpMs, cpSyncMs] = await cpBaseline(src, join(scratch, `cp-${bytes}-${rep}.bin`));
  row.cpMs.push(cpMs);
  row.cpSyncMs.push(cpSyncMs);

  // HyDFS create through a non-replica, get through the other non-replica.
  const name = `tp-${bytes}-${rep}`;
  const reps3 = await owners(small, c, 1, name);
  const others = Array.from({ length: NODES }, (_, i) => i + 1).filter((k) => !reps3.includes(k));
  const createVia = others[0]!;
  const getVia = others[1] ?? others[0]!;
  const recordCreateRss = watchRss(c, [createVia, ...reps3], watch, rss);
  await syncAll();
  const t3 = performance.now();
  const res = await big.write(createVia, "create", name, Bun.file(src));
  const t4 = performance.now();
  if (res.size !== bytes) throw new Error(`create ${name}: acknowledged ${res.size} bytes, sent ${bytes}`);
  row.createMs.push(t4 - t3);
  recordCreateRss(`create ${sizeLabel(bytes)}`, (k) => (k === createVia ? "coordinator (not a replica)" : `replica #${reps3.indexOf(k) + 1}`));
  ctx.log(`throughput ${label}: cp ${fmtMBs(bytes, cpMs)} MB/s, create ${fmtMBs(bytes, t4 - t3)} MB/s`);

  const getDst = join(scratch, `get-${bytes}-${rep}.bin`);
  // Chunks are read from the coordinator's own store, else from the replicas in ring order:
  // with a non-replica coordinator the first replica serves every chunk.
  const recordGetRss = watchRss(c, [getVia, reps3[0]!], watch, rss);
  await syncAll();
  const t5 = performance.now();
  const got = await getToFile(big, getVia, name, getDst);
  const t6 = performance.now();
  row.getMs.push(t6 - t5);
  recordGetRss(`get ${sizeLabel(bytes)}`, (k) => (k === getVia ? "coordinator (not a replica)" : "replica #1 (serves the chunks)"));
  if (got !== bytes) throw new Error(`get ${name}: ${got} bytes, expected ${bytes}`);
  const have = await sha256File(getDst);
  if (have !== want) throw new Error(`get ${name}: content differs from what was created`);
  ctx.log(`throughput ${label}: get ${fmtMBs(bytes, t6 - t5)} MB/s (content verified)`);
  rmSync(getDst, { force: true });
  rmSync(src, { force: true });
  return `create via ${createVia}, get via ${getVia}, replicas ${reps3.join(",")}`;
}

/** Section 1 on cluster A; the RSS of section 5 is added to `rss` as it is measured (a failure keeps it, and loses the rows). */
export async function run(ctx: HydfsCtx, c: LocalCluster, scratch: string, rss: RssRow[]): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  const sizes = ctx.sizes;
  let salt = 1;
  const largest = Math.max(...sizes.map((s) => s.bytes));
  for (const { bytes, reps } of sizes) {
    const row: ThroughputRow = { bytes, reps, cpMs: [], cpSyncMs: [], createMs: [], getMs: [], coordinators: "" };
    const coordSet = new Set<string>();
    for (let rep = 0; rep < reps; rep++) coordSet.add(await oneRep(ctx, c, scratch, row, rep, salt++, bytes === largest && rep === reps - 1, rss));
    row.coordinators = [...coordSet].join("; ");
    rows.push(row);
  }
  return rows;
}

/** Targets (issue 16): create >= 0.15 x (cp + fsync), get >= 0.4 x cp, and a 1 GB create above the Go original's rate. */
export const CREATE_VS_CP_FSYNC_TARGET = 0.15;
export const GET_VS_CP_TARGET = 0.4;
/** The Go original's create of 1 GB, MiB/s (MB here = MiB). */
export const GO_CREATE_1GB_MBS = 123;

/** "min-max" MB/s of the repetitions (one figure when there is one rep). */
function spread(bytes: number, ms: readonly number[]): string {
  if (ms.length <= 1) return fmtMBs(bytes, ms[0]);
  return `${fmtMBs(bytes, Math.max(...ms))}-${fmtMBs(bytes, Math.min(...ms))}`;
}

/** The cells of a size's row: MB/s of cp, cp+fsync, create and get (medians, spread) and the targets. */
function ratesCells(r: ThroughputRow): string[] {
  const cp = median(r.cpMs)!;
  const cpSync = median(r.cpSyncMs)!;
  const cr = median(r.createMs)!;
  const gt = median(r.getMs)!;
  const crRatio = cpSync / cr;
  const gtRatio = cp / gt;
  const crMBs = r.bytes / MiB / (cr / 1000);
  const createPass = crRatio >= CREATE_VS_CP_FSYNC_TARGET && (r.bytes < 1024 * MiB || crMBs > GO_CREATE_1GB_MBS);
  return [
    sizeLabel(r.bytes),
    String(r.reps),
    fmtMBs(r.bytes, cp),
    fmtMBs(r.bytes, cpSync),
    `${fmtMBs(r.bytes, cr)} (${spread(r.bytes, r.createMs)})`,
    fmtRatio(crRatio),
    createPass ? "PASS" : "FAIL",
    `${fmtMBs(r.bytes, gt)} (${spread(r.bytes, r.getMs)})`,
    fmtRatio(gtRatio),
    gtRatio >= GET_VS_CP_TARGET ? "PASS" : "FAIL",
  ];
}

/** The Markdown of section 1. */
export function report(rows: readonly ThroughputRow[]): string {
  return [
    "## 1. Throughput: create and get vs cp (MB/s, median of reps, min-max in brackets)",
    "",
    "Generated incompressible file in the page cache. `cp`: `cp src dst` alone (cp does not sync); `cp+fsync`: the same cp plus `sync dst`, timed in the same repetition. " +
      "create: POST /create streamed from Bun.file through a coordinator that is not a replica (it pushes each 4 MiB chunk to 3 replicas; each makes it durable before the create is acknowledged). " +
      "get: GET /get through the other non-replica, chunks fetched from replica #1, written to a local file like `ctl get`; content verified by SHA-256 afterwards (untimed). " +
      `Global \`sync\` before each timed step. Targets: create >= ${CREATE_VS_CP_FSYNC_TARGET} x (cp+fsync) (3 replicas share one disk), and above ${GO_CREATE_1GB_MBS} MB/s (the Go original) at 1 GB; get >= ${GET_VS_CP_TARGET} x cp.`,
    "",
    mdTable(
      ["size", "reps", "cp", "cp+fsync", "create", "create / (cp+fsync)", "create target", "get", "get / cp", "get target"],
      rows.map(ratesCells),
    ),
    "",
    mdTable(
      ["size", "cp ms (each rep)", "cp+fsync ms (each rep)", "create ms (each rep)", "get ms (each rep)", "nodes"],
      rows.map((r) => [
        sizeLabel(r.bytes),
        r.cpMs.map((v) => v.toFixed(0)).join(", "),
        r.cpSyncMs.map((v) => v.toFixed(0)).join(", "),
        r.createMs.map((v) => v.toFixed(0)).join(", "),
        r.getMs.map((v) => v.toFixed(0)).join(", "),
        r.coordinators,
      ]),
    ),
    "",
  ].join("\n");
}
