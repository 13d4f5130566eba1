/** The dashboard's pure pieces: member rows with memberd's details, the timeline, the merged HyDFS file list. */
import { describe, expect, test } from "bun:test";
import type { ListStoreAnswer } from "../../hydfs/model.ts";
import { taskLogName } from "../exactly_once.ts";
import { heardOf, type HydfsActivity, mergeStores, type MemberRow, replicaChanges, taskLogSizes, timelineOf, withDetails } from "./views.ts";

const A = "127.0.0.1:5000@1";
const B = "127.0.0.2:5000@2";

describe("withDetails", () => {
  const timeline = timelineOf([
    { atMs: 100, id: B, kind: "suspect", incarnation: 0 },
    { atMs: 200, id: B, kind: "alive", incarnation: 1 },
    { atMs: 300, id: B, kind: "suspect", incarnation: 1 },
  ]);
  const row = (id: string, state: string): MemberRow => ({ id, host: id.split(":")[0]!, state, incarnation: 1 });
  const table: [name: string, rows: MemberRow[], heard: Record<string, number | null> | undefined, want: MemberRow[]][] = [
    ["no details: the rows as given", [row(A, "alive")], undefined, [row(A, "alive")]],
    [
      "last heard where memberd heard it; null (this node) adds nothing",
      [row(A, "alive"), row(B, "alive")],
      { [A]: null, [B]: 50 },
      [row(A, "alive"), { ...row(B, "alive"), last_heard: 50 }],
    ],
    ["a suspect: since its latest suspicion", [row(B, "suspect")], {}, [{ ...row(B, "suspect"), suspect_since: 300 }]],
    ["a suspect the timeline has no suspicion of: no since", [row(A, "suspect")], {}, [row(A, "suspect")]],
    ["alive again: no since, though suspected before", [row(B, "alive")], {}, [row(B, "alive")]],
  ];
  test.each(table)("%s", (_name, rows, heard, want) => {
    expect(withDetails(rows, heard, timeline)).toEqual(want);
  });
});

test("timelineOf names each member's host and keeps the incarnation when memberd gave one", () => {
  expect(
    timelineOf([
      { atMs: 5, id: A, kind: "joined", incarnation: 0 },
      { atMs: 6, id: B, kind: "failed" },
    ]),
  ).toEqual([
    { at: 5, id: A, host: "127.0.0.1", kind: "joined", incarnation: 0 },
    { at: 6, id: B, host: "127.0.0.2", kind: "failed" },
  ]);
});

test("heardOf: ISO times as epoch ms, null and absent as null", () => {
  expect(heardOf([{ id: A, last_heard: "2026-01-01T00:00:00.000Z" }, { id: B, last_heard: null }, { id: "c" }])).toEqual({
    [A]: Date.parse("2026-01-01T00:00:00.000Z"),
    [B]: null,
    c: null,
  });
});

describe("mergeStores", () => {
  const store = (host: string, files: [string, number, number][]): ListStoreAnswer => ({
    node: `${host}:5000@1`,
    host,
    token: "0000000000000001",
    files: files.map(([name, size, ops]) => ({ name, token: `${name.length}`.padStart(16, "0"), size, ops })),
  });
  test("one row per file, sorted by name; replicas are the hosts holding it (numeric order); size and ops of the fullest copy", () => {
    const got = mergeStores([
      store("127.0.0.10", [["b", 10, 2]]),
      store("127.0.0.2", [
        ["b", 15, 3],
        ["a", 1, 1],
      ]),
    ]);
    expect(got).toEqual({
      files: [
        { name: "a", token: "0000000000000001", size: 1, ops: 1, replicas: ["127.0.0.2"] },
        { name: "b", token: "0000000000000001", size: 15, ops: 3, replicas: ["127.0.0.2", "127.0.0.10"] },
      ],
      files_total: 2,
    });
  });
  test("beyond the bound: the first names only, and the total", () => {
    const got = mergeStores(
      [
        store("h", [
          ["c", 1, 1],
          ["a", 1, 1],
          ["b", 1, 1],
        ]),
      ],
      2,
    );
    expect([got.files.map((f) => f.name), got.files_total]).toEqual([["a", "b"], 3]);
  });
});

describe("replicaChanges", () => {
  const row = (name: string, replicas: string[]) => ({ name, token: "0000000000000001", size: 1, ops: 1, replicas });
  const table: [name: string, before: ReturnType<typeof row>[], after: ReturnType<typeof row>[], want: HydfsActivity[]][] = [
    ["same replicas: nothing", [row("a", ["h1", "h2", "h3"])], [row("a", ["h1", "h2", "h3"])], []],
    [
      "a copy lost, then re-made elsewhere",
      [row("a", ["h1", "h2", "h5"]), row("b", ["h1"])],
      [row("a", ["h1", "h2", "h4"]), row("b", ["h1"])],
      [{ at: 9, name: "a", from: ["h1", "h2", "h5"], to: ["h1", "h2", "h4"] }],
    ],
    ["a copy fewer", [row("a", ["h1", "h2"])], [row("a", ["h1"])], [{ at: 9, name: "a", from: ["h1", "h2"], to: ["h1"] }]],
    ["a new file and a deleted one are not activity", [row("gone", ["h1"])], [row("new", ["h1"])], []],
  ];
  test.each(table)("%s", (_name, before, after, want) => {
    expect(replicaChanges(before, after, 9)).toEqual(want);
  });
});

test("taskLogSizes: the exactly-once task logs among the files, with their sizes", () => {
  const files = [
    { name: "input.csv", size: 10 },
    { name: "rainstorm/job-7/stage0-task1.log", size: 120 },
    { name: "rainstorm/job-7/stage1-task0.log", size: 0 },
    { name: "rainstorm/job-7/stage1-task0.log.bak", size: 5 },
    { name: "rainstorm/job-7/state.json", size: 5 },
  ];
  // The names the engine gives its logs are the ones recognised.
  expect(taskLogSizes([{ name: taskLogName("j", 2, 3), size: 1 }])).toEqual([{ job: "j", stage: 2, task: 3, bytes: 1 }]);
  expect(taskLogSizes(files)).toEqual([
    { job: "job-7", stage: 0, task: 1, bytes: 120 },
    { job: "job-7", stage: 1, task: 0, bytes: 0 },
  ]);
});
