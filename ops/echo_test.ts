/**
 * echo-wrapper: identity.
 */
import { describe, expect, test } from "bun:test";
import { echo, echoLine } from "./echo.ts";
import { SQUARE_POLE_LINE } from "./test_fixtures.ts";

describe("echo", () => {
  const ROWS: [string, string][] = [
    ["trial_data.csv:66", SQUARE_POLE_LINE],
    ["", ""],
    ['k"\n', "v\u0000\u2028"],
  ];
  test.each(ROWS)("key %p passes unchanged", (key, value) => {
    expect(echoLine(key, value)).toEqual([{ key, value }]);
    expect(echo([]).process(key, value)).toEqual([{ key, value }]);
  });

  test("takes no arguments", () => {
    expect(() => echo(["x"])).toThrow('expected 0 arguments, got 1 ("x")\nusage: echo-wrapper');
  });
});
