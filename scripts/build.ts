#!/usr/bin/env bun
/**
 * Compile every service entry into a standalone executable in dist/bin/, one `bun build
 * --compile` per executable (several entrypoints in one command are silently dropped, docs/ARCHITECTURE.md §7),
 * then smoke-run each with --help so a broken binary fails the build.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildOperators, compileCommand } from "../ops/build.ts";
import { runCommand } from "../services/shared/process.ts";

const ROOT = resolve(import.meta.dir, "..");
/** Service entries compiled into dist/bin/. Operators: one multi-call binary in dist/ops/ (ops/build.ts). */
export const SERVICE_ENTRIES = ["memberd", "hydfsd", "rainstormd", "ctl"] as const;

/** One compile or smoke run of the build. */
const BUILD_STEP_TIMEOUT_MS = 120_000;

async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const r = await runCommand(cmd, { cwd: ROOT, timeoutMs: BUILD_STEP_TIMEOUT_MS });
  return { code: r.code, out: r.out + r.err };
}

async function build(): Promise<void> {
  const outDir = join(ROOT, "dist", "bin");
  mkdirSync(outDir, { recursive: true });
  for (const name of SERVICE_ENTRIES) {
    const t0 = performance.now();
    const outfile = join(outDir, name);
    const res = await run(compileCommand(join(ROOT, "services", `${name}.ts`), outfile));
    if (res.code !== 0) throw new Error(`build of ${name} failed:\n${res.out}`);
    const smoke = await run([outfile, "--help"]);
    if (smoke.code !== 0 || !smoke.out.includes(name)) throw new Error(`${outfile} --help failed (exit ${smoke.code}):\n${smoke.out}`);
    console.log(`built dist/bin/${name} in ${Math.round(performance.now() - t0)} ms (smoke test ok)`);
  }
  const t0 = performance.now();
  const names = await buildOperators(join(ROOT, "dist", "ops"));
  console.log(`built dist/ops/rainstorm-op (${names.length} operator names linked) in ${Math.round(performance.now() - t0)} ms (smoke test ok)`);
}

if (import.meta.main) {
  build().catch((err) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
