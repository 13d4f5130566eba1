import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { tempPath, waitFor } from "../testing/cluster.ts";
import { tupleLine, OperatorExited, OperatorProcess } from "./operator_proc.ts";
import { scaled } from "../testing/time.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dir = tempPath("operator-proc-");
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(cmd: string[], name: string, framing: "json" | "tsv" = "json"): OperatorProcess {
  return new OperatorProcess(cmd, join(dir, `${name}.log`), ROOT, undefined, framing);
}

describe("OperatorProcess", () => {
  test("a batch through the real echo operator: one answer per input, in order, with its id", async () => {
    const op = start([process.execPath, join(ROOT, "ops", "main.ts"), "echo-wrapper"], "echo");
    const lines = tupleLine("a:1", "k1", "v1") + tupleLine("a:2", "k2", 'with "quotes", commas');
    const answers = await op.processLines(lines, 2);
    expect(answers).toEqual([
      { id: "a:1", outputs: [{ key: "k1", value: "v1" }] },
      { id: "a:2", outputs: [{ key: "k2", value: 'with "quotes", commas' }] },
    ]);
    expect(await op.snapshot(1, 5000)).toBeNull();
    expect(await op.endInput(5000)).toBe(0);
  });

  test("the TSV framing through the real echo and aggregate operators: awkward characters survive, state restores", async () => {
    const echo = start([process.execPath, join(ROOT, "ops", "main.ts"), "echo-wrapper"], "echo-tsv", "tsv");
    const awkward = 'tab\there, line\nbreak, cr\r, back\\slash \\t, "quotes", {"done":1}, ünï';
    const answers = await echo.processLines(tupleLine("a:1", awkward, awkward) + tupleLine("", "", ""), 2);
    expect(answers).toEqual([
      { id: "a:1", outputs: [{ key: awkward, value: awkward }] },
      { id: "", outputs: [{ key: "", value: "" }] },
    ]);
    expect(await echo.snapshot(1, 5000)).toBeNull();
    expect(await echo.endInput(5000)).toBe(0);
    const agg = start([process.execPath, join(ROOT, "ops", "main.ts"), "aggregate-wrapper", "0"], "agg-tsv", "tsv");
    agg.restore({ "x\ty": 41 });
    const counted = await agg.processLines(tupleLine("f:1", "k", "x\ty,rest"), 1);
    expect(counted).toEqual([{ id: "f:1", outputs: [{ key: "x\ty", value: "42" }] }]);
    expect(await agg.endInput(5000)).toBe(0);
  });

  test("a snapshot fails at once when the operator dies, not after its timeout", async () => {
    // Reads one line (the snapshot request) and exits without answering.
    const op = start(["sh", "-c", "read line; echo dying >&2; exit 3"], "dies");
    const t0 = performance.now();
    const err = await op.snapshot(1, 10_000).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(OperatorExited);
    expect(err!.message).toContain("code 3");
    expect(err!.message).toContain("dying");
    expect(performance.now() - t0).toBeLessThan(scaled(3000));
  });

  test("a protocol violation fails the batch and kills the operator", async () => {
    const op = start(["sh", "-c", "read line; echo 'not json'; sleep 5"], "garbage");
    const err = await op.processLines(tupleLine("x", "k", "v"), 1).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toContain("not JSON");
    expect(await op.exited).not.toBe(0);
  });

  test("a batch whose lines do not match its count never reaches the operator, which goes on", async () => {
    const op = start([process.execPath, join(ROOT, "ops", "main.ts"), "echo-wrapper"], "count");
    const three = tupleLine("a", "k", "1") + tupleLine("b", "k", "2") + tupleLine("c", "k", "3");
    await expect(op.processLines(three, 1)).rejects.toThrow("batch of 1 inputs holds 3 complete lines; not sent to the operator");
    await expect(op.processLines(tupleLine("a", "k", "1"), 2)).rejects.toThrow("batch of 2 inputs holds 1 complete lines");
    await expect(op.processLines(tupleLine("a", "k", "1").trimEnd(), 1)).rejects.toThrow("holds 0 complete lines and an unterminated one");
    // Nothing was written: the next batch gets exactly its own answers.
    expect(await op.processLines(tupleLine("d", "k", "4"), 1)).toEqual([{ id: "d", outputs: [{ key: "k", value: "4" }] }]);
    expect(op.alive).toBe(true);
    expect(await op.endInput(5000)).toBe(0);
  });

  test("argv0: the program sees the name it is invoked as, while cmd[0] is what runs", async () => {
    // The shell answers the first input with its own $0 as the id.
    const op = new OperatorProcess(
      ["/bin/sh", "-c", `read line; printf '{"done":"%s"}\\n' "$0"; cat >/dev/null`],
      join(dir, "argv0.log"),
      ROOT,
      "/ops/echo-wrapper",
    );
    const answers = await op.processLines(tupleLine("x", "k", "v"), 1);
    expect(answers[0]!.id).toBe("/ops/echo-wrapper");
    op.kill();
  });

  test("progress: inputs pending until answered, answers counted (what the hung-operator guard samples)", async () => {
    // Answers the first input of each batch only, then goes silent with the rest pending.
    const op = start(["sh", "-c", `read line; echo '{"done":"a"}'; cat >/dev/null`], "progress");
    expect(op.progress()).toEqual({ pending: 0, answered: 0 });
    const batch = op.processLines(tupleLine("a", "k", "1") + tupleLine("b", "k", "2") + tupleLine("c", "k", "3"), 3);
    expect(op.progress()).toEqual({ pending: 3, answered: 0 });
    await waitFor(() => op.progress().answered === 1, scaled(5000), "the first answer");
    expect(op.progress()).toEqual({ pending: 2, answered: 1 });
    op.kill();
    await expect(batch).rejects.toThrow("exited");
    expect(op.progress()).toEqual({ pending: 0, answered: 1 });
  });

  test("writing to an operator that already exited is an error, never a crash", async () => {
    const op = start(["sh", "-c", "exit 0"], "gone");
    await op.exited;
    await expect(op.processLines(tupleLine("x", "k", "v"), 1)).rejects.toThrow("exited");
  });
});
