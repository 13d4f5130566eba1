/**
 * Every job's output is checked against the reference computed while generating its input. A check
 * returns the text of the tables' check column; a failed one goes through `mismatch` (which records
 * it for the Problems list and the exit code) and returns its text.
 */
import { csvField, formatCsvRecord, parseCsvLine } from "../../../ops/csv.ts";
import type { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import type { JobRun } from "../../../services/testing/rainstorm_client.ts";
import { int } from "../stats.ts";
import { APP2, type GrepTransformApp, genLine, lineOfOutput, type Reference } from "./input.ts";

export type Mismatch = (what: string) => string;

/** Split an App 1 output `key\tcount`. */
function keyCount(line: string): [string, number] {
  const tab = line.lastIndexOf("\t");
  return [line.slice(0, tab), Number(line.slice(tab + 1))];
}

/** App 1: one count update per matching line, and the final count of each group = the reference. */
export function checkApp1(mismatch: Mismatch, label: string, run: JobRun, ref: Reference): string {
  const problems: string[] = [];
  if (run.done?.tuples_read !== ref.lines) problems.push(`tuples_read ${run.done?.tuples_read}, file has ${ref.lines} lines`);
  if (run.outputs.length !== ref.app1) problems.push(`${run.outputs.length} outputs, reference ${ref.app1} matching lines`);
  const final = new Map<string, number>();
  for (const line of run.outputs) {
    const [key, n] = keyCount(line);
    final.set(key, Math.max(final.get(key) ?? 0, n));
  }
  const keys = new Set([...final.keys(), ...ref.app1Counts.keys()]);
  const bad = [...keys].filter((k) => final.get(k) !== ref.app1Counts.get(k));
  if (bad.length > 0)
    problems.push(
      `${bad.length} of ${keys.size} groups differ (e.g. ${JSON.stringify(bad[0])}: got ${final.get(bad[0]!)}, want ${ref.app1Counts.get(bad[0]!)})`,
    );
  return problems.length === 0 ? `ok (${ref.app1Counts.size} groups, final counts = reference)` : mismatch(`${label}: ${problems.join("; ")}`);
}

/**
 * App 2 (or `app`, another grep | transform): exactly one output per matching line, each the first
 * `fields` fields of its line, re-quoted, keyed by its field `col`. `expected` = matching lines.
 */
export function checkApp2(
  mismatch: Mismatch,
  label: string,
  run: JobRun,
  ref: Reference,
  grepCount: number | undefined,
  app: GrepTransformApp = APP2,
  expected = ref.app2,
): string {
  const problems: string[] = [];
  if (run.done?.tuples_read !== ref.lines) problems.push(`tuples_read ${run.done?.tuples_read}, file has ${ref.lines} lines`);
  if (grepCount !== undefined && grepCount !== expected) problems.push(`grep -c says ${grepCount}, in-script reference ${expected}`);
  if (run.outputs.length !== expected) problems.push(`${run.outputs.length} outputs, reference ${expected} matching lines`);
  const seen = new Set<number>();
  let wrong = 0;
  let firstWrong = "";
  for (const line of run.outputs) {
    const tab = line.indexOf("\t");
    const key = line.slice(0, tab);
    const value = line.slice(tab + 1);
    const n = lineOfOutput(value);
    const input = Number.isInteger(n) && n >= 1 && n <= ref.lines ? genLine(n) : undefined;
    const ok =
      input !== undefined &&
      input.includes(app.pattern) &&
      key === (csvField(input, app.col) ?? "") &&
      value === formatCsvRecord(parseCsvLine(input).slice(0, app.fields));
    if (!ok) {
      wrong++;
      firstWrong ||= line.slice(0, 120);
    } else seen.add(n);
  }
  if (wrong > 0) problems.push(`${wrong} outputs are not a matching input's first ${app.fields} fields (e.g. ${JSON.stringify(firstWrong)})`);
  if (seen.size !== run.outputs.length - wrong) problems.push(`${run.outputs.length - wrong - seen.size} duplicate outputs`);
  return problems.length === 0 ? `ok (${int(expected)} lines, each value checked)` : mismatch(`${label}: ${problems.join("; ")}`);
}

/** App 1 outputs that do not increase their key's count (reached the sink out of order, or repeated). */
export function notIncreasing(outputs: readonly string[]): number {
  const last = new Map<string, number>();
  let bad = 0;
  for (const line of outputs) {
    const [key, n] = keyCount(line);
    if (!(n > (last.get(key) ?? 0))) bad++;
    last.set(key, Math.max(n, last.get(key) ?? 0));
  }
  return bad;
}

/** App 1 under exactly-once: every key's counts strictly increase as they reach the sink. */
export function checkIncreasing(mismatch: Mismatch, label: string, outputs: readonly string[]): string {
  const bad = notIncreasing(outputs);
  return bad === 0 ? "counts strictly increase" : mismatch(`${label}: ${bad} outputs do not increase their key's count`);
}

/** A file's size by HyDFS stat. */
export async function hydfsSize(hydfs: HydfsTestClient, name: string): Promise<number> {
  return ((await hydfs.json(1, "GET", `/stat?name=${encodeURIComponent(name)}`)) as { size: number }).size;
}

/** Bytes of dest when it holds exactly `outputs` (one `key\tvalue\n` each). */
export const destBytesOf = (outputs: readonly string[]): number => outputs.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);

/** dest holds exactly the streamed outputs: its size is theirs. */
export async function checkDest(
  mismatch: Mismatch,
  hydfs: HydfsTestClient,
  label: string,
  dest: string,
  outputs: readonly string[],
): Promise<{ bytes: number; check: string }> {
  const bytes = await hydfsSize(hydfs, dest);
  const want = destBytesOf(outputs);
  return { bytes, check: bytes === want ? "dest = outputs" : mismatch(`${label}: dest ${dest} has ${bytes} bytes, the streamed outputs ${want}`) };
}
