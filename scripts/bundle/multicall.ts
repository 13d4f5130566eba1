#!/usr/bin/env bun
/**
 * The one executable of the deployment bundle (scripts/bundle.ts): memberd, hydfsd, rainstormd,
 * ctl and every built-in operator in one compiled Bun binary. Each compiled executable embeds the
 * whole Bun runtime (about 100 MiB), so one binary instead of five cuts the bundle to a fifth.
 * It dispatches on the name it was invoked as (a link named memberd, ctl, grep-wrapper, ...) or,
 * invoked under its own name, on its first argument:
 *
 *   bin/memberd                             (bin/memberd is a symlink to bin/rainstorm)
 *   bin/rainstorm memberd --config config.json
 *   ops/grep-wrapper 'Sign Post' 4          (ops/rainstorm-op is a hard link to the same file)
 *
 * A program is imported only once chosen, so starting one runs none of the others' module code.
 */
import { basename } from "node:path";
import { canonicalOperatorName } from "../../ops/registry.ts";
import { VERSION } from "../../services/shared/version.ts";

export const PROGRAMS = ["memberd", "hydfsd", "rainstormd", "ctl"] as const;
export type Program = (typeof PROGRAMS)[number];
/** The binary's own name in bin/. */
export const MULTI_CALL_BINARY = "rainstorm";
/** Its name in ops/ (as in dist/ops: ops/main.ts's multi-call name). */
export const OPS_BINARY = "rainstorm-op";
export { VERSION };

export type Dispatch =
  | { kind: "program"; program: Program; args: string[] }
  | { kind: "operator"; invokedAs: string; args: string[] }
  | { kind: "usage"; code: number }
  | { kind: "version" };

const isProgram = (s: string | undefined): s is Program => s !== undefined && (PROGRAMS as readonly string[]).includes(s);

/** What to run, from the name this binary was invoked as (argv0) and its arguments. */
export function dispatch(invokedAs: string, args: readonly string[]): Dispatch {
  const name = basename(invokedAs);
  if (isProgram(name)) return { kind: "program", program: name, args: [...args] };
  if (name === OPS_BINARY || canonicalOperatorName(name) !== undefined) return { kind: "operator", invokedAs: name, args: [...args] };
  const [first, ...rest] = args;
  if (isProgram(first)) return { kind: "program", program: first, args: rest };
  if (first !== undefined && canonicalOperatorName(first) !== undefined) return { kind: "operator", invokedAs: first, args: rest };
  if (first === "--version") return { kind: "version" };
  return { kind: "usage", code: first === "--help" || first === "-h" ? 0 : 2 };
}

export const USAGE = `${MULTI_CALL_BINARY} ${VERSION}: RainStorm in one executable. Run a program through the link named
after it (bin/memberd, bin/hydfsd, bin/rainstormd, bin/ctl, ops/<operator>), or as
  ${MULTI_CALL_BINARY} <memberd|hydfsd|rainstormd|ctl|<operator>> [args...]
`;

async function run(): Promise<void> {
  const d = dispatch(process.argv0, process.argv.slice(2));
  switch (d.kind) {
    case "version":
      console.log(`${MULTI_CALL_BINARY} ${VERSION}`);
      return;
    case "usage":
      (d.code === 0 ? process.stdout : process.stderr).write(USAGE);
      process.exit(d.code);
      break;
    case "operator": {
      const { main } = await import("../../ops/main.ts");
      process.exit(await main([d.invokedAs], d.args));
      break;
    }
    case "program":
      // Each program reads process.argv.slice(2) as its own arguments.
      process.argv.splice(2, process.argv.length - 2, ...d.args);
      switch (d.program) {
        case "memberd":
          await import("../../services/memberd.ts");
          break;
        case "hydfsd":
          await import("../../services/hydfsd.ts");
          break;
        case "rainstormd":
          await import("../../services/rainstormd.ts");
          break;
        case "ctl":
          await import("../../services/ctl.ts");
          break;
      }
  }
}

if (import.meta.main) await run();
