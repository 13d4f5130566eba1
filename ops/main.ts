#!/usr/bin/env bun
/**
 * The one executable behind every built-in operator (docs/ARCHITECTURE.md §7: a compiled Bun binary is about
 * 100 MiB, so one multi-call binary is linked under each operator name instead of five copies).
 *
 *   grep-wrapper 'Sign Post' 4          (a link named after the operator)
 *   rainstorm-op grep-wrapper 'Sign Post' 4
 *   bun ops/main.ts grep 'Sign Post' 4
 *   rainstorm-op --help [name]          (or <name> --help)
 *
 * Exit codes: 0 at end of input or after --help, 1 when stdout failed, 2 for a bad invocation
 * (unknown operator, bad arguments).
 */
import { basename } from "node:path";
import { OPERATOR_NAMES, OPERATOR_USAGES, OPERATORS, canonicalOperatorName } from "./registry.ts";
import { type Operator, type OperatorIO, runOperator } from "./runtime.ts";

export const MULTI_CALL_NAME = "rainstorm-op";

export type Invocation = { kind: "run"; name: string; args: string[] } | { kind: "help"; names: string[] } | { kind: "error"; message: string };

const isHelp = (a: string | undefined) => a === "--help" || a === "-h";

/**
 * What to do, from the names the program was invoked as and its arguments. `invokedAs` holds the
 * candidate program names, best first: a compiled binary sees the link's name only in argv0
 * (its argv[1] is the compile-time name), a script run by bun sees its path in argv[1].
 */
export function resolveInvocation(invokedAs: readonly string[], args: readonly string[]): Invocation {
  for (const candidate of invokedAs) {
    const name = canonicalOperatorName(basename(candidate));
    if (name !== undefined) return isHelp(args[0]) ? { kind: "help", names: [name] } : { kind: "run", name, args: [...args] };
  }
  // Multi-call form: the operator is the first argument.
  const [first, ...rest] = args;
  if (first === undefined) return { kind: "error", message: `expected an operator name as first argument; known: ${OPERATOR_NAMES.join(", ")}` };
  if (isHelp(first)) {
    if (rest[0] === undefined) return { kind: "help", names: Object.keys(OPERATORS) };
    const name = canonicalOperatorName(rest[0]);
    return name === undefined ? unknown(rest[0]) : { kind: "help", names: [name] };
  }
  const name = canonicalOperatorName(first);
  if (name === undefined) return unknown(first);
  return isHelp(rest[0]) ? { kind: "help", names: [name] } : { kind: "run", name, args: rest };
}

function unknown(name: string): Invocation {
  return { kind: "error", message: `unknown operator ${JSON.stringify(name)}; known: ${OPERATOR_NAMES.join(", ")}` };
}

/** The --help text for the given canonical names. */
export function helpText(names: readonly string[]): string {
  return [
    `${MULTI_CALL_NAME}: RainStorm's built-in operators, speaking docs/ARCHITECTURE.md §5 (NDJSON on stdin/stdout, logs on stderr).`,
    `Run as <name> [args...] through a link named after the operator, or as ${MULTI_CALL_NAME} <name> [args...].`,
    "",
    ...names.map((n) => OPERATOR_USAGES[n] ?? `${n}: not a built-in operator`),
    "",
  ].join("\n");
}

/**
 * The whole program, with its inputs passed in: `invokedAs` as for resolveInvocation, `io` for
 * tests (help goes to io.write, errors to io.log; without io, the real stdio). Returns the exit code.
 */
export async function main(invokedAs: readonly string[], args: readonly string[], io?: OperatorIO): Promise<number> {
  const out = io?.write ?? ((s: string) => void process.stdout.write(s));
  const err = io?.log ?? ((s: string) => void process.stderr.write(`${s}\n`));
  const inv = resolveInvocation(invokedAs, args);
  switch (inv.kind) {
    case "help":
      await out(helpText(inv.names));
      return 0;
    case "error":
      err(`${MULTI_CALL_NAME}: ${inv.message}`);
      return 2;
    case "run": {
      let op: Operator;
      try {
        op = OPERATORS[inv.name]!(inv.args);
      } catch (e) {
        err(`${inv.name}: ${(e as Error).message}`);
        return 2;
      }
      return (await runOperator(op, io)).exitCode;
    }
  }
}

if (import.meta.main) process.exit(await main([process.argv0, process.argv[1] ?? ""], process.argv.slice(2)));
