import { describe, expect, test } from "bun:test";
import type { JobSpec } from "./plan.ts";
import { decodeRecord, encodeIndexEntry, encodeRecord, foldJournal, journalName, type JournalRecord, parseIndex } from "./journal.ts";

const spec: JobSpec = {
  stages: [
    { op: "grep-wrapper", args: ["x"] },
    { op: "aggregate-wrapper", args: [] },
  ],
  tasksPerStage: 2,
  src: "in.csv",
  dest: "out",
  exactlyOnce: true,
  autoscale: false,
  inputRate: 0,
  lowWatermark: 0,
  highWatermark: 0,
};
const submit = (term = 1): JournalRecord => ({
  k: "submit",
  term,
  job: "job-a-1",
  spec,
  startedWallMs: 1000,
  routes: {
    version: 1,
    stages: [
      ["a:1", "b:1"],
      ["b:1", "a:1"],
    ],
  },
});
const journal = (...rs: JournalRecord[]) => rs.map(encodeRecord).join("");

describe("foldJournal", () => {
  test("empty or without a submit: nothing", () => {
    expect(foldJournal("")).toBeUndefined();
    expect(foldJournal(journal({ k: "source", term: 1, pos: 5 }))).toBeUndefined();
  });
  test("a submitted job runs from line 0", () => {
    expect(foldJournal(journal(submit()))).toMatchObject({ job: "job-a-1", spec, status: "running", pos: 0, routes: { version: 1 } });
  });
  test("routes, source and end fold in", () => {
    const j = foldJournal(
      journal(
        submit(),
        { k: "source", term: 1, pos: 512 },
        {
          k: "routes",
          term: 1,
          routes: {
            version: 2,
            stages: [
              ["c:1", "b:1"],
              ["b:1", "a:1"],
            ],
          },
        },
        { k: "source", term: 1, pos: 1024 },
      ),
    )!;
    expect(j.pos).toBe(1024);
    expect(j.routes).toEqual({
      version: 2,
      stages: [
        ["c:1", "b:1"],
        ["b:1", "a:1"],
      ],
    });
    expect(j.status).toBe("running");
    expect(foldJournal(journal(submit(), { k: "end", term: 1, status: "done", tuplesRead: 3, tuplesOut: 2, durationMs: 70 }))).toMatchObject({
      status: "done",
      tuplesRead: 3,
      tuplesOut: 2,
      durationMs: 70,
    });
    expect(foldJournal(journal(submit(), { k: "end", term: 1, status: "failed", tuplesRead: 0, tuplesOut: 0, error: "boom" }))!.error).toBe("boom");
  });
  test("a stale leader's late records are ignored", () => {
    const j = foldJournal(
      journal(
        submit(1),
        {
          k: "routes",
          term: 2,
          routes: {
            version: 5,
            stages: [
              ["c:1", "b:1"],
              ["b:1", "c:1"],
            ],
          },
        },
        // term 1 woke up after term 2 took over: neither its routes nor its end count.
        {
          k: "routes",
          term: 1,
          routes: {
            version: 6,
            stages: [
              ["a:1", "a:1"],
              ["a:1", "a:1"],
            ],
          },
        },
        { k: "end", term: 1, status: "cancelled", tuplesRead: 0, tuplesOut: 0 },
        { k: "source", term: 2, pos: 7 },
      ),
    )!;
    expect(j.status).toBe("running");
    expect(j.routes.version).toBe(5);
    expect(j.pos).toBe(7);
    expect(j.term).toBe(2);
  });
  test("positions and versions never go back", () => {
    const j = foldJournal(
      journal(submit(), { k: "source", term: 1, pos: 9 }, { k: "source", term: 1, pos: 4 }, { k: "routes", term: 1, routes: { version: 0, stages: [] } }),
    )!;
    expect(j.pos).toBe(9);
    expect(j.routes.version).toBe(1);
  });
  test("a bad line is named", () => {
    expect(() => foldJournal(`${encodeRecord(submit())}{"k":"source","term":1,"pos":-1}\n`)).toThrow(/journal line 2: source: pos/);
    expect(() => foldJournal("not json\n")).toThrow(/journal line 1/);
  });
});

describe("decodeRecord refuses", () => {
  const cases: [string, RegExp][] = [
    ['{"k":"submit","term":1}', /submit: expected job/],
    ['{"k":"routes","term":1,"routes":{"version":"x","stages":[]}}', /routes: expected/],
    ['{"k":"end","term":1,"status":"running"}', /end: status/],
    ['{"k":"what","term":1}', /k: expected/],
    ['{"k":"source","pos":1}', /term: expected/],
  ];
  for (const [line, want] of cases) test(line, () => expect(() => decodeRecord(line)).toThrow(want));
});

test("index: each job once, bad lines named", () => {
  const text = `${encodeIndexEntry("job-1", 1)}${encodeIndexEntry("job-2", 1)}garbage\n${encodeIndexEntry("job-1", 2)}`;
  expect(parseIndex(text)).toEqual({ jobs: ["job-1", "job-2"], problems: [expect.stringContaining("index line 3")] });
});

test("journalName", () => expect(journalName("job-x-1")).toBe("rainstorm/jobs/job-x-1.journal"));
