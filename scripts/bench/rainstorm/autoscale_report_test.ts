import { expect, test } from "bun:test";
import { type AsRun, type RateSample, type ScaledEvent } from "./autoscale.ts";
import { drainOf, medianOver, rateBackOf, report, stageTotal } from "./autoscale_report.ts";
import { row } from "./fixtures_test_util.ts";
import { genLine } from "./input.ts";

const sample = (atMs: number, s0: (number | null)[], s1: (number | null)[]): RateSample => ({ atMs, stages: [s0, s1] });

test.each([
  { s: sample(0, [1500], [700, 800]), stage: 1, tasks: undefined, want: 1500 },
  { s: sample(0, [1500], [700, 800]), stage: 1, tasks: 2, want: 1500 },
  { s: sample(0, [1500], [700, 800]), stage: 1, tasks: 1, want: undefined },
  { s: sample(0, [1500], [700, null]), stage: 1, tasks: undefined, want: undefined },
  { s: sample(0, [], []), stage: 0, tasks: undefined, want: undefined },
])("stageTotal(stage $stage, tasks $tasks) = $want", ({ s, stage, tasks, want }) => {
  expect(stageTotal(s, stage, tasks)).toBe(want);
});

test("medianOver takes the samples in [from, to) where f is defined", () => {
  const xs = [sample(0, [1], []), sample(500, [2], []), sample(1000, [3], []), sample(1500, [null], []), sample(2000, [9], [])];
  expect(medianOver(xs, 500, 2000, (s) => stageTotal(s, 0))).toBe(2);
  expect(medianOver(xs, 3000, 4000, (s) => stageTotal(s, 0))).toBeUndefined();
});

/**
 * A step run at 100 tuples/s for 20 s then 200 tuples/s for 10 s: every output arrives `base` ms
 * after its line's due time, plus `extra(sendMs)`.
 */
function stepRun(base: number, extra: (sendMs: number) => number, scaled: ScaledEvent[] = [], samples: RateSample[] = []): AsRun {
  const arrivals: AsRun["arrivals"] = [];
  for (let n = 1; n <= 4000; n++) {
    const sendMs = n <= 2000 ? n * 10 : 20_000 + (n - 2000) * 5;
    arrivals.push({ atMs: sendMs + base + extra(sendMs), lines: [`k\t${genLine(n)}`] });
  }
  return {
    label: "autoscale step run",
    schedule: "100:20s,200:10s",
    lines: 4000,
    outputs: 4000,
    durationMs: 30_000,
    check: "ok",
    scaled,
    samples,
    arrivals,
    maxTasks: [2, 2],
  };
}

test("drain: no backlog when the latency never leaves the band", () => {
  expect(
    drainOf(
      stepRun(3, () => 0),
      20_000,
      30_000,
    ),
  ).toMatchObject({ offset: 3, preMedian: 0, threshold: 5, drainMs: 0, bins: 20 });
});

test("drain: the end of the last bin whose median is over the threshold", () => {
  // Lines sent in the first 2 s after the step wait 50 ms more: bins 0-3 (0.5 s each) are over.
  const d = drainOf(
    stepRun(3, (ms) => (ms >= 20_000 && ms < 22_000 ? 50 : 0)),
    20_000,
    30_000,
  )!;
  expect(d.drainMs).toBe(2000);
  expect(d.peakBin).toBe(50);
  expect(d.postP99).toBe(50);
});

test("drain: undefined without lines before the step", () => {
  expect(
    drainOf(
      stepRun(3, () => 0),
      1000,
      30_000,
    ),
  ).toBeUndefined();
});

test("rate back: the first sample after the step where stage 1 sums to 95% of 2R", () => {
  const run = stepRun(0, () => 0, [], [sample(16_000, [1500], [1500]), sample(16_500, [1500], [2000]), sample(17_000, [1500, 1500], [1400, 1500])]);
  expect(rateBackOf(run, 15_000)).toBe(2000);
  expect(rateBackOf(run, 18_000)).toBeUndefined();
});

const ev = (atMs: number, stage: number, from: number, to: number): ScaledEvent => ({ atMs, stage, from, to, avg: 3000, reason: "over HW" });

test("the report's verdicts: time to scale up, no flapping, steady actions; a missing run is said", () => {
  const scaled = [ev(12_000, 1, 1, 2), ev(13_000, 0, 1, 2), ev(31_000, 0, 2, 1), ev(31_500, 1, 2, 1)];
  const step: AsRun = { ...stepRun(0, () => 0, scaled), schedule: "1500:10s,3000:15s,1500:12s" };
  const steady: AsRun = { ...stepRun(0, () => 0), label: "autoscale steady run", scaled: [], durationMs: 30_000 };
  const md = report({ stepsS: [10, 15, 12], steadyS: 30, cpus: 2, stepInputStored: true, runs: [step, steady], uploads: [] });
  expect(row(md, "stage 1: step 1,500 -> 3,000 tuples/s to its first `scaled` event")?.slice(1)).toEqual([
    "**2.00 s** (1 -> 2 tasks, avg 3,000 tuples/s per task)",
    "<= 10.00 s",
    "pass",
  ]);
  expect(row(md, "scaling actions in the step run")?.at(-1)).toBe("pass");
  expect(row(md, "scaling actions per minute, steady 1,500 tuples/s for 30 s (LW 1000 < per-task rate < HW 2000)")?.slice(1, 2)[0]).toStartWith(
    "**0.00** (0 in 30.00 s",
  );
  expect(md).toContain("| step run | +12.00 s | stage 1 | 1 -> 2 | 3,000 | over HW |");
  const none = report({ stepsS: [10, 15, 12], steadyS: 30, cpus: 2, stepInputStored: false, runs: [], uploads: [] });
  expect(row(none, "runs completed")).toEqual(["runs completed", "0 of 2 (see Problems)", "2", "**miss**"]);
  expect(none).toStartWith("## 6. Autoscaling\n");
});
