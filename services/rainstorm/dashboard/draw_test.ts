/** The page's drawings: ring positions, sparkline points, and the ring's SVG. */
import { expect, test } from "bun:test";
import { ringFraction, ringPoint, ringSvg, sparkline, sparkPoints } from "./draw.ts";

test("ringFraction: the token's first 32 bits over 2^32", () => {
  const table: [string, number][] = [
    ["0000000000000000", 0],
    ["8000000000000000", 0.5],
    ["c000000012345678", 0.75],
    ["ffffffffffffffff", (2 ** 32 - 1) / 2 ** 32],
  ];
  for (const [token, want] of table) expect([token, ringFraction(token)]).toEqual([token, want]);
});

test("ringPoint: clockwise from 12 o'clock", () => {
  const table: [number, [number, number]][] = [
    [0, [10, 0]],
    [0.25, [20, 10]],
    [0.5, [10, 20]],
    [0.75, [0, 10]],
  ];
  for (const [f, want] of table) expect([f, ringPoint(f, 10, 10)]).toEqual([f, want]);
});

test("sparkPoints: the largest value at the top, zero at the bottom, evenly spread", () => {
  const table: [number[], string][] = [
    [[0, 5, 10], "0,10 5,5 10,0"],
    [[0, 0], "0,10 10,10"],
    [[3], "0,0"],
  ];
  for (const [values, want] of table) expect([values, sparkPoints(values, 10, 10)]).toEqual([values, want]);
  expect(sparkline([1])).toBe("");
  expect(sparkline([1, 2])).toContain("<polyline");
});

test("ringSvg: one node dot per node, one file dot per file, names escaped", () => {
  const svg = ringSvg(
    [
      { host: "127.0.0.1", token: "0000000000000000" },
      { host: "127.0.0.2", token: "8000000000000000" },
    ],
    [{ name: "a<b>.csv", token: "4000000000000000" }],
  );
  expect([svg.match(/class="node"/g)?.length, svg.match(/class="file"/g)?.length]).toEqual([2, 1]);
  expect(svg).toContain("a&#60;b&#62;.csv");
  expect(svg).not.toContain("a<b>");
});
