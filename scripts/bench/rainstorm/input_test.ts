import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCsvLine } from "../../../ops/csv.ts";
import { APP1, assetId, genLine, lineOfOutput, referenceOf, shares, TASKS, writeInput } from "./input.ts";

test.each([
  [7, "7"],
  [999, "999"],
  [1000, '"1,000"'],
  [1234567, '"1,234,567"'],
])("assetId(%d) = %s", (n, want) => {
  expect(assetId(n)).toBe(want);
});

test("line 1 is the header; line n carries n as its Sign Asset ID, and an output's first field names its line", () => {
  expect(parseCsvLine(genLine(1))[0]).toBe("Sign Asset ID");
  expect(lineOfOutput(genLine(1))).toBe(1);
  for (const n of [2, 3, 999, 1000, 123_456]) {
    expect(parseCsvLine(genLine(n))[0]).toBe(assetId(n).replaceAll('"', ""));
    expect(lineOfOutput(genLine(n))).toBe(n);
  }
});

test("writeInput writes the lines its reference counts (bytes = the file's size)", () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-input-test-"));
  try {
    const ref = writeInput(join(dir, "in.csv"), 5000);
    expect(statSync(join(dir, "in.csv")).size).toBe(ref.bytes);
    expect(ref).toEqual(referenceOf(5000));
    let app1 = 0;
    for (let n = 1; n <= 5000; n++) if (genLine(n).includes(APP1.pattern)) app1++;
    expect(ref.app1).toBe(app1);
    expect([...ref.app1Counts.values()].reduce((a, b) => a + b, 0)).toBe(app1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("shares: stage 0 splits every line, stage 1 every keyed tuple, over TASKS tasks", () => {
  const ref = referenceOf(3000);
  const [s0, s1] = shares("in.csv", ref.lines, ref.app1Counts);
  expect(s0).toHaveLength(TASKS);
  expect(s0.reduce((a, b) => a + b, 0)).toBe(3000);
  expect(s1.reduce((a, b) => a + b, 0)).toBe(ref.app1);
});
