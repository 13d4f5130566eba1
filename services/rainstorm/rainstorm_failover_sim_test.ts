/**
 * Leader failover on the simulated cluster (services/testing/rainstorm_sim.ts): every node runs a
 * worker and a leader seat; the leader's node crashes, or pauses past failure detection, at each
 * step of a job (leaderFaultRun, LEADER_STEPS), its successor claims the next term and takes the
 * job over, and the run follows the job to the new leader as ctl does. Exactly-once App 1 must end
 * with dest exactly golden and the stream counting up to the golden counts; at-least-once must lose
 * nothing; no task or operator of the job may be left; a paused leader must step down. Each run
 * takes milliseconds; a failing seed prints how to replay it.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chaosRun, LEADER_STEPS, type LeaderFaultResult, leaderFaultRun, type LeaderStep } from "../testing/rainstorm_sim.ts";

const ROOT = resolve(import.meta.dir, "../..");
/** The first 600 lines of the App 1 dataset, as in rainstorm_sim_test.ts. */
const LINES = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8")
  .split("\n")
  .filter(Boolean)
  .slice(0, 600);

/** RAINSTORM_SIM_SEED=<n> replays one seed of every step; RAINSTORM_SIM_SEEDS=<n> runs seeds 1..n per step (default 4). */
const ONE_SEED = process.env.RAINSTORM_SIM_SEED;
const SEEDS = ONE_SEED ? [Number(ONE_SEED)] : Array.from({ length: Number(process.env.RAINSTORM_SIM_SEEDS ?? 4) }, (_, i) => i + 1);

/** Every seed of `step`, and what went wrong, each with how to replay it. */
async function runSeeds(step: LeaderStep, exactlyOnce: boolean): Promise<{ results: LeaderFaultResult[]; failures: string[] }> {
  const results: LeaderFaultResult[] = [];
  const failures: string[] = [];
  for (const seed of SEEDS) {
    const r = await leaderFaultRun(seed, LINES, step, exactlyOnce);
    results.push(r);
    if (r.problems.length > 0)
      failures.push(
        `${step} seed ${seed} (${r.faults.join("; ")}; terms ${r.terms.join(",")}): ${r.problems.join("; ")}\n  replay with RAINSTORM_SIM_SEED=${seed} bun test ${import.meta.file} -t ${step}`,
      );
  }
  return { results, failures };
}

describe("leader failover, simulated: exactly-once App 1, dest exactly golden", () => {
  test.each([...LEADER_STEPS])("%s", async (step) => {
    const { results, failures } = await runSeeds(step, true);
    expect(failures).toEqual([]);
    for (const r of results) {
      // The fault fired, and the job ended under a later leader than the one it was submitted to.
      expect(r.faults.length).toBe(step === "two_crashes" ? 2 : 1);
      expect(r.terms.length).toBeGreaterThanOrEqual(2);
      expect(r.events.at(-1)).toBe("done");
    }
  });

  test("before_accept: the leader dies before any start is answered, so the submitter never heard `accepted`; the successor runs the job anyway", async () => {
    const { results } = await runSeeds("before_accept", true);
    for (const r of results)
      expect({ seed: r.seed, accepted: r.events.includes("accepted"), terms: r.terms }).toEqual({ seed: r.seed, accepted: false, terms: [1, 2] });
  });

  test("pause_starting: the old leader's start calls go out when it wakes and the workers refuse its term (it steps down)", async () => {
    const { results } = await runSeeds("pause_starting", true);
    for (const r of results) expect({ seed: r.seed, refused: r.staleRefusals > 0 }).toEqual({ seed: r.seed, refused: true });
  });

  test("two_crashes: the job is followed over three leaders", async () => {
    const { results } = await runSeeds("two_crashes", true);
    for (const r of results) expect({ seed: r.seed, terms: r.terms }).toEqual({ seed: r.seed, terms: [1, 2, 3] });
  });
});

describe("leader failover, simulated: at-least-once grep then echo loses nothing", () => {
  test.each(["while_starting", "mid", "settle", "pause", "two_crashes"] as const)("%s", async (step) => {
    const { failures } = await runSeeds(step, false);
    expect(failures).toEqual([]);
  });
});

/** RAINSTORM_SIM_SEED=<n> replays one seed; RAINSTORM_SIM_CHAOS_SEEDS=<n> runs seeds 1..n (default 12). */
const CHAOS_SEEDS = ONE_SEED ? [Number(ONE_SEED)] : Array.from({ length: Number(process.env.RAINSTORM_SIM_CHAOS_SEEDS ?? 12) }, (_, i) => i + 1);

test(`seeded chaos with leader faults: ${CHAOS_SEEDS.length} runs of exactly-once App 1 with leader crashes and pauses mixed among kills and worker crashes`, async () => {
  const failures: string[] = [];
  let leaderFaults = 0;
  for (const seed of CHAOS_SEEDS) {
    const r = await chaosRun(seed, LINES, { leaderFaults: true });
    leaderFaults += r.faults.filter((f) => f.includes("leader")).length;
    if (r.problems.length > 0) failures.push(`seed ${seed} (${r.faults.join("; ")}): ${r.problems.join("; ")}\n  replay with RAINSTORM_SIM_SEED=${seed}`);
  }
  expect(failures).toEqual([]);
  if (!ONE_SEED) expect(leaderFaults).toBeGreaterThanOrEqual(CHAOS_SEEDS.length / 2);
}, 60_000);

// Known failures of the chaos plan with leader faults (scripts/bench/rainstorm_sim.ts --leader-faults --seeds 300), not
// fixed yet, all with a pause of the leader's node: seeds 27, 54, 84, 99, 174, 185 (16, 93, 179, 257 and 289 pass since a
// node declared failed drops its tasks when it rejoins: worker.ts abandonAll). Dest is exact in every one; the streamed
// counts and done's tuples_out stop short. Seed 54: the paused node's aggregate task is restarted
// elsewhere; when the node resumes, its old incarnation handles the batches held during the pause (HyDFS's (client, seq)
// keeps dest exact) and acknowledges them, so the source ends; that incarnation's output notices wait on the resumed node
// (its seat elects itself until its memberd has rejoined) and the successor's settle before `done` asks only the alive
// workers: `done` comes first (25 lines never streamed). Also, a notice the woken stale leader took before it stepped
// down is never heard by its successor (11 lines).
test.todo("seeded chaos with leader faults: seeds 27, 54, 84, 99, 174, 185 (see the comment above)");
