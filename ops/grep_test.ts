/**
 * grep-wrapper: the pure function on tables of real traffic-sign lines, and argument checks.
 */
import { describe, expect, test } from "bun:test";
import { grep, grepLine } from "./grep.ts";
import type { Output } from "./runtime.ts";
import { HEADER_LINE, SIGN_POST_LINE, SQUARE_POLE_LINE, STREET_NAME_LINE } from "./test_fixtures.ts";

describe("grepLine(pattern, col, value)", () => {
  const ROWS: [string, number, string, Output[]][] = [
    // [pattern, col, value, outputs]
    ["Sign Post", 4, SIGN_POST_LINE, [{ key: "Sign Post", value: SIGN_POST_LINE }]],
    // col 0 is the quoted "77,755": the key is the field, not the text up to the first comma
    ["Sign Post", 0, SIGN_POST_LINE, [{ key: "77,755", value: SIGN_POST_LINE }]],
    ["Sign Post", 2, SIGN_POST_LINE, [{ key: "", value: SIGN_POST_LINE }]],
    ["Sign Post", 4, STREET_NAME_LINE, []],
    ["Street Name", 3, STREET_NAME_LINE, [{ key: "FAIR OAKS DR", value: STREET_NAME_LINE }]],
    ["Square", 4, SQUARE_POLE_LINE, [{ key: "342: POLE, ''Square\", 10 ft", value: SQUARE_POLE_LINE }]],
    ["SIGN_POLE", 6, SQUARE_POLE_LINE, [{ key: "SIGN_POLE", value: SQUARE_POLE_LINE }]],
    ["Asset", 1, HEADER_LINE, [{ key: "Asset Location ID", value: HEADER_LINE }]],
    // case-sensitive plain substring, not a regular expression
    ["sign post", 4, SIGN_POST_LINE, []],
    ["Sign.Post", 4, SIGN_POST_LINE, []],
    ["a.b", 0, "xa.by,z", [{ key: "xa.by", value: "xa.by,z" }]],
    // a line with fewer fields than col: key ""
    ["Sign Post", 22, SIGN_POST_LINE, [{ key: "", value: SIGN_POST_LINE }]],
    ["x", 5, "x,y", [{ key: "", value: "x,y" }]],
    // the empty pattern matches everything, even the empty line
    ["", 0, "", [{ key: "", value: "" }]],
    ["", 1, "a,b", [{ key: "b", value: "a,b" }]],
  ];
  test.each(ROWS)("grep %p col %p", (pattern, col, value, want) => {
    expect(grepLine(pattern, col, value)).toEqual(want);
  });

  test("the key of the input is ignored", () => {
    const op = grep(["Sign Post", "4"]);
    expect(op.process("trial_data.csv:3", SIGN_POST_LINE)).toEqual(op.process("other", SIGN_POST_LINE));
  });
});

describe("grep factory arguments", () => {
  const BAD: [string[], string][] = [
    [[], "expected 2 arguments, got none"],
    [["Sign Post"], 'expected 2 arguments, got 1 ("Sign Post")'],
    [["Sign", "Post", "4"], 'expected 2 arguments, got 3 ("Sign" "Post" "4")'],
    [["Sign Post", "x"], 'column "x" is not a whole number >= 0 (columns are 0-based)'],
    [["Sign Post", "-1"], 'column "-1" is not a whole number >= 0'],
    [["Sign Post", "1.5"], 'column "1.5" is not a whole number >= 0'],
    [["Sign Post", ""], 'column "" is not a whole number >= 0'],
    [["Sign Post", "1e2"], 'column "1e2" is not a whole number >= 0'],
  ];
  test.each(BAD)("%p -> %p, with usage", (args, message) => {
    expect(() => grep(args)).toThrow(message);
    expect(() => grep(args)).toThrow("usage: grep-wrapper <pattern> <col>");
  });

  test("good arguments build the operator", () => {
    const op = grep(["Sign Post", "04"]);
    expect(op.name).toBe("grep");
    expect(op.snapshot).toBeUndefined();
    expect(op.process("k", SIGN_POST_LINE)).toEqual([{ key: "Sign Post", value: SIGN_POST_LINE }]);
  });
});
