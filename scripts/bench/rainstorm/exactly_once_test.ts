import { expect, test } from "bun:test";
import type { ChaosRow } from "./chaos.ts";
import { type ExactlyOnceResult, report } from "./exactly_once.ts";
import { eoRow, row } from "./fixtures_test_util.ts";
import { referenceOf } from "./input.ts";

const chaosRow = (pass: boolean): ChaosRow => ({ run: 0, plan: [], killsDone: 0, restarts: 0, outputs: 0, increasing: pass, countsOk: pass, pass });

function result(over: Partial<ExactlyOnceResult> = {}): ExactlyOnceResult {
  return {
    started: true,
    cpus: 2,
    throughput: {
      ref: referenceOf(1000),
      reps: 1,
      rows: [eoRow("App 1", false, 0, 1000), eoRow("App 1", true, 0, 900), eoRow("App 2", false, 0, 1000), eoRow("App 2", true, 0, 500)],
      jobStats: [],
      cpus: 2,
    },
    kills: {
      killAtS: [3],
      killSeconds: 20,
      runs: [
        {
          stage: 1,
          job: "k",
          lines: 1,
          outputs: 1,
          restarts: 1,
          durationMs: 1,
          check: "ok",
          trials: [{ stage: 1, index: 0, atS: 3, node: "n", pid: 1, tKill: 0, status: 200, resumeAt: 3500 }],
        },
      ],
    },
    chaos: { seed: 4242, runs: 2, rows: [chaosRow(true), chaosRow(true)] },
    probes: [],
    uploads: [],
    ...over,
  };
}

test("the targets: ratio >= 0.8, resume p99 <= 3 s, log bytes per tuple, every chaos run passing", () => {
  const md = report(result());
  expect(md).toStartWith("## 5. Exactly-once (exactly_once=true) against at-least-once (exactly_once=false)\n");
  expect(row(md, "App 1 throughput, EO / non-EO (1,000 lines, input_rate 0)")?.slice(2)).toEqual(["0.900 (900 / 1,000 tuples/s)", "**PASS**"]);
  expect(row(md, "App 2 throughput, EO / non-EO (1,000 lines, input_rate 0)")?.slice(2)).toEqual(["0.500 (500 / 1,000 tuples/s)", "**FAIL**"]);
  expect(row(md, "kill of a task to its output resuming, p99 over 1 kills (kill = detection)")?.slice(2)).toEqual(["p50 3.50 s, p99 3.50 s", "**FAIL**"]);
  expect(row(md, "HyDFS bytes written per input tuple, EO (logs only; dest excluded)")?.[2]).toBe("App 1 3.0 B, App 2 3.0 B (x3 on the replicas' disks)");
  expect(row(md, "chaos runs (seed 4242)")?.slice(1)).toEqual(["2 / 2", "2 / 2 passed", "**PASS**"]);
  for (const sub of ["### 5a.", "### 5b.", "### 5c.", "### 5d."]) expect(md).toContain(sub);
});

test("nothing measured: every verdict says so", () => {
  const md = report(
    result({
      started: false,
      throughput: { ref: referenceOf(10), reps: 3, rows: [], jobStats: [], cpus: 2 },
      kills: { killAtS: [3], killSeconds: 20, runs: [] },
      chaos: { seed: 1, runs: 5, rows: [] },
    }),
  );
  expect(row(md, "App 1 throughput, EO / non-EO (n/a lines, input_rate 0, median of 3)")?.slice(2)).toEqual(["n/a", "**not measured**"]);
  expect(md.match(/\*\*not measured\*\*/g)).toHaveLength(4);
});
