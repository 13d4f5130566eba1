#!/usr/bin/env bun
/**
 * The HyDFS chaos run (services/testing/hydfs_chaos.ts) over many seeds: random crashes,
 * restarts, partitions and loss on a simulated 5-node cluster while clients create, append and
 * delete; after healing, every guarantee is checked. Prints the pass count, the failing seeds
 * and the time. With the default --ops a failing seed replays in the test too
 * (HYDFS_SIM_SEED=<n> bun test services/hydfs/hydfs_sim_test.ts).
 *
 *   bun scripts/bench/hydfs_sim.ts [--seeds N] [--from S] [--ops N]
 *
 * Defaults: 300 seeds from 1, 20 operations per client (as the CI test, which runs fewer seeds).
 */
import { runChaos } from "../../services/testing/hydfs_chaos.ts";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} ${process.argv[i + 1]}: expected a non-negative integer`);
  return v;
}

const seeds = flag("--seeds", 300);
const from = flag("--from", 1);
const ops = flag("--ops", 20);

const t0 = performance.now();
let passed = 0;
let acked = 0;
let virtualMs = 0;
let crashes = 0;
let partitions = 0;
const failed: number[] = [];
for (let seed = from; seed < from + seeds; seed++) {
  const r = await runChaos({ seed, opsPerClient: ops });
  acked += r.acked;
  virtualMs += r.virtualMs;
  crashes += r.crashes;
  partitions += r.partitions;
  if (r.violations.length === 0) passed++;
  else {
    failed.push(seed);
    console.log(`seed ${seed}: ${r.violations.join("; ")}`);
  }
}
const wallMs = performance.now() - t0;
console.log(`hydfs chaos: ${passed}/${seeds} seeds passed in ${(wallMs / 1000).toFixed(1)} s (${(wallMs / seeds).toFixed(0)} ms per seed)`);
console.log(`  ${acked} acknowledged appends, ${crashes} crashes, ${partitions} partitions, ${(virtualMs / 1000).toFixed(0)} s of simulated time`);
if (failed.length > 0) {
  console.log(`  failing seeds: ${failed.join(", ")} (replay one with: bun scripts/bench/hydfs_sim.ts --from <n> --seeds 1 --ops ${ops})`);
  process.exitCode = 1;
}
