/**
 * grep-wrapper2: matching lines projected onto some CSV fields, re-quoted, key unchanged.
 */
import { describe, expect, test } from "bun:test";
import { grep2, grep2Line } from "./grep2.ts";
import type { Output } from "./runtime.ts";
import { SIGN_POST_LINE, SQUARE_POLE_LINE, STREET_NAME_LINE } from "./test_fixtures.ts";

describe("grep2Line(pattern, cols, key, value)", () => {
  const ROWS: [string, number[], string, Output[]][] = [
    // [pattern, cols, value, outputs] (key is always "k")
    ["Sign Post", [4], SIGN_POST_LINE, [{ key: "k", value: "Sign Post" }]],
    ["Sign Post", [0, 4], SIGN_POST_LINE, [{ key: "k", value: '"77,755",Sign Post' }]],
    ["Sign Post", [4, 0, 1], SIGN_POST_LINE, [{ key: "k", value: 'Sign Post,"77,755","40,345"' }]],
    ["Sign Post", [2, 3], SIGN_POST_LINE, [{ key: "k", value: "," }]],
    ["Sign Post", [4], STREET_NAME_LINE, []],
    ["Square", [4, 5], SQUARE_POLE_LINE, [{ key: "k", value: '"342: POLE, \'\'Square"", 10 ft",10 ft' }]],
    // no columns: the whole line, parsed and re-formatted (identical for canonical lines)
    ["Sign Post", [], SIGN_POST_LINE, [{ key: "k", value: SIGN_POST_LINE }]],
    ["b", [], '"b",c', [{ key: "k", value: "b,c" }]],
    // a column the line lacks reads as ""
    ["x", [0, 7], "x,y", [{ key: "k", value: "x," }]],
    ["x", [9], "x,y", [{ key: "k", value: '""' }]],
    ["Sign Post", [0, 0], SIGN_POST_LINE, [{ key: "k", value: '"77,755","77,755"' }]],
  ];
  test.each(ROWS)("grep2 %p cols %p", (pattern, cols, value, want) => {
    expect(grep2Line(pattern, cols, "k", value)).toEqual(want);
  });
});

describe("grep2 factory arguments", () => {
  const BAD: [string[], string][] = [
    [[], "expected at least 1 argument, got none"],
    [["Sign Post", "x"], 'column "x" is not a whole number >= 0'],
    [["Sign Post", "1", "-2"], 'column "-2" is not a whole number >= 0'],
  ];
  test.each(BAD)("%p -> %p, with usage", (args, message) => {
    expect(() => grep2(args)).toThrow(message);
    expect(() => grep2(args)).toThrow("usage: grep-wrapper2 <pattern> [col...]");
  });

  test("pattern only, and pattern with columns", () => {
    expect(grep2(["Sign Post"]).process("trial_data.csv:3", SIGN_POST_LINE)).toEqual([{ key: "trial_data.csv:3", value: SIGN_POST_LINE }]);
    expect(grep2(["Sign Post", "0", "4"]).process("trial_data.csv:3", SIGN_POST_LINE)).toEqual([{ key: "trial_data.csv:3", value: '"77,755",Sign Post' }]);
  });
});
