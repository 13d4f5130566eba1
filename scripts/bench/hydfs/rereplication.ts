/**
 * Section 3, re-replication after a SIGKILL: files on a fresh cluster, the non-introducer holding
 * most of them killed, every survivor polled until the victim leaves every ring and every file is
 * on its 3 new owners (and the surplus copies are gone).
 */
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import { waitFor } from "../../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { fmtSec as fmtS, mdTable } from "../stats.ts";
import { fmtMBs, type HydfsCtx, MiB, metricSum, NODES, owners, randomBytes, sizeLabel } from "./common.ts";

export const rrFilesFor = (quick: boolean): number => (quick ? 20 : 100);
export const RR_FILE_BYTES = 1 * MiB;
export const RR_POLL_MS = 100;
/** Deadline for the victim to leave every ring and every file to be back on 3 replicas. */
const RR_DEADLINE_MS = 60_000;
/** After convergence, how long to keep polling for GC of surplus copies (exactly 3 holders). */
const RR_GC_DEADLINE_MS = 20_000;
/** Target: every file back on 3 replicas within this of the crash. */
export const RR_TARGET_MS = 10_000;
const ALL_NODES = Array.from({ length: NODES }, (_, i) => i + 1);

export interface RereplicationResult {
  files: number;
  victim: number;
  victimFiles: number;
  firstDetectMs?: number;
  allDetectMs?: number;
  convergedMs?: number;
  gcMs?: number;
  movedBytes?: number;
  note: string;
}

/** Create the files, spread over the coordinators, and wait for the background merges of the fresh (dirty) files to settle. */
async function createFiles(ctx: HydfsCtx, client: HydfsTestClient, names: string[]): Promise<void> {
  for (const [i, name] of names.entries()) await client.write((i % NODES) + 1, "create", name, randomBytes(RR_FILE_BYTES));
  ctx.log(`re-replication: created ${names.length} files of ${sizeLabel(RR_FILE_BYTES)}`);
  let last = -1;
  await waitFor(
    async () => {
      const now = await metricSum(client, ALL_NODES, "hydfs_merges_total");
      const quiet = now === last;
      last = now;
      return quiet;
    },
    30_000,
    "background merges to settle",
    2500,
  );
}

/** The node that holds the most files, with how many (the first such in node order). */
export function busiest(held: ReadonlyMap<number, number>): [number, number] {
  return [...held.entries()].sort((a, b) => b[1] - a[1])[0]!;
}

/** Whether every file is on all of its owners (`back`), and also on no other node (`exact`). */
export function placement(
  names: readonly string[],
  want: ReadonlyMap<string, number[]>,
  holders: ReadonlyMap<string, number[]>,
): { back: boolean; exact: boolean } {
  const back = names.every((n) => want.get(n)!.every((k) => holders.get(n)!.includes(k)));
  return { back, exact: back && names.every((n) => holders.get(n)!.length === 3) };
}

/** Which survivors list each file in their store; undefined when a node did not answer. */
async function holdersOf(client: HydfsTestClient, survivors: number[], names: string[]): Promise<Map<string, number[]> | undefined> {
  const holders = new Map<string, number[]>(names.map((n) => [n, []]));
  let ok = true;
  for (const k of survivors) {
    try {
      for (const f of await client.liststore(k)) holders.get(f)?.push(k);
    } catch {
      ok = false;
    }
  }
  return ok ? holders : undefined;
}

