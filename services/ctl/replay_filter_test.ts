/**
 * What ctl prints of a followed job's events when a reattach replays some (replay_filter.ts): a
 * table of event sequences, each event with whether it is printed.
 */
import { describe, expect, test } from "bun:test";
import type { JobEvent, JobSummary } from "../rainstorm/model.ts";
import { batchId, eventKey, ReplayFilter } from "./replay_filter.ts";

const JOB = "job-m1abc2de-1";
const out = (from: string, seq: number, lines = ["k\tv"]) => ({ event: "output", lines, from, seq }) as unknown as JobEvent;
const plain = (lines: string[]): JobEvent => ({ event: "output", lines });
const ACCEPTED: JobEvent = { event: "accepted", job: JOB, tasks: [{ stage: 0, index: 0, node: "10.0.0.2", pid: 7 }] };
const RESTART = (pid: number): JobEvent => ({ event: "task_restarted", stage: 0, index: 0, node: "10.0.0.3", pid, reason: "operator exited with code 137" });
const SCALED: JobEvent = { event: "scaled", stage: 0, from: 2, to: 3, avg_rate_per_task: 500, reason: "above HW" };
const SUMMARY: JobSummary = { job: JOB, status: "running", stages: ["op"], tasks: [1], src: "a", dest: "b", tuples_read: 0, tuples_out: 0, tuples_per_s: 0 };
const WATCHING: JobEvent = { event: "watching", summary: SUMMARY, replayed: 3 };
const DONE: JobEvent = { event: "done", job: JOB, tuples_read: 1, tuples_out: 1, duration_ms: 1, tuples_per_s: 1, dest: "b" };

describe("ReplayFilter: each event with whether it is printed", () => {
  const cases: [string, [JobEvent, boolean][]][] = [
    ["a stream without repeats: all printed", [[ACCEPTED, true], [out("s0t0", 1), true], [RESTART(8), true], [SCALED, true], [out("s0t0", 2), true], [DONE, true]]],
    [
      "a replay after a reattach: what was printed is dropped, the rest printed",
      [
        [ACCEPTED, true],
        [out("s0t0", 1), true],
        [RESTART(8), true],
        [out("s0t0", 2), true],
        [WATCHING, true],
        [ACCEPTED, false],
        [out("s0t0", 1), false],
        [RESTART(8), false],
        [out("s0t0", 2), false],
        [out("s0t0", 3), true],
        [DONE, true],
      ],
    ],
    [
      "seqs are per producer: another task's seq 1 is new",
      [[out("s0t0", 5), true], [out("s0t1", 1), true], [out("s0t1", 1), false], [out("s0t0", 4), false], [out("s0t0", 6), true]],
    ],
    ["outputs without from/seq are printed every time (nothing tells a repeat)", [[plain(["a"]), true], [plain(["a"]), true]]],
    ["a task restarted again (a new pid) is a new event", [[RESTART(8), true], [RESTART(9), true], [RESTART(8), false]]],
    ["watching, dropped and final events are never repeats", [[WATCHING, true], [WATCHING, true], [{ event: "dropped", events: 2 }, true], [{ event: "dropped", events: 2 }, true]]],
  ];
  for (const [name, steps] of cases) {
    test(name, () => {
      const filter = new ReplayFilter();
      expect(steps.map(([ev]) => filter.admit(ev))).toEqual(steps.map(([, printed]) => printed));
    });
  }

  test("only the last `remembered` non-output events are remembered (bounded): an older one prints again", () => {
    const filter = new ReplayFilter(2);
    expect([RESTART(1), RESTART(2), RESTART(3), RESTART(2), RESTART(1)].map((ev) => filter.admit(ev))).toEqual([true, true, true, false, true]);
  });
});

describe("event identity", () => {
  test("eventKey ignores the order of fields; any field differing differs", () => {
    const reordered = JSON.parse('{"reason":"operator exited with code 137","pid":8,"node":"10.0.0.3","index":0,"stage":0,"event":"task_restarted"}') as JobEvent;
    expect(eventKey(reordered)).toBe(eventKey(RESTART(8)));
    expect(eventKey(RESTART(9))).not.toBe(eventKey(RESTART(8)));
  });

  test.each([
    [out("s0t0", 17), { from: "s0t0", seq: 17 }],
    [plain(["a"]), undefined],
    [{ event: "output", lines: [], from: "s0t0" } as unknown as JobEvent, undefined],
    [{ event: "output", lines: [], from: 3, seq: 1 } as unknown as JobEvent, undefined],
    [{ event: "output", lines: [], from: "s0t0", seq: 1.5 } as unknown as JobEvent, undefined],
    [ACCEPTED, undefined],
  ] as [JobEvent, ReturnType<typeof batchId>][])("batchId(%j)", (ev, id) => {
    expect(batchId(ev)).toEqual(id);
  });
});
