import { expect, test } from "bun:test";
import { type FailoverResult, type FailoverRun, failureLines, measureOf, report, restOfSchedule, summarize } from "./report.ts";

test.each([
  { values: [], want: undefined },
  { values: [undefined, Number.NaN], want: undefined },
  { values: [1500], want: { n: 1, median: 1500, p90: 1500, min: 1500, max: 1500 } },
  // Nearest rank: median of 4 is the 2nd, p90 of 4 the 4th; undefined values are left out.
  { values: [4000, 1000, undefined, 3000, 2000], want: { n: 4, median: 2000, p90: 4000, min: 1000, max: 4000 } },
  { values: Array.from({ length: 20 }, (_, i) => (i + 1) * 100), want: { n: 20, median: 1000, p90: 1800, min: 100, max: 2000 } },
])("summarize($values)", ({ values, want }) => {
  expect(summarize(values)).toEqual(want);
});

test.each([
  { killAt: 0, expected: 100, lines: 1000, rate: 100, want: 10_000 },
  { killAt: 25, expected: 100, lines: 1000, rate: 100, want: 7500 },
  { killAt: 100, expected: 100, lines: 1000, rate: 100, want: 0 },
  // A batch can carry the count past the expected outputs: nothing is left then.
  { killAt: 120, expected: 100, lines: 1000, rate: 100, want: 0 },
])("restOfSchedule($killAt of $expected, $lines lines at $rate/s) = $want ms", ({ killAt, expected, lines, rate, want }) => {
  expect(restOfSchedule(killAt, expected, lines, rate)).toBe(want);
});

const run = (over: Partial<FailoverRun>): FailoverRun => ({ run: 0, seed: 1, killAtOutputs: 100, killedNode: 1, exact: true, ...over });

test.each([
  { r: run({ doneMs: 9000, restMs: 6000 }), key: "delayMs", want: 3000 },
  { r: run({ doneMs: 9000 }), key: "delayMs", want: undefined },
  { r: run({ restMs: 6000 }), key: "delayMs", want: undefined },
  { r: run({ acceptedMs: 1800 }), key: "acceptedMs", want: 1800 },
  { r: run({}), key: "resumedMs", want: undefined },
] as const)("measureOf($key)", ({ r, key, want }) => {
  expect(measureOf(r, key)).toBe(want);
});

const result = (runs: FailoverRun[]): FailoverResult => ({
  atIso: "2026-11-26T06:00:00.000Z",
  host: "vm",
  nproc: 2,
  cpuModel: "cpu",
  bunVersion: "1.4.4",
  subnet: "127.0.58",
  seed: 40,
  lines: 5000,
  ratePerS: 500,
  expectedOutputs: 4750,
  loadBefore: 1.5,
  loadAfter: 2.25,
  note: "two other helpers ran cluster tests",
  runs,
});

test("failureLines: one line per failed run, with the command that replays it alone", () => {
  const r = result([run({ seed: 40 }), run({ run: 1, seed: 41, exact: false, problem: "dest is not exact: x" })]);
  expect(failureLines(r)).toEqual(["run 1 (seed 41): dest is not exact: x; replay with bun scripts/bench/leader_failover.ts --seed 41 --runs 1 --lines 5000"]);
});

test("report: each measure's median, p90, min and max over the runs that have it, and the exact runs", () => {
  const runs = [
    run({ seed: 40, acceptedMs: 1000, takeoverMs: 900, resumedMs: 1200, doneMs: 8000, restMs: 5000 }),
    run({ run: 1, seed: 41, acceptedMs: 3000, takeoverMs: 2900, resumedMs: 3200, doneMs: 9000, restMs: 5000 }),
    run({ run: 2, seed: 42, acceptedMs: 2000, takeoverMs: 1900, exact: false, problem: "output resumed: timed out" }),
  ];
  const md = report(result(runs));
  expect(md).toStartWith("# Leader failover: SIGKILL of the leader mid-job, exactly-once App 1 (3 runs)\n");
  expect(md).toContain("| leader kill → a job accepted again (through another node) | 3/3 | 2.00 s | 3.00 s | 1.00 s | 3.00 s |");
  expect(md).toContain("| leader kill → a new leader leads (GET /leader self) | 3/3 | 1.90 s | 2.90 s | 0.90 s | 2.90 s |");
  expect(md).toContain("| leader kill → output resumed (dest grows) | 2/3 | 1.20 s | 3.20 s | 1.20 s | 3.20 s |");
  expect(md).toContain("| leader kill → the source reads the input again | 0/3 | n/a | n/a | n/a | n/a |");
  expect(md).toContain("| leader kill → job done | 2/3 | 8.00 s | 9.00 s | 8.00 s | 9.00 s |");
  expect(md).toContain("| job delayed by the failover (done − the input's remaining schedule) | 2/3 | 3.00 s | 4.00 s | 3.00 s | 4.00 s |");
  expect(md).toContain("Dest exactly the reference counts: **2/3** runs.");
  expect(md).toContain("Load average (1 min): 1.50 before, 2.25 after. Meanwhile: two other helpers ran cluster tests");
  expect(md).toContain("- run 2 (seed 42): output resumed: timed out; replay with bun scripts/bench/leader_failover.ts --seed 42 --runs 1 --lines 5000");
});

test("report: no failed-runs section when every run passed, n/a for a measure no run has", () => {
  const md = report(result([run({ acceptedMs: 1000 })]));
  expect(md).not.toContain("Failed runs");
  expect(md).toContain("| leader kill → job done | 0/1 | n/a | n/a | n/a | n/a |");
  expect(md).toContain("**1/1** runs");
});
