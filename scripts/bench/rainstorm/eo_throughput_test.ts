import { expect, test } from "bun:test";
import { encodeRecord } from "../../../services/rainstorm/exactly_once.ts";
import { addTaskLog, cpuAdded, type LogStage, opsDelta, parseHydfsCounters, ratio, report } from "./eo_throughput.ts";
import { eoRow, row } from "./fixtures_test_util.ts";
import { referenceOf } from "./input.ts";

test("hydfsd counters from /metrics text; a text without them is undefined", () => {
  const text = ['hydfs_ops_total{op="append"} 7', "hydfs_bytes_written_total 1234", 'hydfs_ops_total{op="create"} 2', "other 1"].join("\n");
  expect(parseHydfsCounters(text)).toEqual({
    written: 1234,
    ops: new Map([
      ["append", 7],
      ["create", 2],
    ]),
  });
  expect(parseHydfsCounters("other 1")).toBeUndefined();
});

test("opsDelta keeps the ops that changed", () => {
  const before = {
    written: 0,
    ops: new Map([
      ["append", 5],
      ["get", 1],
    ]),
  };
  const after = {
    written: 9,
    ops: new Map([
      ["append", 8],
      ["get", 1],
      ["create", 1],
    ]),
  };
  expect(opsDelta(before, after)).toEqual(
    new Map([
      ["append", 3],
      ["create", 1],
    ]),
  );
});

test("a task log's records, inputs, empty answers, outputs and state bytes", () => {
  const st: LogStage = { stage: 1, tasks: [], bytes: 0, records: 0, inputs: 0, empty: 0, outputs: 0, answerBytes: 0, stateBytes: 0 };
  const log =
    encodeRecord({
      answers: [
        { id: "i1", outputs: [{ key: "k", value: "1" }] },
        { id: "i2", outputs: [] },
      ],
      state: { k: 1 },
    }) + encodeRecord({ answers: [{ id: "i3", outputs: [] }], state: { k: 1 } });
  const bytes = new TextEncoder().encode(log);
  addTaskLog(st, 0, bytes);
  addTaskLog(st, 1, new Uint8Array(0));
  expect(st).toMatchObject({ bytes: bytes.length, records: 2, inputs: 3, empty: 2, outputs: 1, stateBytes: 2 * '{"k":1}'.length });
  expect(st.answerBytes + st.stateBytes).toBe(bytes.length - 2); // the newlines are in neither
  expect(st.tasks).toEqual([
    { index: 0, bytes: bytes.length, records: 2, inputs: 3 },
    { index: 1, bytes: 0, records: 0, inputs: 0 },
  ]);
});

test("the ratio is of the medians over the repetitions", () => {
  const rows = [
    eoRow("App 1", false, 0, 1000),
    eoRow("App 1", false, 1, 3000),
    eoRow("App 1", false, 2, 2000),
    eoRow("App 1", true, 0, 1500),
    eoRow("App 1", true, 1, 1700),
    eoRow("App 1", true, 2, 1600),
  ];
  expect(ratio(rows, "App 1")).toBe(1600 / 2000);
  expect(ratio(rows, "App 2")).toBeUndefined();
});

test("CPU exactly-once adds: mean(on) - mean(off) per group, with each group's share", () => {
  const added = cpuAdded([eoRow("App 1", false, 0, 1000, {}, 1), eoRow("App 1", true, 0, 800, {}, 2)]);
  // The daemons' groups double (node 1: +1 each; others: +1; memberd: +2); operators and submitter equal.
  expect(added).toEqual([
    ["App 1", "+1.00 (17%)", "+1.00 (17%)", "+1.00 (17%)", "+1.00 (17%)", "+2.00 (33%)", "+0.00 (0%)", "+0.00 (0%)", "+0.00 (0%)", "+6.00 (x1.75 of off)"],
  ]);
});

test("the 5a report: per-job rows with the EO ratio, the logs table only when logs were read", () => {
  const rows = [eoRow("App 2", false, 0, 2000), eoRow("App 2", true, 0, 1000)];
  const md = report({ ref: referenceOf(1000), reps: 1, rows, jobStats: rows.map((r) => r.stats!), cpus: 2 }, true);
  expect(row(md, "App 2")).toEqual(["App 2", "false", "1,000", "10", "ok", "1.00 s", "**2,000**", "", "100", "100", "0", "0.0", "append 3"]);
  expect(row(md, "App 2", 1)?.slice(6, 8)).toEqual(["**1,000**", "0.500"]);
  expect(md).toContain("One run each, off before on.");
  expect(md).not.toContain("What the logs hold");
  expect(md).toContain("CPU seconds exactly-once adds to a job");
  expect(report({ ref: referenceOf(10), reps: 3, rows: [], jobStats: [], cpus: 2 }, false)).toContain("No input (the section failed before it).");
});
