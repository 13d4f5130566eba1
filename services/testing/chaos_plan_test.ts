import { expect, test } from "bun:test";
import { seededRng } from "../shared/rng.ts";
import {
  CHAOS_FIRST_KILL_FRACTION,
  CHAOS_KILL_WINDOW_FRACTION,
  CHAOS_MAX_KILLS,
  chaosJobArgs,
  chaosKillAfterOutputs,
  chaosTarget,
  drawChaosPlan,
} from "./chaos_plan.ts";

/**
 * The draws made before kills moved from timers to progress, mapped onto the output fraction: a
 * seed keeps naming the same tasks in the same order of draws.
 */
function earlierDraws(seed: number, runs: number) {
  const rng = seededRng(seed);
  return Array.from({ length: runs }, (): { afterFraction: number; stage: 0 | 1; pick: number }[] => {
    const kills = 1 + Math.floor(rng.next() * 2);
    const plan = Array.from({ length: kills }, () => ({
      afterFraction: 0.05 + rng.next() * 0.75,
      stage: rng.next() < 0.5 ? (0 as const) : (1 as const),
      pick: rng.next(),
    }));
    return plan.sort((a, b) => a.afterFraction - b.afterFraction);
  });
}

test.each([4242, 1, 20261126])("seed %d: the plans are the same draws as before, in firing order", (seed) => {
  const rng = seededRng(seed);
  const plans = Array.from({ length: 30 }, () => drawChaosPlan(rng));
  expect(plans).toEqual(earlierDraws(seed, 30));
  for (const p of plans) for (let i = 1; i < p.length; i++) expect(p[i]!.afterFraction).toBeGreaterThanOrEqual(p[i - 1]!.afterFraction);
});

test.each([
  [0.05, 100, 5],
  [0.5, 101, 50],
  [0.01, 10, 1], // never before the first output
  [0.79, 0, 1],
])("a kill at fraction %d of %d expected outputs fires after %d", (afterFraction, expected, want) => {
  expect(chaosKillAfterOutputs({ afterFraction, stage: 0, pick: 0 }, expected)).toBe(want);
});

test("over many runs: 1..max kills, each inside the window, both stages hit", () => {
  const rng = seededRng(7);
  const plans = Array.from({ length: 500 }, () => drawChaosPlan(rng));
  const kills = plans.flat();
  expect(new Set(plans.map((p) => p.length))).toEqual(new Set(Array.from({ length: CHAOS_MAX_KILLS }, (_, i) => i + 1)));
  for (const k of kills) {
    expect(k.afterFraction).toBeGreaterThanOrEqual(CHAOS_FIRST_KILL_FRACTION);
    expect(k.afterFraction).toBeLessThan(CHAOS_FIRST_KILL_FRACTION + CHAOS_KILL_WINDOW_FRACTION);
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
  expect(chaosTarget(TASKS, "j1", { afterFraction: 0.2, stage, pick })).toEqual({ job: "j1", stage, task: want });
});

test("no task of the job in that stage (it has finished): no target", () => {
  expect(chaosTarget(TASKS, "j2", { afterFraction: 0.2, stage: 1, pick: 0.5 })).toBeUndefined();
  expect(chaosTarget([], "j1", { afterFraction: 0.2, stage: 0, pick: 0 })).toBeUndefined();
});

test("the job words: App 1 with exactly_once=true at 600 tuples/s, 3 tasks per stage", () => {
  expect(chaosJobArgs("in.csv", "out.txt")).toEqual([
    "2",
    "3",
    "-stage-config-map",
    "stage0 grep-wrapper SIGN_ 6 stage1 aggregate-wrapper",
    "in.csv",
    "out.txt",
    "true",
    "false",
    "600",
    "0",
    "0",
  ]);
});
