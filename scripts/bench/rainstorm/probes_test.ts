import { expect, test } from "bun:test";
import { DEFAULT_RAINSTORM } from "../../../services/rainstorm/config.ts";
import { eoRow, row } from "./fixtures_test_util.ts";
import { batchLines, recordSize, report } from "./probes.ts";

test("record size: the mean of the first exactly-once App 1 run's log, else the fallback", () => {
  const logs = [0, 1].map((stage) => ({
    stage,
    tasks: [],
    bytes: 1000 * (stage + 1),
    records: 3,
    inputs: 0,
    empty: 0,
    outputs: 0,
    answerBytes: 0,
    stateBytes: 0,
  }));
  const rows = [eoRow("App 1", true, 0, 1, { logs })];
  expect([recordSize(rows, 0, 7), recordSize(rows, 1, 7)]).toEqual([333, 667]);
  expect(recordSize([], 0, 7)).toBe(7);
  expect(recordSize([eoRow("App 2", true, 0, 1, { logs }), eoRow("App 1", false, 0, 1)], 0, 7)).toBe(7);
});

test("a probe batch is batch_size input lines in the operator protocol", () => {
  for (const stage of [0, 1] as const) expect(batchLines(2, stage).trimEnd().split("\n")).toHaveLength(DEFAULT_RAINSTORM.batch_size);
});

test("the probes table: n and percentiles in ms", () => {
  expect(row(report([{ what: "append", samples: [1, 2, 3, 4] }]), "append")).toEqual(["append", "4", "2.00 ms", "4.00 ms", "4.00 ms", "4.00 ms"]);
});
