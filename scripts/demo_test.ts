/**
 * The demo's pure parts: reading the count job's output, the single-process reference count, and
 * the comparison table it prints. (The demo itself starts a cluster: run it with `npm run demo`.)
 */
import { describe, expect, test } from "bun:test";
import { countsEqual, countsTable, finalCountsOf, referenceCounts } from "./demo.ts";

describe("demo counts", () => {
  test("finalCountsOf: each key's largest count; the key is everything before the last tab", () => {
    const cases: [string, [string, number][]][] = [
      ["", []],
      [
        "Warning\t1\nWarning\t2\nStop\t1\n",
        [
          ["Warning", 2],
          ["Stop", 1],
        ],
      ],
      ["Stop\t3\nStop\t2\n", [["Stop", 3]]],
      ["a\tb\t4\n\n", [["a\tb", 4]]],
    ];
    for (const [text, want] of cases) expect([text, [...finalCountsOf(text)]]).toEqual([text, want]);
  });

  test("referenceCounts: lines with SIGN_ counted by CSV column 6 (quoted commas kept in one field)", () => {
    const csv = [
      "X,Y,OBJECTID,Sign_Type,Size_,Supplement,Category",
      '1,2,3,SIGN_A,"30,x",no,Warning',
      "1,2,3,SIGN_B,30,no,Stop",
      "1,2,3,SIGN_C,30,no,Warning",
      "1,2,3,OTHER,30,no,Stop",
      "1,2,3,SIGN_D",
      "",
    ].join("\n");
    expect([...referenceCounts(csv)]).toEqual([
      ["Warning", 2],
      ["Stop", 1],
      ["", 1],
    ]);
  });

  test("countsEqual: the same categories with the same counts, nothing missing or extra", () => {
    const m = (...kv: [string, number][]) => new Map(kv);
    const cases: [Map<string, number>, Map<string, number>, boolean][] = [
      [m(["a", 1], ["b", 2]), m(["b", 2], ["a", 1]), true],
      [m(), m(), true],
      [m(["a", 1]), m(["a", 2]), false],
      [m(["a", 1]), m(["a", 1], ["b", 1]), false],
      [m(["a", 1], ["b", 1]), m(["a", 1]), false],
    ];
    for (const [got, ref, want] of cases) expect([[...got], [...ref], countsEqual(got, ref)]).toEqual([[...got], [...ref], want]);
  });

  test("countsTable: a header, then the categories most first, with the reference's count (0 if it has none)", () => {
    const table = countsTable(
      new Map([
        ["Stop", 1],
        ["Warning", 12],
        ["Odd", 3],
      ]),
      new Map([
        ["Warning", 12],
        ["Stop", 2],
      ]),
    );
    expect(table).toEqual([
      "  CATEGORY             RAINSTORM REFERENCE",
      "  Warning                     12        12",
      "  Odd                          3         0",
      "  Stop                         1         2",
    ]);
  });
});
