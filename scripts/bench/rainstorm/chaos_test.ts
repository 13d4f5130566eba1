import { expect, test } from "bun:test";
import type { JobRun } from "../../../services/testing/rainstorm_client.ts";
import { type ChaosRow, judge, report } from "./chaos.ts";
import { row } from "./fixtures_test_util.ts";

const golden = new Map([
  ["a", 2],
  ["b", 1],
]);
const blank = (): ChaosRow => ({
  run: 0,
  plan: [{ afterFraction: 0.3, stage: 1, pick: 0.5 }],
  killsDone: 1,
  restarts: 0,
  outputs: 0,
  increasing: false,
  countsOk: false,
  pass: false,
});
const done = (outputs: string[], extra: Partial<JobRun> = {}): JobRun => ({
  events: [{ event: "task_restarted" }],
  outputs,
  done: { duration_ms: 1200 },
  ...extra,
});

test.each([
  { what: "exact", run: done(["a\t1", "b\t1", "a\t2"]), want: { pass: true, increasing: true, countsOk: true, restarts: 1, outputs: 3, durationMs: 1200 } },
  { what: "a repeated count", run: done(["a\t1", "a\t1", "b\t1", "a\t2"]), want: { pass: false, increasing: false, countsOk: true } },
  { what: "a lost update", run: done(["a\t1", "b\t1"]), want: { pass: false, increasing: true, countsOk: false } },
  { what: "a failed job", run: done([], { done: undefined, failed: "boom" }), want: { pass: false, error: "failed: boom" } },
  { what: "no done event", run: done([], { done: undefined }), want: { pass: false, error: "no done event" } },
  { what: "a refused job", run: done([], { done: undefined, rejected: { status: 400, error: "bad" } }), want: { pass: false, error: "rejected: 400 bad" } },
])("judge: $what", ({ run, want }) => {
  const r = blank();
  judge(r, run, golden);
  expect(r).toMatchObject(want);
});

test("the report: pass count, kills, stalled runs (paced 1 s + the 3 s resume target) and replay seed", () => {
  const pass = { ...blank(), pass: true, increasing: true, countsOk: true, outputs: 3, restarts: 1, durationMs: 1200 };
  const slow = { ...pass, run: 1, durationMs: 4500 };
  const fail = { ...blank(), run: 2, error: "failed: boom" };
  const md = report({ seed: 7, runs: 3, ref: { lines: 600, bytes: 0, app1: 3, app2: 0, app1Counts: golden, app2Keys: new Map() }, rows: [pass, slow, fail] });
  expect(md).toStartWith("### 5c. Chaos: 3 seeded runs, seed 7\n");
  expect(md).toContain('golden counts {"a":2,"b":1}');
  expect(md).toContain("Replay: `--chaos-seed 7`.");
  expect(row(md, "3")).toEqual(["3", "**2 / 3**", "3", "3", "2", "2 / 3", "1.20 s / 4.50 s", "1 (run 1)"]);
  expect(row(md, "1")).toEqual(["1", "s1@30%", "1/1", "1", "3", "**4.50 s** (stalled)", "yes", "yes", "pass"]);
  expect(row(md, "2")?.at(-1)).toBe("**FAIL**: failed: boom");
});
