#!/usr/bin/env bun
/**
 * Compile every service entry into a standalone executable in dist/bin/, one `bun build
 * --compile` per executable (several entrypoints in one command are silently dropped, docs/ARCHITECTURE.md §7),
 * then smoke-run each with --help so a broken binary fails the build.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildOperators, compileCommand } from "../ops/build.ts";

const ROOT = resolve(import.meta.dir, "..");
/** Service entries compiled into dist/bin/. Operators: one multi-call binary in dist/ops/ (ops/build.ts). */
export const SERVICE_ENTRIES = ["memberd", "hydfsd", "rainstormd", "ctl"] as const;

async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 120_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out: out + err };
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
