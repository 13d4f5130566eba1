import { expect, test } from "bun:test";
import { seededRng } from "../shared/rng.ts";
import { CHAOS_FIRST_KILL_MS, CHAOS_KILL_WINDOW_MS, CHAOS_MAX_KILLS, chaosJobArgs, chaosTarget, drawChaosPlan } from "./chaos_plan.ts";

/** The draws the test and the benchmark each wrote inline before the plan had one home: a seed must keep naming the same kills. */
function inlineDraws(seed: number, runs: number) {
  const rng = seededRng(seed);
  return Array.from({ length: runs }, (): { atMs: number; stage: 0 | 1; pick: number }[] => {
    const kills = 1 + Math.floor(rng.next() * 2);
    return Array.from({ length: kills }, () => ({ atMs: 150 + rng.next() * 700, stage: rng.next() < 0.5 ? 0 : 1, pick: rng.next() }));
  });
}

test.each([4242, 1, 20261126])("seed %d: the plans are the draws the test and the benchmark made before", (seed) => {
  const rng = seededRng(seed);
  expect(Array.from({ length: 30 }, () => drawChaosPlan(rng))).toEqual(inlineDraws(seed, 30));
});

test("over many runs: 1..max kills, each inside the window, both stages hit", () => {
  const rng = seededRng(7);
  const plans = Array.from({ length: 500 }, () => drawChaosPlan(rng));
  const kills = plans.flat();
  expect(new Set(plans.map((p) => p.length))).toEqual(new Set(Array.from({ length: CHAOS_MAX_KILLS }, (_, i) => i + 1)));
  for (const k of kills) {
    expect(k.atMs).toBeGreaterThanOrEqual(CHAOS_FIRST_KILL_MS);
    expect(k.atMs).toBeLessThan(CHAOS_FIRST_KILL_MS + CHAOS_KILL_WINDOW_MS);
    expect(k.pick).toBeGreaterThanOrEqual(0);
    expect(k.pick).toBeLessThan(1);
  }
  expect(new Set(kills.map((k) => k.stage))).toEqual(new Set([0, 1]));
});

const TASKS = [
  { job: "j1", stage: 0, task: 0 },
  { job: "j1", stage: 1, task: 0 },
  { job: "j1", stage: 1, task: 1 },
  { job: "j1", stage: 1, task: 2 },
  { job: "j0", stage: 1, task: 9 },
];

test.each([
  { stage: 1 as const, pick: 0, want: 0 },
  { stage: 1 as const, pick: 0.34, want: 1 },
  { stage: 1 as const, pick: 0.999, want: 2 },
  { stage: 0 as const, pick: 0.9, want: 0 },
])("stage $stage pick $pick hits task $want of that job's stage", ({ stage, pick, want }) => {
  expect(chaosTarget(TASKS, "j1", { atMs: 200, stage, pick })).toEqual({ job: "j1", stage, task: want });
});

test("no task of the job in that stage (it has finished): no target", () => {
  expect(chaosTarget(TASKS, "j2", { atMs: 200, stage: 1, pick: 0.5 })).toBeUndefined();
  expect(chaosTarget([], "j1", { atMs: 200, stage: 0, pick: 0 })).toBeUndefined();
});

test("the job words: App 1 with exactly_once=true at 600 tuples/s, 3 tasks per stage", () => {
  expect(chaosJobArgs("in.csv", "out.txt")).toEqual(["2", "3", "-stage-config-map", "stage0 grep-wrapper SIGN_ 6 stage1 aggregate-wrapper", "in.csv", "out.txt", "true", "false", "600", "0", "0"]);
});
