/**
 * echo-wrapper: identity. Measures the pipeline itself (no work in the operator) and checks that
 * a job moves every tuple exactly as it came.
 */
import { expectArgCount } from "./args.ts";
import type { Operator, OperatorFactory, Output } from "./runtime.ts";

export const ECHO_USAGE = "echo-wrapper  (alias echo): outputs every input unchanged (same key, same value).";

export function echoLine(key: string, value: string): Output[] {
  return [{ key, value }];
}

export const echo: OperatorFactory = (args): Operator => {
  expectArgCount(args, 0, 0, ECHO_USAGE);
  return { name: "echo", usage: ECHO_USAGE, process: echoLine };
};
