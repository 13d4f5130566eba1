/**
 * transform-wrapper [n]: keep the first n CSV fields of every line. Fields are parsed and
 * re-quoted, so a field like "77,755" stays one field instead of being cut at its comma.
 */
import { expectArgCount, parseWholeNumber } from "./args.ts";
import { formatCsvRecord, parseCsvLine } from "./csv.ts";
import type { Operator, OperatorFactory, Output } from "./runtime.ts";

export const TRANSFORM_USAGE =
  "transform-wrapper [n]  (alias transform): value := the first <n> CSV fields of the value " +
  "(default 3; fewer when the line is shorter), re-formatted as CSV; key unchanged. Every input " +
  "gives one output.";

export const DEFAULT_FIELDS = 3;

/** The operator as a pure function of one input. */
export function transformLine(n: number, key: string, value: string): Output[] {
  return [{ key, value: formatCsvRecord(parseCsvLine(value).slice(0, n)) }];
}

export const transform: OperatorFactory = (args): Operator => {
  expectArgCount(args, 0, 1, TRANSFORM_USAGE);
  // n = 0 would turn every line into "": surely a mistake, so it is refused.
  const n = args[0] === undefined ? DEFAULT_FIELDS : parseWholeNumber(args[0], "field count", TRANSFORM_USAGE, 1);
  return { name: "transform", usage: TRANSFORM_USAGE, process: (key, value) => transformLine(n, key, value) };
};
