import { expect, test } from "bun:test";
import { runCommand } from "./process.ts";

test("exit code, stdout and stderr of a finished command", async () => {
  const r = await runCommand(["sh", "-c", "echo out; echo err >&2; exit 3"], { timeoutMs: 5000 });
  expect(r).toEqual({ code: 3, out: "out\n", err: "err\n", timedOut: false });
});

test("stdin is written and closed; env and cwd are passed", async () => {
  const r = await runCommand(["sh", "-c", 'cat; echo "$X"; pwd'], { timeoutMs: 5000, stdin: "in\n", env: { X: "x", PATH: process.env.PATH }, cwd: "/" });
  expect(r.out).toBe("in\nx\n/\n");
});

test("a command past its deadline is killed and says so", async () => {
  const t0 = performance.now();
  const r = await runCommand(["sleep", "30"], { timeoutMs: 100 });
  expect(r.timedOut).toBe(true);
  expect(r.code).not.toBe(0);
  expect(performance.now() - t0).toBeLessThan(10_000);
});

test("onLine gets each line as it comes, the last one even without a newline", async () => {
  const lines: string[] = [];
  const r = await runCommand(["sh", "-c", "printf 'a\\nb\\nc'"], { timeoutMs: 5000, onLine: (l) => lines.push(l) });
  expect(lines).toEqual(["a", "b", "c"]);
  expect(r.out).toBe("");
});
