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
import { LEADER_STEPS, type LeaderFaultResult, leaderFaultRun, type LeaderStep } from "../testing/rainstorm_sim.ts";

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
