import { expect, test } from "bun:test";
import { partitionOf } from "../../../services/rainstorm/plan.ts";
import { row } from "./fixtures_test_util.ts";
import { killCandidates, type KillRun, type KillTrial, outputTimes, report, restartedTrial, resumeTimes } from "./kill_recovery.ts";

test.each([
  { stage: 0 as const, shares: [0, 0, 0], want: [0, 1, 2] },
  { stage: 1 as const, shares: [10, 60, 30], want: [1, 2, 0] },
  { stage: 1 as const, shares: [95, 0, 5], want: [0] },
])("kill candidates of stage $stage with stage-1 shares $shares: $want", ({ stage, shares, want }) => {
  expect(killCandidates(stage, shares)).toEqual([...want]);
});

const trial = (over: Partial<KillTrial>): KillTrial => ({ stage: 1, index: 0, atS: 3, node: "127.0.41.2", pid: 100, tKill: 1000, status: 200, ...over });

test("output times: stage 1 waits for a key the killed task owns; stage 0 takes any output", () => {
  const keys = ["a", "b", "c", "d", "e", "f", "g"];
  const mine = keys.find((k) => partitionOf(k, 3) === 0)!;
  const other = keys.find((k) => partitionOf(k, 3) !== 0)!;
  const arrivals = [
    { t: 1100, lines: [`${other}\t1`] },
    { t: 1200, lines: [`${mine}\t1`] },
    { t: 1300, lines: [`${other}\t2`] },
    { t: 1400, lines: [`${mine}\t2`] },
  ];
  const s1 = [trial({ restartAt: 1050, firstBatchAt: 1250 })];
  outputTimes(1, s1, arrivals);
  expect([s1[0]!.outAfterRestartAt, s1[0]!.resumeAt]).toEqual([1200, 1400]);
  const s0 = [trial({ stage: 0, restartAt: 1050, firstBatchAt: 1250 })];
  outputTimes(0, s0, arrivals);
  expect([s0[0]!.outAfterRestartAt, s0[0]!.resumeAt]).toEqual([1100, 1300]);
  const never = [trial({ restartAt: 1050 })];
  outputTimes(1, never, arrivals);
  expect(never[0]!.resumeAt).toBeUndefined();
});

test.each([
  { name: "the killed task with a new pid", ev: { stage: 1, index: 0, pid: 200 }, want: 1 },
  { name: "the same pid is not a restart of that kill", ev: { stage: 1, index: 0, pid: 100 }, want: undefined },
  { name: "another index", ev: { stage: 1, index: 2, pid: 200 }, want: undefined },
  { name: "another stage", ev: { stage: 0, index: 0, pid: 200 }, want: undefined },
])("restartedTrial: $name", ({ ev, want }) => {
  const trials = [
    trial({ restartAt: 900 }), // already restarted
    trial({}),
    trial({ tKill: NaN, pid: 0, error: "no running task" }), // never killed
  ];
  const found = restartedTrial(trials, ev);
  expect(found === undefined ? undefined : trials.indexOf(found)).toBe(want);
});

test("restartedTrial: a kill that never reached list_tasks is not matched", () => {
  expect(restartedTrial([trial({ tKill: NaN, pid: 0 })], { stage: 1, index: 0, pid: 200 })).toBeUndefined();
});

const run = (stage: number, trials: KillTrial[]): KillRun => ({
  stage,
  job: `job-${stage}`,
  lines: 24_000,
  outputs: 5000,
  restarts: trials.length,
  durationMs: 12_500,
  check: "ok",
  trials,
});

test("resume times count only answered kills, and a kill that never resumed as infinite", () => {
  expect(resumeTimes([run(1, [trial({ resumeAt: 1800 }), trial({}), trial({ status: 500, error: "no" })])])).toEqual([800, Infinity]);
});

test("the report: one row per kill, p50 / p99 per stage and over all kills", () => {
  const md = report({
    ref: { lines: 24_000, bytes: 0, app1: 0, app2: 0, app1Counts: new Map(), app2Keys: new Map() },
    killAtS: [2.5, 5.5],
    killSeconds: 12,
    runs: [
      run(1, [trial({ newPid: 200, newNode: "127.0.41.3", restartAt: 1100, firstBatchAt: 1200, outAfterRestartAt: 1150, resumeAt: 1300 })]),
      run(0, [trial({ stage: 0, index: 1, atS: 5.5 })]),
    ],
  });
  expect(md).toContain("### 5b. Kill to resume: App 1, exactly_once=true, input_rate 2,000");
  expect(md).toContain("Input: the first 24,000 lines of the generated file (~12 s at 2,000 tuples/s; the source sends batches of 100)");
  expect(row(md, "stage 1")).toEqual(["stage 1", "3 s", "stage1[0]", "2", "100 -> 200 (on .3)", "200", "100 ms", "200 ms", "150 ms", "**300 ms**"]);
  expect(row(md, "stage 0", 1)?.slice(0, 3)).toEqual(["stage 0", "1", "n/a / n/a"]);
  expect(row(md, "all")?.slice(0, 3)).toEqual(["all", "2", "100 ms / n/a"]);
  expect(report({ killAtS: [], killSeconds: 12, runs: [] })).toContain("No kill runs (the section failed before them).");
});
