import { expect, test } from "bun:test";
import { HANGUP_LINES_GRACE_MS, type JobRuntime, listen, TAKEOVER_LINES_GRACE_MS, unlisten, wantsLines } from "./job_runtime.ts";

const runtime = (over: Partial<JobRuntime> = {}): JobRuntime => ({ listeners: new Set(), recent: [], dest: { write: async () => {} }, ...over });

test("result lines are asked for while someone listens, and a grace after the last one left or after a takeover", () => {
  const rt = runtime();
  expect(wantsLines(rt, 0)).toBe(true); // a new job: its submitter listens
  const a = () => {};
  const b = () => {};
  listen(rt, a);
  listen(rt, b);
  unlisten(rt, a, 100);
  expect(wantsLines(rt, 1_000_000)).toBe(true); // b still listens
  unlisten(rt, b, 1000);
  expect(wantsLines(rt, 1000 + HANGUP_LINES_GRACE_MS - 1)).toBe(true);
  expect(wantsLines(rt, 1000 + HANGUP_LINES_GRACE_MS)).toBe(false);
  listen(rt, a); // a watcher attaches again
  expect(wantsLines(rt, 1_000_000)).toBe(true);
  const adopted = runtime({ linesUntilMs: 5000 + TAKEOVER_LINES_GRACE_MS });
  expect(wantsLines(adopted, 5000 + TAKEOVER_LINES_GRACE_MS - 1)).toBe(true);
  expect(wantsLines(adopted, 5000 + TAKEOVER_LINES_GRACE_MS)).toBe(false);
});
