/** The in-test references for RainStorm jobs: App 1's counts, its exact dest, and the multiset diff. */
import { describe, expect, test } from "bun:test";
import { app1Counts, multisetDiff, runningCountLines } from "./reference.ts";
import { countViolations } from "./rainstorm_client.ts";

describe("app1Counts and runningCountLines", () => {
  const lines = ["1,SIGN_A,x", "2,SIGN_B,y", "3,other,z", '4,"SIGN_A, quoted",w', "5,SIGN_A,v"];
  test("counts matching lines by column; a quoted field is one key", () => {
    expect(Object.fromEntries(app1Counts(lines, "SIGN_", 1))).toEqual({ SIGN_A: 2, SIGN_B: 1, "SIGN_A, quoted": 1 });
  });
  test("dest is key\\t1..N per key", () => {
    expect(
      runningCountLines(
        new Map([
          ["b", 2],
          ["a", 1],
        ]),
      ),
    ).toEqual(["a\t1", "b\t1", "b\t2"]);
    expect(runningCountLines(new Map())).toEqual([]);
  });
});

describe("multisetDiff", () => {
  const ROWS: [string, string[], string[], string[]][] = [
    ["equal, any order", ["b", "a", "a"], ["a", "b", "a"], []],
    ["a duplicate is extra", ["a", "a"], ["a"], ['extra 1x "a"']],
    ["a loss is missing", ["a"], ["a", "b"], ['missing 1x "b"']],
    ["same count, wrong content", ["a\t2", "a\t2"], ["a\t1", "a\t2"], ['missing 1x "a\\t1"', 'extra 1x "a\\t2"']],
    ["both empty", [], [], []],
  ];
  for (const [name, actual, expected, want] of ROWS) test(name, () => expect(multisetDiff(actual, expected)).toEqual(want));
  test("at most max problems, then how many more", () => {
    expect(multisetDiff(["x", "y", "z"], [], 2)).toEqual(['extra 1x "x"', 'extra 1x "y"', "... and 1 more"]);
  });
});

describe("countViolations: dest content, not only its length", () => {
  const reference = new Map([["k", 2]]);
  const outputs = ["k\t1", "k\t2"];
  test("exact run", () => expect(countViolations(outputs, ["k\t2", "k\t1"], reference)).toEqual([]));
  test("right number of distinct lines, wrong content", () => {
    expect(countViolations(outputs, ["k\t1", "k\t3"], reference).join("; ")).toContain("dest: missing 1x");
  });
  test("a duplicate in dest", () => expect(countViolations(outputs, ["k\t1", "k\t2", "k\t2"], reference).join("; ")).toContain('dest: extra 1x "k\\t2"'));
  test("a count emitted twice", () => expect(countViolations(["k\t1", "k\t1", "k\t2"], outputs, reference).join("; ")).toContain("count 1 emitted after 1"));
});
