import { expect, test } from "bun:test";
import { type AsRun, type RateSample, type ScaledEvent } from "./autoscale.ts";
import { drainOf, medianOver, outputRate, rateBackOf, report, stageTotal, taskRateExtreme } from "./autoscale_report.ts";
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

test.each([
  { name: "the largest of 2 tasks", s: sample(0, [], [1400, 1600]), tasks: 2, pick: Math.max, want: 1600 },
  { name: "the smallest of 2 tasks", s: sample(0, [], [1400, 1600]), tasks: 2, pick: Math.min, want: 1400 },
  { name: "another task count: none", s: sample(0, [], [1400, 1600]), tasks: 3, pick: Math.max, want: undefined },
  { name: "no scale-up (no count): none", s: sample(0, [], [1400, 1600]), tasks: undefined, pick: Math.max, want: undefined },
  { name: "an unknown rate: NaN (medianOver skips it)", s: sample(0, [], [1400, null]), tasks: 2, pick: Math.min, want: NaN },
])("taskRateExtreme: $name", ({ s, tasks, pick, want }) => {
  expect(taskRateExtreme(s, 1, tasks, pick)).toBe(want as number);
});

test.each([
  { from: 0, to: 1000, want: 3 },
  { from: 500, to: 1500, want: 5 },
  { from: 1000, to: 3000, want: 2.5 },
  { from: 3000, to: 4000, want: 0 },
])("outputRate over [$from, $to) = $want outputs/s", ({ from, to, want }) => {
  const arrivals = [
    { atMs: 0, lines: ["a"] },
    { atMs: 999, lines: ["b", "c"] },
    { atMs: 1000, lines: ["d", "e", "f"] },
    { atMs: 2999, lines: ["g", "h"] },
  ];
  expect(outputRate(arrivals, from, to)).toBe(want);
});

/**
 * A step run at 1500 tuples/s for 10 s, then 3000 for 15 s: both stages scale 1 -> 2 right after the
 * step (stage 1 only when `stage1Up`), and once settled each stage's 2 tasks run at 1400 and 1600.
 */
function throughputRun(stage1Up: boolean): AsRun {
  const samples: RateSample[] = [];
  for (let t = 0; t < 25_000; t += 500) samples.push(t < 10_000 ? sample(t, [1500], [1500]) : sample(t, [1400, 1600], stage1Up ? [1400, 1600] : [3000]));
  const arrivals: AsRun["arrivals"] = [];
  for (let t = 0; t < 25_000; t += 100) arrivals.push({ atMs: t, lines: Array.from({ length: t < 10_000 ? 150 : 300 }, () => "k\tv") });
  const scaled = [ev(11_000, 0, 1, 2), ...(stage1Up ? [ev(11_500, 1, 1, 2)] : [])];
  return { ...stepRun(0, () => 0, scaled, samples), schedule: "1500:10s,3000:15s,1500:12s", arrivals };
}

test("the report's throughput rows: 1 task before the step, the new tasks once settled, and the job's outputs/s", () => {
  const md = report({ stepsS: [10, 15, 12], steadyS: 30, cpus: 2, stepInputStored: false, runs: [throughputRun(true)], uploads: [] });
  const verdictRow = (stage: number) => row(md, `stage ${stage} throughput, before the step -> after the new parallelism settles (list_tasks rates, median)`);
  expect(verdictRow(0)?.slice(1)).toEqual([
    "1,500 tuples/s on 1 task -> 3,000 tuples/s on 2 tasks (1,400-1,600 per task)",
    "total = source rate (+-5%), each task inside LW..HW",
    "pass",
  ]);
  expect(verdictRow(1)?.[1]).toBe("1,500 tuples/s on 1 task -> 3,000 tuples/s on 2 tasks (1,400-1,600 per task)");
  expect(row(md, "job outputs/s, before the step -> after the new parallelism settles")?.slice(1)).toEqual(["1,500 -> 3,000", "= source rate (+-5%)", "pass"]);
  expect(row(md, "stage 1")?.slice(1, 3)).toEqual([
    "1 task: 1,500 tuples/s (+2.00 s to +10.00 s)",
    "2 tasks: total 3,000 tuples/s, per task 1,400-1,600 (+16.50 s to +25.00 s)",
  ]);
  expect(row(md, "job outputs/s (arrivals at the submitter)")?.slice(1)).toEqual(["1,500", "3,000", "1,500 -> 3,000"]);

  const noUp = report({ stepsS: [10, 15, 12], steadyS: 30, cpus: 2, stepInputStored: false, runs: [throughputRun(false)], uploads: [] });
  expect(row(noUp, "stage 1")?.[2]).toBe("n/a (no scale-up)");
  expect(row(noUp, "stage 1 throughput, before the step -> after the new parallelism settles (list_tasks rates, median)")?.slice(1, 2)).toEqual([
    "1,500 tuples/s on 1 task -> n/a",
  ]);
  expect(row(noUp, "job outputs/s, before the step -> after the new parallelism settles")?.slice(1)).toEqual([
    "1,500 -> n/a",
    "= source rate (+-5%)",
    "**miss**",
  ]);
});
