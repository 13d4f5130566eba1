/**
 * A last-stage task's dest (dest_writer.ts) over the simulator's in-memory HyDFS, which applies a
 * (client, seq) once and refuses one reused for other bytes, as HyDFS does: exactly-once appends
 * name the task-log record, so a restarted task's repeat is applied once; at-least-once appends
 * are group commits; every append is followed by its notice, with the appender's running total.
 */
import { describe, expect, test } from "bun:test";
import { MemoryStore, VirtualClock } from "../testing/rainstorm_sim.ts";
import { destClientId, noticeFrom, resultLines, TaskDest } from "./dest_writer.ts";
import type { OutputsNotice } from "./model.ts";
import type { Answer } from "./operator_proc.ts";

const JOB = "job-dest-1";
const answer = (id: string, ...kv: [string, string][]): Answer => ({ id, outputs: kv.map(([key, value]) => ({ key, value })) });

/** A store with dest created, a clock to turn, and a TaskDest factory recording its notices. */
function setup() {
  const clock = new VirtualClock();
  const store = new MemoryStore(clock);
  store.files.set("out.txt", "");
  const notices: OutputsNotice[] = [];
  const dest = (clientId: string, from: string) =>
    new TaskDest({ store: store.dest("out.txt", clientId), job: JOB, stage: 1, index: 2, from, notify: (n) => notices.push(n) });
  /** Settle `p` while turning the virtual clock. */
  const run = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    const out = p.finally(() => (done = true));
    for (;;) {
      for (let i = 0; i < 10; i++) await Promise.resolve();
      if (done || !clock.fireNext(Number.MAX_SAFE_INTEGER)) break;
    }
    return out;
  };
  return { store, notices, dest, run };
}

describe("names", () => {
  test.each([
    [destClientId(JOB, 1, 2), "rainstorm-job-dest-1-s1-t2"],
    [destClientId(JOB, 1, 2, "4711-1700000000000"), "rainstorm-job-dest-1-s1-t2-4711-1700000000000"],
    [noticeFrom(1, 2), "s1t2"],
    [noticeFrom(1, 2, 4711), "s1t2-4711"],
  ])("%s", (got, want) => expect(got).toBe(want));

  test("resultLines: one dest line per output, without its newline, line breaks flattened", () => {
    expect(resultLines([answer("a", ["k", "1"], ["x\ny", "2"]), answer("b")])).toEqual(["k\t1", "x\\ny\t2"]);
  });
});

describe("exactly-once: seq = the task-log record number", () => {
  test("each record's results in one append under its record number; a record without results appends nothing; notices carry the running total", async () => {
    const { store, notices, dest, run } = setup();
    const d = dest(destClientId(JOB, 1, 2), "s1t2");
    await run(d.appendRecord(1, [answer("a", ["k", "1"]), answer("b", ["k", "2"])]));
    await run(d.appendRecord(2, [answer("c")]));
    await run(d.appendRecord(3, [answer("d", ["j", "1"])]));
    expect(store.files.get("out.txt")).toBe("k\t1\nk\t2\nj\t1\n");
    expect(notices.map((n) => [n.from, n.seq, n.total, n.lines])).toEqual([
      ["s1t2", 1, 2, ["k\t1", "k\t2"]],
      ["s1t2", 3, 3, ["j\t1"]],
    ]);
  });

  test("a restarted task appends its last record again under the same number: applied once; the recent records are told again with their totals", async () => {
    const { store, notices, dest, run } = setup();
    const records = [[answer("a", ["k", "1"])], [answer("b")], [answer("c", ["k", "2"], ["j", "1"])]];
    const first = dest(destClientId(JOB, 1, 2), "s1t2");
    for (const [i, r] of records.entries()) await run(first.appendRecord(i + 1, r));
    const before = store.files.get("out.txt");
    notices.length = 0;
    // The next incarnation: same client id, the log's 3 records holding 3 results.
    const second = dest(destClientId(JOB, 1, 2), "s1t2");
    await run(second.recover(3, 3, records));
    expect(store.files.get("out.txt")).toBe(before!);
    expect(notices.map((n) => [n.seq, n.total, n.lines])).toEqual([
      [1, 1, ["k\t1"]],
      [3, 3, ["k\t2", "j\t1"]],
    ]);
    // It goes on from there.
    await run(second.appendRecord(4, [answer("d", ["k", "3"])]));
    expect(notices.at(-1)).toMatchObject({ seq: 4, total: 4 });
    expect(store.files.get("out.txt")).toBe(`${before}k\t3\n`);
  });

  test("a crash between the log append and the dest append: the restart's append is the first one", async () => {
    const { store, dest, run } = setup();
    const d = dest(destClientId(JOB, 1, 2), "s1t2");
    await run(d.appendRecord(1, [answer("a", ["k", "1"])]));
    // Record 2 was logged; its append never happened.
    await run(dest(destClientId(JOB, 1, 2), "s1t2").recover(2, 2, [[answer("a", ["k", "1"])], [answer("b", ["k", "2"])]]));
    expect(store.files.get("out.txt")).toBe("k\t1\nk\t2\n");
  });

  test("a record number reused for other results is refused (the store's check, as HyDFS's 409): record numbers must not shift", async () => {
    const { dest, run } = setup();
    await run(dest(destClientId(JOB, 1, 2), "s1t2").appendRecord(1, [answer("a", ["k", "1"])]));
    const err = await run(dest(destClientId(JOB, 1, 2), "s1t2").appendRecord(1, [answer("a", ["k", "9"])])).catch((e: Error) => e);
    expect(String(err)).toContain("409");
  });
});

describe("at-least-once: group commit per incarnation", () => {
  test("what arrives during an append goes in the next one; seqs count appends; each caller resolves with the append holding its results", async () => {
    const { store, notices, dest, run } = setup();
    const d = dest(destClientId(JOB, 1, 2, "7-1"), "s1t2-7");
    const a = d.append([answer("a", ["k", "1"])]);
    const b = d.append([answer("b", ["k", "2"])]);
    const c = d.append([answer("c", ["k", "3"]), answer("d")]);
    const empty = d.append([answer("e")]);
    await run(Promise.all([a, b, c, empty]));
    expect(store.files.get("out.txt")).toBe("k\t1\nk\t2\nk\t3\n");
    expect(notices.map((n) => [n.from, n.seq, n.total, n.lines.length])).toEqual([
      ["s1t2-7", 1, 1, 1],
      ["s1t2-7", 2, 3, 2],
    ]);
  });

  test("after close() nothing more is appended: what is queued and what comes later is refused, the append under way finishes", async () => {
    const { store, dest, run } = setup();
    const d = dest(destClientId(JOB, 1, 2, "7-1"), "s1t2-7");
    const a = d.append([answer("a", ["k", "1"])]);
    const b = d.append([answer("b", ["k", "2"])]);
    d.close();
    const c = d.append([answer("c", ["k", "3"])]);
    const results = await run(Promise.allSettled([a, b, c]));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected"]);
    await run(d.drained());
    expect(store.files.get("out.txt")).toBe("k\t1\n");
  });
});
