/**
 * The built-in operators by canonical name, and the names they answer to. The engine uses this to
 * validate built-in operator names before a job starts; the multi-call binary uses it to dispatch.
 */
import { AGGREGATE_USAGE, aggregate } from "./aggregate.ts";
import { ECHO_USAGE, echo } from "./echo.ts";
import { GREP_USAGE, grep } from "./grep.ts";
import { GREP2_USAGE, grep2 } from "./grep2.ts";
import type { OperatorFactory } from "./runtime.ts";
import { TRANSFORM_USAGE, transform } from "./transform.ts";

/** Factories by canonical (short) name. */
export const OPERATORS: Record<string, OperatorFactory> = { grep, grep2, transform, aggregate, echo };

/**
 * Built-in operators whose outputs depend on the input alone (no state, no clock, no randomness),
 * by canonical name. The engine relies on it twice: under exactly-once they skip the task log
 * (a replay gives the same outputs with the same ids), and only stages of them may autoscale.
 */
export const STATELESS_OPERATORS: ReadonlySet<string> = new Set(["grep", "grep2", "transform", "echo"]);

/** Whether `name` (any accepted form) is a stateless built-in operator. */
export function isStatelessOperator(name: string): boolean {
  const canonical = canonicalOperatorName(name);
  return canonical !== undefined && STATELESS_OPERATORS.has(canonical);
}

/** Usage by canonical name, for --help and for the engine's error messages. */
export const OPERATOR_USAGES: Record<string, string> = {
  grep: GREP_USAGE,
  grep2: GREP2_USAGE,
  transform: TRANSFORM_USAGE,
  aggregate: AGGREGATE_USAGE,
  echo: ECHO_USAGE,
};

/**
 * Every accepted name -> canonical name. The "-wrapper" forms are the seed's names (grep2's is
 * grep-wrapper2, not grep2-wrapper); both forms are linked in dist/ops/.
 */
export const OPERATOR_ALIASES: Readonly<Record<string, string>> = {
  grep: "grep",
  "grep-wrapper": "grep",
  grep2: "grep2",
  "grep-wrapper2": "grep2",
  transform: "transform",
  "transform-wrapper": "transform",
  aggregate: "aggregate",
  "aggregate-wrapper": "aggregate",
  echo: "echo",
  "echo-wrapper": "echo",
};

/** All accepted names, short and "-wrapper" forms: the symlinks in dist/ops/. */
export const OPERATOR_NAMES: readonly string[] = Object.keys(OPERATOR_ALIASES);

/** Canonical name for any accepted name, or undefined for a name that is not built in. */
export function canonicalOperatorName(name: string): string | undefined {
  return Object.hasOwn(OPERATOR_ALIASES, name) ? OPERATOR_ALIASES[name] : undefined;
}

/** Factory for any accepted name, or undefined. */
export function operatorFactory(name: string): OperatorFactory | undefined {
  const canonical = canonicalOperatorName(name);
  return canonical === undefined ? undefined : OPERATORS[canonical];
}
