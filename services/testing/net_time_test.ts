/** The test address plan and the time factor: what the environment may say, and the errors. */
import { describe, expect, test } from "bun:test";
import { parseTestNetBase, testNet } from "./net.ts";
import { parseTimeScale, scaled } from "./time.ts";

/** One test per row: the parsed value, or (a string) a substring of the error. */
function parseTable(parse: (raw: string | undefined) => number, rows: [string | undefined, number | string][]): void {
  for (const [raw, want] of rows) {
    test(`${JSON.stringify(raw)} -> ${want}`, () => {
      if (typeof want === "number") expect(parse(raw)).toBe(want);
      else expect(() => parse(raw)).toThrow(want);
    });
  }
}

describe("RAINSTORM_TEST_NET", () => {
  const ROWS: [string | undefined, number | string][] = [
    [undefined, 0],
    ["", 0],
    ["0", 0],
    ["2", 2],
    [" 17 ", 17],
    ["254", 254],
    ["255", "from 0 to 254"],
    ["-1", "from 0 to 254"],
    ["1.5", "from 0 to 254"],
    ["abc", "from 0 to 254"],
    ["0x2", "from 0 to 254"],
  ];
  parseTable(parseTestNetBase, ROWS);
  test("testNet(n) is 127.<base>.<n>; n out of range is refused", () => {
    expect(testNet(35, 0)).toBe("127.0.35");
    expect(testNet(35, 2)).toBe("127.2.35");
    expect(() => testNet(256, 0)).toThrow("from 0 to 255");
    expect(() => testNet(1.5, 0)).toThrow("from 0 to 255");
  });
});

describe("RAINSTORM_TEST_TIME_SCALE", () => {
  const ROWS: [string | undefined, number | string][] = [
    [undefined, 1],
    ["", 1],
    ["1", 1],
    ["2", 2],
    ["0.5", 0.5],
    ["0", "from 0.1 to 100"],
    ["-2", "from 0.1 to 100"],
    ["1000", "from 0.1 to 100"],
    ["slow", "from 0.1 to 100"],
  ];
  parseTable(parseTimeScale, ROWS);
  test("scaled multiplies and rounds up to a whole millisecond", () => {
    expect(scaled(2000, 1)).toBe(2000);
    expect(scaled(2000, 2.5)).toBe(5000);
    expect(scaled(333, 1.5)).toBe(500);
    expect(scaled(1, 0.1)).toBe(1);
  });
});
