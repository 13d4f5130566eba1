import { expect, test } from "bun:test";
import { asRunOf, rateSampleOf, ScalingWatch } from "./autoscale.ts";

const task = (job: string, stage: number, t: number, rate: number | null) => ({ job, stage, task: t, rate });

test.each([
  { name: "other jobs are left out", tasks: [task("j1", 0, 0, 10), task("j2", 0, 0, 99), task("j1", 1, 0, 20)], want: [[10], [20]] },
  {
    name: "rates in task order per stage",
    tasks: [task("j1", 1, 2, 3), task("j1", 1, 0, 1), task("j1", 0, 0, 5), task("j1", 1, 1, 2)],
    want: [[5], [1, 2, 3]],
  },
  { name: "an unknown rate stays null", tasks: [task("j1", 0, 0, null)], want: [[null], []] },
  { name: "no tasks yet", tasks: [], want: [[], []] },
])("rateSampleOf: $name", ({ tasks, want }) => {
  expect(rateSampleOf(1234, tasks, "j1")).toEqual({ atMs: 1234, stages: want.map((xs) => [...xs]) });
});

const scaled = (stage: number, from: number, to: number) => ({ event: "scaled", stage, from, to, avg_rate_per_task: 3000, reason: "over HW" });
const noTasks = { tasks: async () => [] };

test("the watch records scaled events after accepted, the most tasks per stage, and logs each", () => {
  const lines: string[] = [];
  const watch = new ScalingWatch((l) => lines.push(l), noTasks, "run");
  try {
    watch.onEvent({ event: "accepted", job: "j1" }, 1000);
    watch.onEvent(scaled(1, 1, 3), 3500);
    watch.onEvent(scaled(1, 3, 2), 5000);
    watch.onEvent(scaled(0, 1, 2), 6000);
    watch.onEvent({ event: "done" }, 9000);
  } finally {
    watch.stop();
  }
  expect(watch.scaled.map((e) => [e.atMs, e.stage, e.from, e.to, e.avg, e.reason])).toEqual([
    [2500, 1, 1, 3, 3000, "over HW"],
    [4000, 1, 3, 2, 3000, "over HW"],
    [5000, 0, 1, 2, 3000, "over HW"],
  ]);
  expect(watch.maxTasks).toEqual([2, 3]);
  expect(lines[0]).toBe("run: scaled at +2.50 s: stage1 1 -> 3 (over HW)");
});

test("the watch polls list_tasks from accepted on, one sample per answer of the job's tasks", async () => {
  const watch = new ScalingWatch(() => {}, { tasks: async () => [{ job: "j1", stage: 0, task: 0, rate: 1500 } as never] }, "run");
  try {
    watch.onEvent({ event: "accepted", job: "j1" }, performance.now());
    const deadline = performance.now() + 5000;
    while (watch.samples.length === 0 && performance.now() < deadline) await Bun.sleep(20);
  } finally {
    watch.stop();
  }
  expect(watch.samples[0]?.stages).toEqual([[1500], []]);
});

test("asRunOf: the job's counts, the check, and arrivals in ms after accepted", () => {
  const watch = new ScalingWatch(() => {}, noTasks, "run");
  watch.onEvent(scaled(0, 1, 2), 0);
  const r = {
    run: { events: [], outputs: ["a", "b"], done: { job: "j1", tuples_read: 7, duration_ms: 4000 } as never },
    arrivals: [{ t: 1500, lines: ["a", "b"] }],
    acceptedAt: 1000,
  };
  expect(asRunOf("step", "1500:10s", r, "ok", watch)).toEqual({
    label: "step",
    schedule: "1500:10s",
    lines: 7,
    outputs: 2,
    durationMs: 4000,
    check: "ok",
    scaled: watch.scaled,
    samples: [],
    arrivals: [{ atMs: 500, lines: ["a", "b"] }],
    maxTasks: [2, 1],
  });
});
