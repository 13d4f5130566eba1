import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { decodeRecord, encodeRecord, inputIdOf, type LogRecord, replayLog, splitSeen } from "./exactly_once.ts";
import { tupleLine } from "./operator_proc.ts";
import { decodeBatch, destLine } from "./worker.ts";

describe("log records", () => {
  const records: LogRecord[] = [
    { answers: [], state: null },
    { answers: [{ id: "f:1", outputs: [] }], state: { counts: { a: 1 } } },
    {
      answers: [
        { id: "f:2>", outputs: [{ key: "SIGN_POLE", value: "11" }] },
        {
          id: "f:3>",
          outputs: [
            { key: "k", value: 'quoted "x", comma' },
            { key: "", value: "" },
          ],
        },
      ],
      state: undefined,
    },
  ];
  for (const r of records) {
    test(`round trip of ${r.answers.length} answers`, () => {
      const line = encodeRecord(r);
      expect(line.endsWith("\n")).toBe(true);
      expect(line.slice(0, -1)).not.toContain("\n");
      expect(decodeRecord(line)).toEqual({ answers: r.answers, state: r.state });
    });
  }

  test("the compact form is about half the object form", () => {
    const answers = Array.from({ length: 1000 }, (_, i) => ({ id: `eo-input.csv:${i}>`, outputs: [{ key: "SIGN_REGULATORY", value: String(i) }] }));
    const compact = encodeRecord({ answers, state: null }).length;
    const objects = JSON.stringify({ answers, state: null }).length;
    expect(compact / objects).toBeLessThan(0.7);
  });

  const bad: [string, string][] = [
    ["{}", 'expected {"a": [answers...], "s": state}'],
    ['{"a":[["id"]]}', "expected [inputId, [[key, value], ...]]"],
    ['{"a":[[1,[]]]}', "expected [inputId, [[key, value], ...]]"],
    ["not json", "JSON"],
  ];
  for (const [line, message] of bad) test(`refuses ${line}`, () => expect(() => decodeRecord(line)).toThrow(message));

  test("replayLog: every processed input, the last state, the last record's answers", () => {
    const log = [
      encodeRecord({ answers: [{ id: "a", outputs: [{ key: "k", value: "1" }] }], state: 1 }),
      encodeRecord({
        answers: [
          { id: "b", outputs: [{ key: "k", value: "2" }] },
          { id: "c", outputs: [] },
        ],
        state: 2,
      }),
    ].join("");
    const r = replayLog(log);
    expect(["a", "b", "c", "d"].map((id) => r.seen.has(id))).toEqual([true, true, true, false]);
    expect(r.seen.size).toBe(3);
    expect(r.state).toBe(2);
    expect(r.records).toBe(2);
    expect(r.last.map((a) => a.id)).toEqual(["b", "c"]);
    expect(r.outputs).toBe(2);
    expect(r.recent).toEqual([r.last]);
    expect(replayLog(log, 64).recent.map((answers) => answers.map((a) => a.id))).toEqual([["a"], ["b", "c"]]);
    const empty = replayLog("");
    expect({ ...empty, seen: empty.seen.size }).toEqual({ seen: 0, state: undefined, records: 0, outputs: 0, recent: [], last: [] });
  });

  test("replayLog holds only the ids above the last record's floor, and still knows the older ones", () => {
    const answer = (line: number) => ({ id: `src.csv:${line}>`, outputs: [{ key: "k", value: String(line) }] });
    const log = [
      encodeRecord({ answers: [answer(1), answer(2)], state: 1 }),
      encodeRecord({ answers: [answer(3), answer(5)], state: 2, floor: 2 }),
      encodeRecord({ answers: [answer(4), { id: "not-from-a-source", outputs: [] }], state: 3, floor: 3 }),
    ].join("");
    const r = replayLog(log);
    expect(r.seen.floor).toBe(3);
    expect(r.seen.size).toBe(3); // lines 4 and 5, and the id without a line
    for (const line of [1, 2, 3, 4, 5]) expect(r.seen.has(`src.csv:${line}>`)).toBe(true);
    expect(r.seen.has("src.csv:6>")).toBe(false);
    expect(r.seen.has("not-from-a-source")).toBe(true);
    expect(r.outputs).toBe(5);
  });

  test("the floor survives the round trip; a bad floor is named", () => {
    const r = { answers: [{ id: "f:9", outputs: [] }], state: null, floor: 7 };
    expect(decodeRecord(encodeRecord(r))).toEqual(r);
    expect(encodeRecord({ ...r, floor: 0 })).not.toContain('"f"');
    expect(() => decodeRecord('{"a":[],"s":null,"f":-1}')).toThrow("f: expected the source position");
  });

  test("replayLog names the bad line", () => {
    expect(() => replayLog(`${encodeRecord({ answers: [], state: 0 })}{oops\n`)).toThrow("task log line 2");
  });
});

describe("input ids", () => {
  test("inputIdOf reads the id of lines tupleLine writes, escaped or not", () => {
    for (const id of ["f:1", "f:1>0", 'we"ird\\id', "ünï"]) expect(inputIdOf(tupleLine(id, "k", "v").trimEnd())).toBe(id);
  });

  test("splitSeen: already processed and repeated-in-batch ids are not processed again", () => {
    const lines = ["a", "b", "a", "c"].map((id) => tupleLine(id, "k", "v")).join("");
    const r = splitSeen(lines, new Set(["c"]));
    expect(r.freshCount).toBe(2);
    expect(r.fresh).toBe(tupleLine("a", "k", "v") + tupleLine("b", "k", "v"));
    expect(r.repeated).toEqual(["a", "c"]);
  });
});

describe("results", () => {
  test("destLine keeps one result per line", () => {
    expect(destLine("k", "v")).toBe("k\tv\n");
    expect(destLine("a\nb", "c\r\nd")).toBe("a\\nb\tc\\r\\nd\n");
  });

  test("decodeBatch refuses ids: batches carry none (the last stage deduplicates by its log and its dest sequence numbers)", () => {
    const base = { job: "job-abc-1", stage: 1, index: 0, count: 1, lines: tupleLine("x", "k", "v") };
    expect(decodeBatch(encode(base))).toEqual(base);
    expect(() => decodeBatch(encode({ ...base, ids: ["x"] }))).toThrow('batch: unknown field "ids"');
  });
});
