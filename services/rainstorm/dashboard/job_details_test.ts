/** A job's card details from its events: the output tail, scaling decisions and restarts, each bounded. */
import { describe, expect, test } from "bun:test";
import type { JobEvent } from "../model.ts";
import { JOB_EVENTS_KEPT, type JobDetails, noDetails, OUTPUT_LINE_CHARS_MAX, OUTPUT_TAIL_LINES, withJobEvent } from "./job_details.ts";

const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => `l${from + i}`);
const scaled = (to: number): JobEvent => ({ event: "scaled", stage: 1, from: to - 1, to, avg_rate_per_task: 350.5, reason: "above HW" });
const restarted = (pid: number): JobEvent => ({ event: "task_restarted", stage: 0, index: 1, node: "127.0.0.2", pid, reason: "killed" });

/** The details after each event in turn, all heard at 7. */
const after = (events: JobEvent[]): JobDetails => events.reduce((d, ev) => withJobEvent(d, ev, 7) ?? d, noDetails());

describe("withJobEvent", () => {
  const table: [name: string, events: JobEvent[], want: Partial<JobDetails>][] = [
    ["output lines are appended", [{ event: "output", lines: ["a", "b"] }, { event: "output", lines: ["c"] }], { output: ["a", "b", "c"], output_lines: 3 }],
    [
      "only the last OUTPUT_TAIL_LINES are kept, across events and within one",
      [{ event: "output", lines: lines(0, 15) }, { event: "output", lines: lines(15, 30) }],
      { output: lines(25, OUTPUT_TAIL_LINES), output_lines: 45 },
    ],
    ["a long line is cut", [{ event: "output", lines: ["x".repeat(OUTPUT_LINE_CHARS_MAX + 5)] }], { output: [`${"x".repeat(OUTPUT_LINE_CHARS_MAX)}…`], output_lines: 1 }],
    [
      "a scaling decision, with when it was heard",
      [scaled(3)],
      { scaling: [{ at: 7, stage: 1, from: 2, to: 3, avg_rate_per_task: 350.5, reason: "above HW" }] },
    ],
    ["a restart", [restarted(42)], { restarts: [{ at: 7, stage: 0, index: 1, node: "127.0.0.2", pid: 42, reason: "killed" }] }],
  ];
  test.each(table)("%s", (_name, events, want) => {
    expect(after(events)).toMatchObject(want);
  });

  test("bounded: the last JOB_EVENTS_KEPT scaling decisions and restarts", () => {
    const d = after([...Array.from({ length: 12 }, (_, i) => scaled(i + 2)), ...Array.from({ length: 12 }, (_, i) => restarted(i))]);
    expect([d.scaling.map((s) => s.to), d.restarts.map((r) => r.pid)]).toEqual([
      Array.from({ length: JOB_EVENTS_KEPT }, (_, i) => i + 4),
      Array.from({ length: JOB_EVENTS_KEPT }, (_, i) => i + 2),
    ]);
  });

  const unchanged: JobEvent[] = [
    { event: "output", lines: [] },
    { event: "accepted", job: "j", tasks: [] },
    { event: "dropped", events: 3 },
    { event: "failed", job: "j", error: "x" },
  ];
  test.each(unchanged.map((ev) => [ev.event, ev] as const))("%s changes nothing the card shows", (_name, ev) => {
    expect(withJobEvent(noDetails(), ev, 7)).toBeUndefined();
  });
});
