/**
 * Section 2, append latency: small appends to one file by one client, acknowledged at quorum, with
 * the coordinator rotating over the nodes.
 */
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { fmtMs, mdTable, mean, percentile } from "../stats.ts";
import { type HydfsCtx, NODES, owners, randomBytes, sizeOf } from "./common.ts";

/** Appends before the timed ones. */
export const APPEND_WARMUP = 10;
export const APPEND_BYTES = 4096;
/** Timed appends. */
export const appendsFor = (quick: boolean): number => (quick ? 100 : 500);
/** Targets (issue 16): p99 and max of an append (ms). */
export const APPEND_P99_TARGET_MS = 10;
export const APPEND_MAX_TARGET_MS = 50;

export interface LatencyResult {
  all: number[];
  viaReplica: number[];
  viaOther: number[];
}

export async function run(ctx: HydfsCtx, c: LocalCluster): Promise<LatencyResult> {
  const appends = ctx.appends;
  const client = new HydfsTestClient(c, "bench-latency");
  const name = "latency.log";
  await client.write(1, "create", name, "");
  const reps3 = await owners(client, c, 1, name);
  const out: LatencyResult = { all: [], viaReplica: [], viaOther: [] };
  for (let i = 0; i < APPEND_WARMUP + appends; i++) {
    const k = (i % NODES) + 1;
    const body = randomBytes(APPEND_BYTES);
    const t0 = performance.now();
    await client.write(k, "append", name, body);
    const ms = performance.now() - t0;
    if (i < APPEND_WARMUP) continue;
    out.all.push(ms);
    (reps3.includes(k) ? out.viaReplica : out.viaOther).push(ms);
    if ((i - APPEND_WARMUP + 1) % 100 === 0) ctx.log(`append latency: ${i - APPEND_WARMUP + 1}/${appends}`);
  }
  const size = await sizeOf(client, 2, name);
  if (size !== (APPEND_WARMUP + appends) * APPEND_BYTES)
    throw new Error(`${name}: ${size} bytes after the appends, expected ${(APPEND_WARMUP + appends) * APPEND_BYTES}`);
  return out;
}

const latRow = (label: string, v: number[]) => [
  label,
  String(v.length),
  fmtMs(percentile(v, 50), 2),
  fmtMs(percentile(v, 90), 2),
  fmtMs(percentile(v, 99), 2),
  fmtMs(v.length ? Math.max(...v) : undefined, 2),
  fmtMs(mean(v), 2),
];

const verdict = (ms: number | undefined, target: number) => ((ms ?? Infinity) <= target ? "PASS" : "FAIL");

/** The Markdown of section 2 (`lat` undefined: not measured). */
export function report(lat: LatencyResult | undefined, appends: number): string {
  return [
    `## 2. Append latency: ${APPEND_BYTES / 1024} KiB appends, acknowledged at quorum`,
    "",
    `${appends} sequential appends to one file by one client (after ${APPEND_WARMUP} warm-up appends), coordinator rotating over nodes 1-${NODES}; time from request to acknowledgement at the client. p99 is nearest-rank. Targets: p99 <= ${APPEND_P99_TARGET_MS} ms, max <= ${APPEND_MAX_TARGET_MS} ms.`,
    "",
    mdTable(
      ["coordinator", "appends", "p50", "p90", "p99", "max", "mean"],
      lat ? [latRow("all", lat.all), latRow("a replica of the file", lat.viaReplica), latRow("not a replica", lat.viaOther)] : [],
    ),
    "",
    lat ? `Target p99 <= ${APPEND_P99_TARGET_MS} ms: ${verdict(percentile(lat.all, 99), APPEND_P99_TARGET_MS)}; max <= ${APPEND_MAX_TARGET_MS} ms: ${verdict(lat.all.length ? Math.max(...lat.all) : undefined, APPEND_MAX_TARGET_MS)}.` : "Targets: not measured.",
    "",
  ].join("\n");
}
