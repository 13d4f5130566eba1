import { expect, test } from "bun:test";
import { csvField, formatCsvRecord, parseCsvLine } from "../../../ops/csv.ts";
import type { JobRun } from "../../../services/testing/rainstorm_client.ts";
import { checkApp1, checkApp2, checkIncreasing, destBytesOf, notIncreasing } from "./checks.ts";
import { APP1, APP2, genLine, referenceOf } from "./input.ts";

const LINES = 2000;
const ref = referenceOf(LINES);

/** A run that read `lines` and streamed `outputs`. */
const runOf = (outputs: string[], lines = LINES): JobRun => ({ events: [], outputs, done: { tuples_read: lines } });

/** App 1's correct outputs: one running count per matching line. */
function app1Outputs(): string[] {
  const counts = new Map<string, number>();
  const out: string[] = [];
  for (let n = 1; n <= LINES; n++) {
    const line = genLine(n);
    if (!line.includes(APP1.pattern)) continue;
    const k = csvField(line, APP1.col) ?? "";
    counts.set(k, (counts.get(k) ?? 0) + 1);
    out.push(`${k}\t${counts.get(k)}`);
  }
  return out;
}

/** App 2's correct outputs: the first 3 fields of each matching line, keyed by its field 4. */
function app2Outputs(): string[] {
  const out: string[] = [];
  for (let n = 1; n <= LINES; n++) {
    const line = genLine(n);
    if (line.includes(APP2.pattern)) out.push(`${csvField(line, APP2.col) ?? ""}\t${formatCsvRecord(parseCsvLine(line).slice(0, 3))}`);
  }
  return out;
}

/** Collects what a check reports as a mismatch. */
function collector() {
  const seen: string[] = [];
  return { seen, mismatch: (w: string) => (seen.push(w), `**MISMATCH**: ${w}`) };
}

test("App 1: the right outputs pass; a lost update, a wrong count or a short read is a mismatch", () => {
  const good = app1Outputs();
  const m = collector();
  expect(checkApp1(m.mismatch, "a1", runOf(good), ref)).toStartWith("ok (");
  expect(checkApp1(m.mismatch, "a1", runOf(good.slice(0, -1)), ref)).toContain("outputs, reference");
  const [k] = good[good.length - 1]!.split("\t");
  expect(checkApp1(m.mismatch, "a1", runOf([...good.slice(0, -1), `${k}\t999`]), ref)).toContain("groups differ");
  expect(checkApp1(m.mismatch, "a1", runOf(good, LINES - 1), ref)).toContain(`tuples_read ${LINES - 1}`);
  expect(m.seen).toHaveLength(3);
});

test("App 2: the right outputs pass; a duplicate, a changed value or a grep -c disagreement is a mismatch", () => {
  const good = app2Outputs();
  const m = collector();
  expect(checkApp2(m.mismatch, "a2", runOf(good), ref, ref.app2)).toBe(`ok (${ref.app2} lines, each value checked)`);
  expect(checkApp2(m.mismatch, "a2", runOf([...good.slice(1), good[2]!]), ref, undefined)).toContain("1 duplicate outputs");
  expect(checkApp2(m.mismatch, "a2", runOf([`${good[0]!}x`, ...good.slice(1)]), ref, undefined)).toContain(
    "1 outputs are not a matching input's first 3 fields",
  );
  expect(checkApp2(m.mismatch, "a2", runOf(good), ref, ref.app2 + 1)).toContain("grep -c says");
  expect(m.seen).toHaveLength(3);
});

test.each([
  { outputs: ["a\t1", "b\t1", "a\t2", "b\t2"], bad: 0 },
  { outputs: ["a\t1", "a\t1"], bad: 1 },
  { outputs: ["a\t2", "a\t1", "a\t3"], bad: 1 },
  { outputs: ["k\tx\t1", "k\tx\t2"], bad: 0 },
])("notIncreasing($outputs) = $bad", ({ outputs, bad }) => {
  expect(notIncreasing(outputs)).toBe(bad);
  const m = collector();
  expect(checkIncreasing(m.mismatch, "x", outputs)).toBe(
    bad === 0 ? "counts strictly increase" : `**MISMATCH**: x: ${bad} outputs do not increase their key's count`,
  );
});

test("dest bytes of outputs: one line each, in UTF-8", () => {
  expect(destBytesOf(["a\t1", "é\t2"])).toBe(4 + 5);
});
