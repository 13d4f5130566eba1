/**
 * grep-wrapper <pattern> <col>: keep the lines that contain pattern; key them by one CSV field,
 * so a following stage (aggregate) partitions and counts by that field.
 */
import { expectArgCount, parseColumn } from "./args.ts";
import { csvField } from "./csv.ts";
import type { Operator, OperatorFactory, Output } from "./runtime.ts";

export const GREP_USAGE =
  "grep-wrapper <pattern> <col>  (alias grep): pass inputs whose value contains <pattern> " +
  '(plain substring, case-sensitive); key := CSV field <col> (0-based) of the value, or "" when ' +
  "the line has fewer fields; value := the whole line.";

/** The operator as a pure function of one input. */
export function grepLine(pattern: string, col: number, value: string): Output[] {
  if (!value.includes(pattern)) return [];
  return [{ key: csvField(value, col) ?? "", value }];
}

export const grep: OperatorFactory = (args): Operator => {
  expectArgCount(args, 2, 2, GREP_USAGE);
  const [pattern, colText] = args as [string, string];
  // An empty pattern is allowed: it matches every line, as in Unix grep.
  const col = parseColumn(colText, GREP_USAGE);
  return { name: "grep", usage: GREP_USAGE, process: (_key, value) => grepLine(pattern, col, value) };
};
