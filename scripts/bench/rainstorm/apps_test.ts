import { expect, test } from "bun:test";
import { report, type ThroughputRow } from "./apps.ts";
import { row } from "./fixtures_test_util.ts";

const base: ThroughputRow = {
  cluster: "5 nodes",
  app: "App 2 (grep \\| transform)",
  lines: 1_000_000,
  outputs: 200_000,
  expected: 200_000,
  check: "ok",
  durationMs: 8000,
  wallMs: 8200,
  tuplesPerS: 125_000,
  pipeline: "grep",
  pipelineMs: 500,
  pipelineCheck: "fine",
};

test.each([
  { rows: [base], quick: false, want: "**PASS** (125,000 tuples/s, 125% of the target)" },
  { rows: [{ ...base, tuplesPerS: 50_000 }], quick: false, want: "**FAIL** (50,000 tuples/s, 50% of the target)" },
  { rows: [{ ...base, cluster: "3 nodes" }], quick: true, want: "**not measured** (--quick runs the 3-node cluster only)" },
  { rows: [], quick: false, want: "**not measured** (the 5-node run failed; see errors)" },
])("target line: $want", ({ rows, quick, want }) => {
  expect(report({ rows, uploads: [], quick })).toContain(`Target: App 2 on the 5-node cluster >= 100,000 tuples/s: ${want}`);
});

test("a throughput row: figures, the pipeline's rate and the ratio to it", () => {
  const md = report({ rows: [base], uploads: [{ cluster: "5 nodes", what: "input", bytes: 10 * 1024 * 1024, ms: 2000 }], quick: false });
  expect(row(md, "5 nodes")).toEqual([
    "5 nodes",
    "App 2 (grep \\| transform)",
    "1,000,000",
    "200,000",
    "ok",
    "8.00 s",
    "8.20 s",
    "**125,000**",
    "`grep` (fine)",
    "0.50 s",
    "2,000,000",
    "0.063x (pipeline 16x faster)",
  ]);
  expect(md).toContain("| 5 nodes | input | 10.0 MiB | 2.00 s | 5.0 |");
});
