/**
 * aggregate-wrapper: running counts, grouping by field or key, and the snapshot/restore contract.
 */
import { describe, expect, test } from "bun:test";
import { aggregate, countInto, countsFromState, countsToState, groupOf } from "./aggregate.ts";
import { grepLine } from "./grep.ts";
import { SIGN_POST_LINE, SQUARE_POLE_LINE, STREET_NAME_LINE, trialDataLines } from "./test_fixtures.ts";

describe("groupOf(col, key, value)", () => {
  const ROWS: [number | undefined, string, string, string][] = [
    // [col, key, value, group]
    [undefined, "Sign Post", SIGN_POST_LINE, "Sign Post"],
    [4, "ignored", SIGN_POST_LINE, "Sign Post"],
    [6, "ignored", SQUARE_POLE_LINE, "SIGN_POLE"],
    [0, "ignored", STREET_NAME_LINE, "677,227"],
    [30, "ignored", STREET_NAME_LINE, ""],
    [0, "ignored", "", ""],
  ];
  test.each(ROWS)("col %p key %p", (col, key, value, want) => {
    expect(groupOf(col, key, value)).toBe(want);
  });
});

describe("countInto", () => {
  test("each input emits the new count of its group", () => {
    const counts = new Map<string, number>();
    const out = ["a", "b", "a", "a", "", "b"].map((g) => countInto(counts, g));
    expect(out.map((o) => o[0]!.value)).toEqual(["1", "1", "2", "3", "1", "2"]);
    expect(countsToState(counts)).toEqual({ a: 3, b: 2, "": 1 });
  });
});

describe("state", () => {
  test("snapshot then restore continues the counts (11, not 1)", () => {
    const first = aggregate([]);
    for (let i = 0; i < 10; i++) first.process("Sign Post", "");
    const state = JSON.parse(JSON.stringify(first.snapshot!()));
    const second = aggregate([]);
    second.restore!(state);
    expect(second.process("Sign Post", "")).toEqual([{ key: "Sign Post", value: "11" }]);
  });

  test("odd group names survive the JSON round trip", () => {
    const counts = new Map([
      ["__proto__", 2],
      ["constructor", 3],
      ["", 1],
      ['a"b', 4],
    ]);
    const back = countsFromState(JSON.parse(JSON.stringify(countsToState(counts))));
    expect([...back]).toEqual([...counts]);
  });

  test("restore replaces the state, not merges it", () => {
    const op = aggregate([]);
    op.process("x", "");
    op.restore!({ y: 5 });
    expect(op.snapshot!()).toEqual({ y: 5 });
  });

  const BAD: [unknown, string][] = [
    [null, "expected an object {group: count}, got null"],
    [[1, 2], "expected an object {group: count}, got an array"],
    ["counts", "expected an object {group: count}, got string"],
    [{ a: 1, b: "2" }, 'count of "b" is "2", expected a whole number >= 0'],
    [{ a: -1 }, 'count of "a" is -1, expected a whole number >= 0'],
    [{ a: 1.5 }, 'count of "a" is 1.5, expected a whole number >= 0'],
    [{ a: null }, 'count of "a" is null, expected a whole number >= 0'],
  ];
  test.each(BAD.map(([state, message]) => [JSON.stringify(state), state, message] as const))(
    "restore(%s) throws and keeps the old state",
    (_label, state, message) => {
      const op = aggregate([]);
      op.process("kept", "");
      expect(() => op.restore!(state)).toThrow(`aggregate state: ${message}`);
      expect(op.snapshot!()).toEqual({ kept: 1 });
    },
  );
});

describe("aggregate factory arguments", () => {
  const BAD: [string[], string][] = [
    [["x"], 'column "x" is not a whole number >= 0'],
    [["-1"], 'column "-1" is not a whole number >= 0'],
    [["1", "2"], "expected 0 to 1 arguments, got 2"],
  ];
  test.each(BAD)("%p -> %p, with usage", (args, message) => {
    expect(() => aggregate(args)).toThrow(message);
    expect(() => aggregate(args)).toThrow("usage: aggregate-wrapper [col]");
  });
});

test("App 1 on trial_data.csv (grep 'Sign' col 6, then count by key) matches Python's csv + Counter", () => {
  const op = aggregate([]);
  const last = new Map<string, string>();
  for (const line of trialDataLines()) {
    for (const g of grepLine("Sign", 6, line)) for (const o of op.process(g.key, g.value)) last.set(o.key, o.value);
  }
  // Computed with: Counter(next(csv.reader([l]))[6] for l in lines if "Sign" in l)
  const want = { "Asset Category": 1, SIGN_POLE: 21, SIGN_REGULATORY: 18, SIGN_WARNING: 6, Regulatory: 3, SIGN_GUIDE: 2 };
  expect(op.snapshot!()).toEqual(want);
  // The last count emitted per key is the final count.
  expect(Object.fromEntries([...last].map(([k, v]) => [k, Number(v)]))).toEqual(want);
});
