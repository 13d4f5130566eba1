import { expect, test } from "bun:test";
import { row } from "./fixtures_test_util.ts";
import { genLine } from "./input.ts";
import { latencySamples, type LatencyRow, report } from "./latency.ts";

test("a line's latency is its arrival minus (accepted + n / rate)", () => {
  // At 100 tuples/s line 50 is due 500 ms after accepted (at 1000): arriving at 1520 it took 20 ms.
  const out = (n: number) => `k\t${genLine(n)}`;
  expect(
    latencySamples(
      [
        { t: 1520, lines: [out(50)] },
        { t: 1600, lines: [out(60), out(1)] },
      ],
      1000,
      100,
    ),
  ).toEqual([20, 0, 590]);
});

const r: LatencyRow = { cluster: "3 nodes", rate: 1000, lines: 5000, outputs: 10, expected: 10, check: "ok", durationMs: 5100, samples: [-2, 3, 4, 5, 10] };

test("the last column subtracts a negative minimum; a non-negative one is left as measured", () => {
  expect(row(report({ rows: [r], latencySeconds: 5 }), "3 nodes")).toEqual([
    "3 nodes",
    "1,000",
    "5,000",
    "10",
    "ok",
    "5.10 s (5.00 s)",
    "-2.0 ms",
    "**4.0 ms**",
    "10.0 ms",
    "**10.0 ms**",
    "10.0 ms",
    "6.0 ms / 12.0 ms",
  ]);
  expect(row(report({ rows: [{ ...r, samples: [1, 2] }], latencySeconds: 5 }), "3 nodes")?.at(-1)).toBe("(min >= 0: as measured)");
});

test("the method names the run's length", () => {
  expect(report({ rows: [], latencySeconds: 20 })).toContain("the first rate x 20 s lines");
});