/** Section 3 on the fresh cluster B. */
export async function run(ctx: HydfsCtx, c: LocalCluster): Promise<RereplicationResult> {
  const client = new HydfsTestClient(c, "bench-rr", 30_000);
  const names = Array.from({ length: rrFilesFor(ctx.quick) }, (_, i) => `rr-${String(i).padStart(3, "0")}`);
  await createFiles(ctx, client, names);
  const held = new Map<number, number>();
  for (let k = 2; k <= NODES; k++) held.set(k, (await client.liststore(k)).filter((f) => f.startsWith("rr-")).length);
  const [victim, victimFiles] = busiest(held);
  const victimHost = c.host(victim);
  const survivors = ALL_NODES.filter((k) => k !== victim);
  const movedBefore = await metricSum(client, survivors, "hydfs_rereplicated_bytes_total");
  const result: RereplicationResult = { files: names.length, victim, victimFiles, note: "" };
  ctx.log(`re-replication: SIGKILL node ${victim} (memberd + hydfsd), which holds ${result.victimFiles} of the files`);

  c.kill(victim);
  const tKill = performance.now();
  const detected = new Map<number, number>();
  let want: Map<string, number[]> | undefined;
  const deadline = tKill + RR_DEADLINE_MS;
  const quick = new HydfsTestClient(c, "bench-rr-poll", 2_000);
  while (performance.now() < deadline) {
    const iter = performance.now();
    for (const k of survivors) {
      if (detected.has(k)) continue;
      try {
        const { members } = await quick.listMemIds(k);
        if (!members.some((m) => m.host === victimHost)) detected.set(k, performance.now() - tKill);
      } catch {
        // a busy node answers next time
      }
    }
    if (detected.size === survivors.length) {
      result.firstDetectMs ??= Math.min(...detected.values());
      result.allDetectMs ??= Math.max(...detected.values());
      if (!want) {
        want = new Map();
        for (const name of names) want.set(name, await owners(quick, c, survivors[0]!, name));
      }
      const holders = await holdersOf(quick, survivors, names);
      if (holders) {
        const { back, exact } = placement(names, want, holders);
        if (back && result.convergedMs === undefined) {
          result.convergedMs = performance.now() - tKill;
          result.movedBytes = (await metricSum(client, survivors, "hydfs_rereplicated_bytes_total")) - movedBefore;
          ctx.log(`re-replication: every file on its 3 new owners ${fmtS(result.convergedMs)} after the kill`);
        }
        if (exact) {
          result.gcMs = performance.now() - tKill;
          break;
        }
      }
      if (result.convergedMs !== undefined && performance.now() - tKill > result.convergedMs + RR_GC_DEADLINE_MS) {
        result.note = `surplus copies not all dropped within ${RR_GC_DEADLINE_MS / 1000} s of convergence`;
        break;
      }
    }
    const spent = performance.now() - iter;
    if (spent < RR_POLL_MS) await Bun.sleep(RR_POLL_MS - spent);
  }
  if (result.allDetectMs === undefined) result.note = `the victim was still on some ring ${RR_DEADLINE_MS / 1000} s after the kill`;
  else if (result.convergedMs === undefined) result.note = `files not back on 3 replicas within ${RR_DEADLINE_MS / 1000} s of the kill`;
  return result;
}

/** The Markdown of section 3 (`rr` undefined: not measured). */
export function report(rr: RereplicationResult | undefined, files: number): string {
  return [
    `## 3. Re-replication after a SIGKILL (fresh 5-node cluster, ${files} files of ${sizeLabel(RR_FILE_BYTES)})`,
    "",
    `The non-introducer holding most files is killed (memberd + hydfsd). Every survivor's /list_mem_ids and /liststore polled every ${RR_POLL_MS} ms (each poll round itself takes a few ms). ` +
      "'Back on 3' = every file listed by all 3 of its owners on the new ring; 'GC done' = additionally no surplus copy left. " +
      "Bytes moved: increase of hydfs_rereplicated_bytes_total summed over the survivors between the kill and 'back on 3'; MB/s over detection (all rings) -> back on 3. Target: back on 3 <= 10 s after the crash.",
    "",
    mdTable(
      [
        "victim",
        "its files",
        "kill -> first ring drops it",
        "kill -> all rings",
        "kill -> back on 3",
        "detection -> back on 3",
        "kill -> GC done",
        "bytes moved",
        "MB/s moved",
        "target (<= 10 s)",
      ],
      rr ? [rrCells(rr)] : [],
    ),
    "",
    ...(rr?.note ? [`Note: ${rr.note}.`, ""] : []),
  ].join("\n");
}

function rrCells(rr: RereplicationResult): string[] {
  const detectToBack = rr.convergedMs !== undefined && rr.allDetectMs !== undefined ? rr.convergedMs - rr.allDetectMs : undefined;
  return [
    `node ${rr.victim}`,
    `${rr.victimFiles} (${sizeLabel(rr.victimFiles * RR_FILE_BYTES)})`,
    fmtS(rr.firstDetectMs),
    fmtS(rr.allDetectMs),
    fmtS(rr.convergedMs),
    fmtS(detectToBack),
    fmtS(rr.gcMs),
    rr.movedBytes !== undefined ? `${(rr.movedBytes / MiB).toFixed(1)} MB` : "n/a",
    rr.movedBytes !== undefined && detectToBack !== undefined ? fmtMBs(rr.movedBytes, detectToBack) : "n/a",
    rr.convergedMs !== undefined && rr.convergedMs <= RR_TARGET_MS ? "PASS" : "FAIL",
  ];
}
