#!/usr/bin/env bun
/**
 * The test command (`npm test`): typecheck, build the executables (so the multi-process tests run the
 * compiled binaries, as users do), run `bun test` on the whole tree, and end with the line
 * `N passed, N failed` that CI reads. Extra arguments go to `bun test` (e.g. a path filter).
 * SKIP_BUILD=1 tests the .ts entries instead.
 */
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

async function main(): Promise<number> {
  // Type errors fail the suite like a failing test (strict tsconfig; bun itself does not typecheck).
  const tsc = Bun.spawn([resolve(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", "."], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if ((await tsc.exited) !== 0) {
    console.log("0 passed, 1 failed");
    return 1;
  }
  if (!process.env.SKIP_BUILD) {
    const build = Bun.spawn([process.execPath, "scripts/build.ts"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
    if ((await build.exited) !== 0) {
      console.log("0 passed, 1 failed");
      return 1;
    }
  }
  const proc = Bun.spawn([process.execPath, "test", "--timeout", "120000", ...process.argv.slice(2)], { cwd: ROOT, stdout: "inherit", stderr: "pipe" });
  // bun test reports to stderr; echo it and keep the summary counts.
  let passed = 0;
  let failed = 0;
  const decoder = new TextDecoder();
  let tail = "";
  // Skipped tests are named again at the end, so a skip is never invisible in the summary.
  const skipped: string[] = [];
  let partial = "";
  for await (const chunk of proc.stderr) {
    const text = decoder.decode(chunk, { stream: true });
    process.stderr.write(text);
    tail = (tail + text).slice(-4000);
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.startsWith("(skip)")) skipped.push(line);
  }
  const code = await proc.exited;
  const pass = /^\s*(\d+) pass$/m.exec(tail);
  const fail = /^\s*(\d+) fail$/m.exec(tail);
  passed = pass ? Number(pass[1]) : 0;
  failed = fail ? Number(fail[1]) : 0;
  if (code !== 0 && failed === 0) failed = 1; // a crash or "no tests found" is a failure too
  if (skipped.length > 0) console.log(`${skipped.length} skipped:\n${skipped.map((l) => `  ${l}`).join("\n")}`);
  console.log(`${passed} passed, ${failed} failed`);
  return code;
}

process.exit(await main());
