import { expect, test } from "bun:test";
import { DEFAULT_LINES, DEFAULT_RUNS, KILL_FROM, KILL_TO, killPoint, pacedRate, parseOptions, runSeed } from "./plan.ts";

test.each([
  { argv: [], want: { help: false, runs: DEFAULT_RUNS, seed: 99, lines: DEFAULT_LINES } },
  { argv: ["--runs", "3", "--seed", "7", "--lines", "2000"], want: { help: false, runs: 3, seed: 7, lines: 2000 } },
  { argv: ["--runs=1", "--seed=0"], want: { help: false, runs: 1, seed: 0, lines: DEFAULT_LINES } },
  {
    argv: ["--json", "/tmp/x.json", "--note", "tests ran"],
    want: { help: false, runs: DEFAULT_RUNS, seed: 99, lines: DEFAULT_LINES, json: "/tmp/x.json", note: "tests ran" },
  },
  { argv: ["--help"], want: { help: true, runs: DEFAULT_RUNS, seed: 99, lines: DEFAULT_LINES } },
])("parseOptions($argv)", ({ argv, want }) => {
  expect(parseOptions(argv, 99)).toEqual(want);
});

test.each([
  { argv: ["--runs", "0"], err: "--runs" },
  { argv: ["--runs", "2.5"], err: "--runs" },
  { argv: ["--seed", "-1"], err: "--seed" },
  { argv: ["--lines", "100"], err: "--lines" },
  { argv: ["--lines", ""], err: "--lines" },
  { argv: ["--bogus"], err: "bogus" },
])("parseOptions($argv) refuses it", ({ argv, err }) => {
  expect(() => parseOptions(argv, 1)).toThrow(err);
});

test.each([
  { seed: 5, i: 0, want: 5 },
  { seed: 5, i: 3, want: 8 },
  { seed: 0xffffffff, i: 1, want: 0 },
])("runSeed($seed, $i) = $want", ({ seed, i, want }) => {
  expect(runSeed(seed, i)).toBe(want);
});

test("killPoint: the same seed gives the same point, always within [KILL_FROM, KILL_TO) of the outputs", () => {
  const expected = 4750;
  const points = Array.from({ length: 500 }, (_, s) => killPoint(s, expected));
  for (const p of points) {
    expect(p).toBeGreaterThanOrEqual(Math.floor(KILL_FROM * expected));
    expect(p).toBeLessThan(KILL_TO * expected);
  }
  expect(points.map((_, s) => killPoint(s, expected))).toEqual(points);
  // Spread over the window, not one point: both halves are drawn.
  const mid = ((KILL_FROM + KILL_TO) / 2) * expected;
  expect(points.some((p) => p < mid) && points.some((p) => p >= mid)).toBe(true);
});

test.each([
  { expected: 1, want: 1 },
  { expected: 0, want: 1 },
])("killPoint with $expected expected outputs is at least 1", ({ expected, want }) => {
  expect(killPoint(3, expected)).toBe(want);
});

test.each([
  { lines: 5000, want: 500 },
  { lines: 2001, want: 201 },
])("pacedRate($lines) = $want tuples/s", ({ lines, want }) => {
  expect(pacedRate(lines)).toBe(want);
});
