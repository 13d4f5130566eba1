/**
 * transform-wrapper: the first n fields, correctly re-quoted.
 */
import { describe, expect, test } from "bun:test";
import type { Output } from "./runtime.ts";
import { HEADER_LINE, SIGN_POST_LINE, SQUARE_POLE_LINE, STREET_NAME_LINE } from "./test_fixtures.ts";
import { transform, transformLine } from "./transform.ts";

describe("transformLine(n, key, value)", () => {
  const ROWS: [number, string, Output[]][] = [
    // [n, value, outputs] (key is always "k")
    [3, SIGN_POST_LINE, [{ key: "k", value: '"77,755","40,345",' }]],
    [3, STREET_NAME_LINE, [{ key: "k", value: '"677,227","612,075",D3-1' }]],
    [5, SQUARE_POLE_LINE, [{ key: "k", value: '"82,816","82,526",P1,Square,"342: POLE, \'\'Square"", 10 ft"' }]],
    [3, HEADER_LINE, [{ key: "k", value: "Sign Asset ID,Asset Location ID,MUTCD Code" }]],
    [1, SIGN_POST_LINE, [{ key: "k", value: '"77,755"' }]],
    // fewer fields than n: what there is
    [3, "a,b", [{ key: "k", value: "a,b" }]],
    [3, "", [{ key: "k", value: "" }]],
    [2, ",", [{ key: "k", value: "," }]],
    // re-quoting is minimal: needless quotes go, needed ones stay
    [2, '"a","b,c",d', [{ key: "k", value: 'a,"b,c"' }]],
    [22, SIGN_POST_LINE, [{ key: "k", value: SIGN_POST_LINE }]],
  ];
  test.each(ROWS)("n=%p %p", (n, value, want) => {
    expect(transformLine(n, "k", value)).toEqual(want);
  });
});

describe("transform factory arguments", () => {
  test("default n is 3", () => {
    expect(transform([]).process("k", "a,b,c,d")).toEqual([{ key: "k", value: "a,b,c" }]);
  });

  const BAD: [string[], string][] = [
    [["x"], 'field count "x" is not a whole number >= 1'],
    [["0"], 'field count "0" is not a whole number >= 1'],
    [["-3"], 'field count "-3" is not a whole number >= 1'],
    [["2", "3"], 'expected 0 to 1 arguments, got 2 ("2" "3")'],
  ];
  test.each(BAD)("%p -> %p, with usage", (args, message) => {
    expect(() => transform(args)).toThrow(message);
    expect(() => transform(args)).toThrow("usage: transform-wrapper [n]");
  });
});
