/**
 * A watcher's stream is bounded: a reader that does not keep up loses events past
 * WATCH_QUEUE_MAX, told by one `dropped` note where the gap is, and always gets the final event.
 */
import { describe, expect, test } from "bun:test";
import { readLines } from "../shared/lines.ts";
import { admit, eventStream, WATCH_QUEUE_MAX } from "./job_watch.ts";
import type { JobEvent } from "./model.ts";

const out = (n: number): JobEvent => ({ event: "output", lines: [`k\t${n}`] });
const DONE: JobEvent = { event: "done", job: "j", tuples_read: 1, tuples_out: 1, duration_ms: 1, tuples_per_s: 1, dest: "d" };
const CANCELLED: JobEvent = { event: "cancelled", job: "j", tuples_read: 1, tuples_out: 1, dest: "d" };

describe("admit: what a watcher's queue takes", () => {
  test.each([
    // [event, room, dropped before, queued, dropped after]
    ["room, nothing missed", out(1), 5, 0, [out(1)], 0],
    ["no room", out(1), 0, 0, [], 1],
    ["still no room", out(1), 0, 7, [], 8],
    ["room for the note and the event", out(1), 2, 7, [{ event: "dropped", events: 7 }, out(1)], 0],
    ["room for one: the note would have no event after it, so wait", out(1), 1, 7, [], 8],
    ["the final event always goes, after the note", DONE, 0, 3, [{ event: "dropped", events: 3 }, DONE], 0],
    ["a cancel is final too", CANCELLED, -5, 0, [CANCELLED], 0],
  ] as [string, JobEvent, number, number, JobEvent[], number][])("%s", (_, ev, room, before, queue, after) => {
    expect(admit(ev, room, before)).toEqual({ queue, dropped: after });
  });
});

async function readAll(stream: ReadableStream<Uint8Array>): Promise<JobEvent[]> {
  const got: JobEvent[] = [];
  for await (const line of readLines(stream)) if (line) got.push(JSON.parse(line) as JobEvent);
  return got;
}

describe("eventStream", () => {
  test("bounded, nobody reading: WATCH_QUEUE_MAX events are kept, the rest dropped with a note, then the final event; it closes once", async () => {
    let closed = 0;
    const { stream, push } = eventStream(true, () => closed++);
    const extra = 250;
    for (let i = 0; i < WATCH_QUEUE_MAX + extra; i++) push(out(i));
    expect(push(DONE)).toBe(false);
    expect(push(out(-1))).toBe(false);
    const got = await readAll(stream);
    expect(got.length).toBe(WATCH_QUEUE_MAX + 2);
    expect(got.slice(0, WATCH_QUEUE_MAX)).toEqual(Array.from({ length: WATCH_QUEUE_MAX }, (_, i) => out(i)));
    expect(got.slice(WATCH_QUEUE_MAX)).toEqual([{ event: "dropped", events: extra }, DONE]);
    expect(closed).toBe(1);
  });

  test("unbounded (the submitter's): every event is kept", async () => {
    const { stream, push } = eventStream(false);
    for (let i = 0; i < WATCH_QUEUE_MAX + 10; i++) push(out(i));
    push(DONE);
    expect((await readAll(stream)).length).toBe(WATCH_QUEUE_MAX + 11);
  });

  test("a reader that leaves ends it: onClose runs, later pushes say so", async () => {
    let closed = 0;
    const { stream, push } = eventStream(true, () => closed++);
    push(out(1));
    await stream.cancel();
    expect(closed).toBe(1);
    expect(push(out(2))).toBe(false);
  });
});
