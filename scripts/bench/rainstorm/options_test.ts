import { expect, test } from "bun:test";
import { parseOptions, runDeadlineMs } from "./options.ts";

const MIN = 60_000;

test.each([
  {
    argv: [],
    env: {},
    want: { quick: false, eoOnly: false, autoscaleOnly: false, throughputOnly: false, noBuild: false, help: false, chaosRuns: 30, chaosSeed: 4242 },
  },
  { argv: ["--quick"], env: {}, want: { quick: true, chaosRuns: 5 } },
  { argv: ["--quick", "--chaos-runs", "7"], env: {}, want: { chaosRuns: 7 } },
  { argv: ["--chaos-runs=0"], env: {}, want: { chaosRuns: 0 } },
  { argv: [], env: { CHAOS_SEED: "99" }, want: { chaosSeed: 99 } },
  { argv: ["--chaos-seed", "5"], env: { CHAOS_SEED: "99" }, want: { chaosSeed: 5 } },
  { argv: ["--eo-only", "--no-build"], env: {}, want: { eoOnly: true, noBuild: true } },
  { argv: ["--autoscale-only"], env: {}, want: { autoscaleOnly: true } },
  { argv: ["--throughput-only"], env: {}, want: { throughputOnly: true, eoOnly: false } },
  { argv: ["--help"], env: {}, want: { help: true } },
])("parseOptions($argv, $env)", ({ argv, env, want }) => {
  expect(parseOptions(argv, env)).toMatchObject(want);
});

test.each([
  { argv: ["--eo-only", "--autoscale-only"], error: "exclude each other" },
  { argv: ["--throughput-only", "--eo-only"], error: "exclude each other" },
  { argv: ["--chaos-runs", "-1"], error: "--chaos-runs: expected a non-negative integer" },
  { argv: ["--chaos-seed", "x"], error: '--chaos-seed: expected a non-negative integer, got "x"' },
  { argv: ["--chaos-runs"], error: "got undefined" },
])("parseOptions($argv) refuses: $error", ({ argv, error }) => {
  expect(() => parseOptions(argv, {})).toThrow(error);
});

test.each([
  { argv: [], ms: 60 * MIN + 45 * MIN + 12 * MIN },
  { argv: ["--quick"], ms: 10 * MIN + 15 * MIN + 6 * MIN },
  { argv: ["--eo-only"], ms: 45 * MIN },
  { argv: ["--quick", "--autoscale-only"], ms: 6 * MIN },
  { argv: ["--throughput-only"], ms: 60 * MIN },
])("the watchdog of $argv is the sum of the budgets of the sections that run", ({ argv, ms }) => {
  expect(runDeadlineMs(parseOptions(argv, {}))).toBe(ms);
});
