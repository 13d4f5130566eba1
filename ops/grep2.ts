/**
 * grep-wrapper2 <pattern> [col...]: keep the lines that contain pattern and project them onto
 * some of their CSV fields (a grep followed by a cut), keeping the input key.
 */
import { expectArgCount, parseColumn } from "./args.ts";
import { formatCsvRecord, parseCsvLine } from "./csv.ts";
import type { Operator, OperatorFactory, Output } from "./runtime.ts";

export const GREP2_USAGE =
  "grep-wrapper2 <pattern> [col...]  (alias grep2): pass inputs whose value contains <pattern> " +
  "(plain substring, case-sensitive); value := the listed CSV fields (0-based, in the order given, " +
  '"" for a field the line lacks) re-formatted as CSV, or the whole line re-formatted when no ' +
  "column is given; key unchanged.";

/** The operator as a pure function of one input; `cols` empty means all fields. */
export function grep2Line(pattern: string, cols: readonly number[], key: string, value: string): Output[] {
  if (!value.includes(pattern)) return [];
  const fields = parseCsvLine(value);
  const picked = cols.length === 0 ? fields : cols.map((c) => fields[c] ?? "");
  return [{ key, value: formatCsvRecord(picked) }];
}

export const grep2: OperatorFactory = (args): Operator => {
  expectArgCount(args, 1, Number.POSITIVE_INFINITY, GREP2_USAGE);
  const [pattern, ...colTexts] = args as [string, ...string[]];
  const cols = colTexts.map((c) => parseColumn(c, GREP2_USAGE));
  return { name: "grep2", usage: GREP2_USAGE, process: (key, value) => grep2Line(pattern, cols, key, value) };
};
