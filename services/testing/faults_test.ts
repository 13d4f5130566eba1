/** Progress-triggered faults fire in order on output counts and say when one never fired; restartOf finds the restart. */
import { describe, expect, test } from "bun:test";
import { ProgressFaults, restartOf } from "./faults.ts";

const output = (n: number) => ({ event: "output", lines: Array.from({ length: n }, (_, i) => `k\t${i}`) });

describe("ProgressFaults", () => {
  test("each step fires once its output count is reached, one after another", async () => {
    const log: string[] = [];
    const f = new ProgressFaults([
      { afterOutputs: 3, act: async () => void log.push("first") },
      { afterOutputs: 5, act: async () => void log.push("second") },
    ]);
    f.onEvent({ event: "accepted" });
    f.onEvent(output(2));
    await Bun.sleep(0);
    expect(log).toEqual([]);
    f.onEvent(output(4)); // 6 outputs: both thresholds passed at once, still in order
    await f.settled();
    expect(log).toEqual(["first", "second"]);
  });

  test("a step that never fired fails settled(), naming the progress", async () => {
    const f = new ProgressFaults([{ afterOutputs: 10, act: async () => {} }]);
    f.onEvent(output(4));
    await expect(f.settled()).rejects.toThrow("fault step 1 of 1 never fired: the job streamed 4 outputs, the step waits for 10");
  });

  test("a step's error is thrown by settled()", async () => {
    const f = new ProgressFaults([{ afterOutputs: 1, act: async () => Promise.reject(new Error("kill refused")) }]);
    f.onEvent(output(1));
    await expect(f.settled()).rejects.toThrow("kill refused");
  });
});

describe("restartOf", () => {
  const killed = { stage: 1, task: 2, node: "n", pid: 100 };
  test("the task_restarted event of the same task under another pid", () => {
    const ev = { event: "task_restarted", stage: 1, index: 2, pid: 101 };
    expect(restartOf([{ event: "task_restarted", stage: 1, index: 1, pid: 7 }, ev], killed)).toBe(ev);
  });
  test("missing: the same pid, another task, or no event", () => {
    const events = [
      { event: "task_restarted", stage: 1, index: 2, pid: 100 },
      { event: "task_restarted", stage: 0, index: 2, pid: 5 },
    ];
    expect(restartOf(events, killed)).toBe("no task_restarted for stage1[2] with a pid other than 100");
  });
});
