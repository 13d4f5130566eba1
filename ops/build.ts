#!/usr/bin/env bun
/**
 * Compile the operators: ops/main.ts ONCE into <outDir>/rainstorm-op, then a symlink per operator
 * name (short and "-wrapper" forms) to it, then smoke-run the links so a broken binary fails the
 * build. One binary instead of one per operator because each compiled Bun executable is about
 * 100 MiB (docs/ARCHITECTURE.md §7); main.ts dispatches on the name it was invoked as.
 *
 *   bun ops/build.ts dist/ops
 */
import { lstatSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { type RunResult, runCommand } from "../services/shared/process.ts";
import { MULTI_CALL_NAME } from "./main.ts";
import { OPERATOR_NAMES, OPERATORS } from "./registry.ts";
import { Session } from "./runtime.ts";

const ROOT = resolve(import.meta.dir, "..");
const TIMEOUT_MS = 120_000;

/** One traffic-sign line with quoted commas (testdata/trial_data.csv) for the smoke runs. */
const SAMPLE_LINE =
  '"77,755","40,345",,,Sign Post,,SIGN_POLE,,,1.0,2.0,1.0,QC Complete,,,,2021 Oct 29 12:00:00 AM,' +
  "2022 Jun 30 02:03:59 PM,2022 Jun 30 02:57:51 PM,30.268784966854263,-97.73068880923348," +
  "POINT (-97.730688809233 30.268784966854)";

/** Each built-in operator's smoke run: the "-wrapper" link, its args, and the input lines. */
const SMOKE: { link: string; canonical: string; args: string[]; lines: string[] }[] = [
  { link: "echo-wrapper", canonical: "echo", args: [], lines: [input("smoke:1", SAMPLE_LINE)] },
  { link: "grep-wrapper", canonical: "grep", args: ["Sign Post", "4"], lines: [input("smoke:1", SAMPLE_LINE), input("smoke:2", "no match")] },
  { link: "grep-wrapper2", canonical: "grep2", args: ["Sign Post", "0", "4"], lines: [input("smoke:1", SAMPLE_LINE)] },
  { link: "transform-wrapper", canonical: "transform", args: [], lines: [input("smoke:1", SAMPLE_LINE)] },
  {
    link: "aggregate-wrapper",
    canonical: "aggregate",
    args: ["4"],
    lines: [JSON.stringify({ restore: { "Sign Post": 10 } }), input("smoke:1", SAMPLE_LINE), JSON.stringify({ snapshot: 1 })],
  },
];

function input(id: string, value: string): string {
  return JSON.stringify({ id, key: id, value });
}

function run(cmd: string[], stdin?: string): Promise<RunResult> {
  return runCommand(cmd, { cwd: ROOT, stdin, timeoutMs: TIMEOUT_MS });
}

/** Replace whatever is at `path` (an old link, an old binary) by a relative symlink to `target`. */
function link(target: string, path: string): void {
  try {
    lstatSync(path);
    rmSync(path, { force: true });
  } catch {
    // nothing there yet
  }
  // Relative, so the directory can be moved or copied to another machine as a whole.
  symlinkSync(target, path);
}

/**
 * The `bun build` command that compiles `entry` into one standalone executable `outfile`: bytecode
 * for a faster start, whitespace minified for a smaller file. One place for every executable we
 * ship (the daemons, ctl, the operators, the bundle's multi-call binary).
 */
export function compileCommand(entry: string, outfile: string): string[] {
  return [process.execPath, "build", "--compile", "--bytecode", "--format=esm", "--minify-whitespace", entry, "--outfile", outfile];
}

/** Build rainstorm-op and its links in `outDir`; returns the paths created (binary first). */
export async function buildOperators(outDir: string): Promise<string[]> {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const binary = join(dir, MULTI_CALL_NAME);
  const res = await run(compileCommand(join(ROOT, "ops", "main.ts"), binary));
  if (res.code !== 0) throw new Error(`build of ${binary} failed (exit ${res.code}):\n${res.out}${res.err}`);
  const links = OPERATOR_NAMES.map((name) => {
    const path = join(dir, name);
    link(MULTI_CALL_NAME, path);
    return path;
  });
  await Promise.all(SMOKE.map((s) => smoke(dir, s)));
  return [binary, ...links];
}

/**
 * Run one link over its sample and compare with the in-process operator: this checks the link
 * dispatch, the compiled runtime and the operator together.
 */
async function smoke(dir: string, s: (typeof SMOKE)[number]): Promise<void> {
  const path = join(dir, s.link);
  const res = await run([path, ...s.args], `${s.lines.join("\n")}\n`);
  const want = new Session(OPERATORS[s.canonical]!(s.args), () => {}).answer(s.lines);
  if (res.code !== 0 || res.out !== want) {
    throw new Error(
      `smoke run of ${path} ${s.args.map((a) => JSON.stringify(a)).join(" ")} failed (exit ${res.code}):\n` +
        `expected stdout:\n${want}got stdout:\n${res.out}stderr:\n${res.err}`,
    );
  }
  if (s.link === "echo-wrapper" && !/^\{"key":.*\}\n\{"done":"smoke:1"\}\n$/.test(res.out)) {
    throw new Error(`smoke run of ${path}: expected one {"key","value"} line then {"done":"smoke:1"}, got:\n${res.out}`);
  }
}

if (import.meta.main) {
  const outDir = process.argv[2];
  if (outDir === undefined || outDir === "--help") {
    console.error("usage: bun ops/build.ts <outDir>   (e.g. dist/ops): compile rainstorm-op and link every operator name to it");
    process.exit(outDir === undefined ? 2 : 0);
  }
  const t0 = performance.now();
  buildOperators(outDir)
    .then((paths) => {
      console.log(`built ${paths[0]} and ${paths.length - 1} links in ${Math.round(performance.now() - t0)} ms (smoke runs ok)`);
    })
    .catch((err) => {
      console.error((err as Error).message);
      process.exit(1);
    });
}
