/**
 * What every section's run gets: the options, the progress log, temp dirs, and the run's problem
 * list (a mismatch or an error makes the exit code 1 and is listed under Problems in the report).
 */
import { join } from "node:path";
import { LocalCluster } from "../../../services/testing/cluster.ts";
import type { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { fmtSec } from "../stats.ts";
import type { Options } from "./options.ts";

/** Mismatches (a job's output differs from its reference) and errors (a section could not finish) of one run. */
export class Problems {
  readonly mismatches: string[] = [];
  readonly errors: string[] = [];
  constructor(private readonly log: (msg: string) => void) {}

  /** Record a mismatch; returns the text the tables show in its check column. */
  mismatch(what: string): string {
    this.mismatches.push(what);
    this.log(`!!!!!!!! MISMATCH: ${what}`);
    return `**MISMATCH**: ${what}`;
  }

  /** A section that could not finish. */
  error(msg: string): void {
    this.errors.push(msg);
    this.log(`ERROR ${msg}`);
  }
}

export interface BenchCtx {
  opts: Options;
  log: (msg: string) => void;
  newTempDir: (prefix: string) => string;
  removeTempDir: (dir: string) => void;
  problems: Problems;
  /** CPUs of the machine (the utilization column divides by it). */
  cpus: number;
}

/** Run `f` on a cluster; an error is recorded; the cluster is always torn down and `dir` removed. */
export async function onCluster(ctx: BenchCtx, cluster: string, c: LocalCluster, dir: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    ctx.problems.error(`${cluster}: ${(err as Error).message}`);
  } finally {
    ctx.log(`${cluster}: tearing down`);
    await c.down(true);
    ctx.removeTempDir(dir);
  }
}

/** A fresh cluster of the benchmark in its own temp dir (`big`: HyDFS accepts bodies up to 2 GiB, for the inputs). */
export function benchCluster(ctx: BenchCtx, prefix: string, subnet: string, big: boolean): { dir: string; c: LocalCluster } {
  const dir = ctx.newTempDir(prefix);
  const extra = big ? { extra: { hydfs: { max_body_bytes: 2 * 1024 * 1024 * 1024 } } } : {};
  return { dir, c: new LocalCluster({ dir: join(dir, "cluster"), subnet, killOnExit: true, ...extra }) };
}

/** A HyDFS create of an input (section 1 lists every section's). */
export interface UploadRow {
  cluster: string;
  what: string;
  bytes: number;
  ms: number;
}

/** Store the local file `path` in HyDFS as `name` through node 1 and time it. */
export async function uploadInput(
  ctx: BenchCtx,
  hydfs: HydfsTestClient,
  cluster: string,
  what: string,
  name: string,
  path: string,
  bytes: number,
): Promise<UploadRow> {
  ctx.log(`${cluster}: storing ${what} (${(bytes / 1024 / 1024).toFixed(1)} MiB) in HyDFS as ${name}`);
  const t0 = performance.now();
  const res = await hydfs.write(1, "create", name, Bun.file(path));
  const ms = performance.now() - t0;
  if (res.size !== undefined && res.size !== bytes) throw new Error(`create ${name}: acknowledged ${res.size} bytes, sent ${bytes}`);
  ctx.log(`${cluster}: stored ${name} in ${fmtSec(ms)} (${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(1)} MiB/s)`);
  return { cluster, what, bytes, ms };
}
