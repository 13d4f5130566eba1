/**
 * aggregate-wrapper [col]: running count per key, the stateful operator. Its counts are the state
 * that snapshot/restore carry across a restart, so a restarted task continues at 11, not 1.
 */
import { expectArgCount, parseColumn } from "./args.ts";
import { csvField } from "./csv.ts";
import type { Operator, OperatorFactory, Output } from "./runtime.ts";

export const AGGREGATE_USAGE =
  "aggregate-wrapper [col]  (alias aggregate): running count per group, where the group is CSV " +
  'field <col> (0-based; "" when the line has fewer fields) of the value if <col> is given, ' +
  "else the input key; every input emits {key: group, value: its new count}. Stateful: the " +
  "snapshot is the object {group: count}.";

/** The group an input counts towards. */
export function groupOf(col: number | undefined, key: string, value: string): string {
  return col === undefined ? key : (csvField(value, col) ?? "");
}

/** Count one input into `counts` (mutated) and return the output announcing the new count. */
export function countInto(counts: Map<string, number>, group: string): Output[] {
  const n = (counts.get(group) ?? 0) + 1;
  counts.set(group, n);
  return [{ key: group, value: String(n) }];
}

/** The counts as a plain JSON object: the snapshot format. */
export function countsToState(counts: ReadonlyMap<string, number>): Record<string, number> {
  // fromEntries defines own properties, so even a group named "__proto__" survives the round trip.
  return Object.fromEntries(counts);
}

/**
 * Validate a snapshot and turn it back into counts; throws naming the first bad entry. All or
 * nothing: a half-loaded state would be worse than a clear error.
 */
export function countsFromState(state: unknown): Map<string, number> {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    const got = Array.isArray(state) ? "an array" : state === null ? "null" : typeof state;
    throw new Error(`aggregate state: expected an object {group: count}, got ${got}`);
  }
  const counts = new Map<string, number>();
  for (const [group, n] of Object.entries(state)) {
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new Error(`aggregate state: count of ${JSON.stringify(group)} is ${JSON.stringify(n) ?? String(n)}, expected a whole number >= 0`);
    }
    counts.set(group, n);
  }
  return counts;
}

export const aggregate: OperatorFactory = (args): Operator => {
  expectArgCount(args, 0, 1, AGGREGATE_USAGE);
  const col = args[0] === undefined ? undefined : parseColumn(args[0], AGGREGATE_USAGE);
  let counts = new Map<string, number>();
  return {
    name: "aggregate",
    usage: AGGREGATE_USAGE,
    process: (key, value) => countInto(counts, groupOf(col, key, value)),
    snapshot: () => countsToState(counts),
    restore: (state) => {
      counts = countsFromState(state);
    },
  };
};
