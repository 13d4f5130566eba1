#!/usr/bin/env bun
/**
 * Seeded chaos over the simulated RainStorm cluster (services/testing/rainstorm_sim.ts): hundreds
 * of runs of exactly-once App 1 with task kills, worker crashes, delay and batch/ack loss, each
 * checked against the golden dest. The same plan as the CI test (rainstorm_sim_test.ts), with
 * more seeds. With --leader-faults, each fault may also be a crash of the leader's node or its
 * pause past failure detection (a successor takes the job over; the old leader must step down),
 * and each run also checks that no task or operator of the job is left; the leader faults at each
 * step of a job are rainstorm_failover_sim_test.ts's.
 *
 *   bun scripts/bench/rainstorm_sim.ts [--seeds N] [--from S] [--lines L] [--leader-faults]
 *
 * Defaults: 300 seeds starting at 1, 600 lines of testdata/dataset1.csv. Prints one line per
 * failing seed (with how to replay it), then the totals: runs, faults fired, restarts, virtual
 * and wall time. Exits 1 if any seed failed.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chaosRun } from "../../services/testing/rainstorm_sim.ts";

const ROOT = resolve(import.meta.dir, "../..");

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}: expected a whole number, got ${JSON.stringify(process.argv[i + 1])}`);
  return n;
}

const seeds = flag("--seeds", 300);
const leaderFaults = process.argv.includes("--leader-faults");
const from = flag("--from", 1);
const lines = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8")
  .split("\n")
  .filter(Boolean)
  .slice(0, flag("--lines", 600));

const t0 = performance.now();
let failed = 0;
let faults = 0;
let restarts = 0;
let virtualMs = 0;
let leaderFaultsFired = 0;
for (let seed = from; seed < from + seeds; seed++) {
  const r = await chaosRun(seed, lines, { leaderFaults });
  faults += r.faults.length;
  leaderFaultsFired += r.faults.filter((f) => f.includes("leader")).length;
  restarts += r.restarts;
  virtualMs += r.virtualMs;
  if (r.problems.length > 0) {
    failed++;
    console.log(
      `seed ${seed} FAILED (${r.faults.join("; ")}): ${r.problems.join("; ")}\n  replay with RAINSTORM_SIM_SEED=${seed} bun test services/rainstorm/${leaderFaults ? "rainstorm_failover_sim_test.ts" : "rainstorm_sim_test.ts"} -t chaos`,
    );
  }
}
const wallMs = performance.now() - t0;
console.log(
  `${seeds} seeds (${from}..${from + seeds - 1}), ${lines.length} lines each${leaderFaults ? ", leader faults mixed in" : ""}: ${seeds - failed} ok, ${failed} failed; ` +
    `${faults} faults fired (${leaderFaultsFired} of the leader), ${restarts} task restarts; ${(virtualMs / 1000).toFixed(0)} s simulated in ${(wallMs / 1000).toFixed(1)} s (${(wallMs / seeds).toFixed(1)} ms per run)`,
);
process.exit(failed > 0 ? 1 : 0);
