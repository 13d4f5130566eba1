/**
 * The broadcast queue (piggybacked news) and the pingack inflight tracker.
 */
import { describe, expect, test } from "bun:test";
import { BroadcastQueue } from "./broadcast.ts";
import { MAX_SEQ } from "./limits.ts";
import { insertIntoPass, nextSeq, ProbeTracker } from "./probe.ts";

describe("BroadcastQueue", () => {
  function queue(...ids: string[]): BroadcastQueue {
    const q = new BroadcastQueue();
    for (const id of ids) q.enqueue(id);
    return q;
  }

  test.each([
    [0, 5, 5],
    [3, 5, 2],
    [4, 5, 1],
    [9, 5, 1],
  ])("enqueued as already sent %p times with limit %p: sent %p times", (alreadySent, limit, sends) => {
    const q = new BroadcastQueue();
    q.enqueue("a", alreadySent);
    let n = 0;
    while (q.take(1, limit).length > 0) n++;
    expect(n).toBe(sends);
  });

  test("empty queue gives nothing", () => {
    const q = new BroadcastQueue();
    expect(q.size).toBe(0);
    expect(q.take(5, 3)).toEqual([]);
  });

  test("max <= 0 gives nothing and counts nothing", () => {
    const q = queue("a", "b");
    expect(q.take(0, 1)).toEqual([]);
    expect(q.take(-1, 1)).toEqual([]);
    expect(q.size).toBe(2);
    expect(q.take(5, 1)).toEqual(["a", "b"]);
  });

  test("takes at most max ids, in enqueue order among equals", () => {
    const q = queue("a", "b", "c", "d");
    expect(q.take(2, 10)).toEqual(["a", "b"]);
    expect(q.size).toBe(4);
  });

  test("least-sent ids go first", () => {
    const q = queue("a", "b", "c", "d");
    expect(q.take(2, 10)).toEqual(["a", "b"]); // a=1 b=1 c=0 d=0
    expect(q.take(2, 10)).toEqual(["c", "d"]); // all 1
    expect(q.take(3, 10)).toEqual(["a", "b", "c"]); // a=2 b=2 c=2 d=1
    expect(q.take(2, 10)).toEqual(["d", "a"]);
  });

  test("an id is sent exactly `limit` times, then dropped", () => {
    for (const limit of [1, 2, 3, 7]) {
      const q = queue("x");
      let sends = 0;
      while (q.take(1, limit).length > 0) {
        sends++;
        if (sends > 100) break;
      }
      expect({ limit, sends, size: q.size }).toEqual({ limit, sends: limit, size: 0 });
    }
  });

  test("limits apply per id", () => {
    const q = queue("a", "b");
    expect(q.take(1, 2)).toEqual(["a"]); // a=1
    expect(q.take(2, 2)).toEqual(["b", "a"]); // b=1; a reaches 2 and leaves
    expect(q.size).toBe(1);
    expect(q.take(2, 2)).toEqual(["b"]);
    expect(q.size).toBe(0);
  });

  test("a newly enqueued id overtakes ids already sent", () => {
    const q = queue("a", "b");
    q.take(2, 10);
    q.enqueue("c");
    expect(q.take(1, 10)).toEqual(["c"]);
  });

  test("re-enqueue resets the send count", () => {
    const q = queue("a", "b");
    expect(q.take(2, 3)).toEqual(["a", "b"]); // a=1 b=1
    expect(q.take(2, 3)).toEqual(["a", "b"]); // a=2 b=2
    q.enqueue("a"); // fresh news about a: a=0
    expect(q.take(2, 3)).toEqual(["a", "b"]); // a=1; b reaches 3 and leaves
    expect(q.size).toBe(1);
    expect(q.take(5, 3)).toEqual(["a"]); // a=2
    expect(q.take(5, 3)).toEqual(["a"]); // a=3 and leaves
    expect(q.take(5, 3)).toEqual([]);
  });

  test("re-enqueue does not duplicate an id", () => {
    const q = queue("a", "a", "a");
    expect(q.size).toBe(1);
    expect(q.take(5, 10)).toEqual(["a"]);
  });

  test("delete removes an id; deleting an unknown id is harmless", () => {
    const q = queue("a", "b", "c");
    q.delete("b");
    q.delete("zzz");
    expect(q.size).toBe(2);
    expect(q.take(5, 10)).toEqual(["a", "c"]);
  });
});

describe("ProbeTracker", () => {
  test.each([
    [0, 1],
    [1, 2],
    [MAX_SEQ - 1, MAX_SEQ],
    [MAX_SEQ, 1],
  ])("nextSeq(%p) = %p: never past MAX_SEQ, which every decoder accepts", (seq, want) => {
    expect(nextSeq(seq)).toBe(want);
  });

  test("sequence numbers wrap from MAX_SEQ back to 1, for probes and relays alike", () => {
    const t = new ProbeTracker(MAX_SEQ - 1);
    expect(t.start("n1", 0, 1, 2)).toBe(MAX_SEQ);
    expect(t.relay("o", 9, "n2", 5)).toBe(1);
    expect(t.start("n3", 0, 1, 2)).toBe(2);
    expect(t.resolve(MAX_SEQ, "n1")?.target).toBe("n1");
  });

  test("start gives increasing sequence numbers and tracks the target", () => {
    const t = new ProbeTracker();
    const s1 = t.start("n1", 100, 300, 600);
    const s2 = t.start("n2", 100, 300, 600);
    expect(s1).toBe(1);
    expect(s2).toBe(2);
    expect(t.isProbing("n1")).toBe(true);
    expect(t.isProbing("n2")).toBe(true);
    expect(t.isProbing("n3")).toBe(false);
  });

  test("resolve returns the probe once and stops tracking it", () => {
    const t = new ProbeTracker();
    const seq = t.start("n1", 100, 300, 600);
    expect(t.resolve(seq, "n1")).toEqual({ seq, target: "n1", sentMs: 100, directDeadlineMs: 300, finalDeadlineMs: 600, indirectSent: false });
    expect(t.isProbing("n1")).toBe(false);
    expect(t.resolve(seq, "n1")).toBeUndefined();
  });

  test("an ack about the wrong member does not resolve the probe", () => {
    const t = new ProbeTracker();
    const seq = t.start("n1", 100, 300, 600);
    expect(t.resolve(seq, "n2")).toBeUndefined();
    expect(t.isProbing("n1")).toBe(true);
    expect(t.resolve(seq, "n1")?.target).toBe("n1");
  });

  test("an unknown sequence resolves nothing", () => {
    const t = new ProbeTracker();
    t.start("n1", 100, 300, 600);
    expect(t.resolve(99, "n1")).toBeUndefined();
    expect(t.isProbing("n1")).toBe(true);
  });

  test("relay and probe sequences share one counter and do not cross", () => {
    const t = new ProbeTracker();
    const p = t.start("n1", 0, 100, 200);
    const r = t.relay("origin", 41, "n1", 200);
    expect([p, r]).toEqual([1, 2]);
    // An ack for the relay's sequence is not one of our probes, and vice versa.
    expect(t.resolve(r, "n1")).toBeUndefined();
    expect(t.takeRelay(p, "n1")).toBeUndefined();
    expect(t.takeRelay(r, "n1")).toEqual({ origin: "origin", originSeq: 41, target: "n1", expiresMs: 200 });
    expect(t.resolve(p, "n1")?.seq).toBe(p);
  });

  test("takeRelay returns the relay once; the wrong member does not take it", () => {
    const t = new ProbeTracker();
    const r = t.relay("o", 7, "n9", 500);
    expect(t.takeRelay(r, "n8")).toBeUndefined();
    expect(t.takeRelay(r, "n9")).toEqual({ origin: "o", originSeq: 7, target: "n9", expiresMs: 500 });
    expect(t.takeRelay(r, "n9")).toBeUndefined();
  });

  test("relays are not probes", () => {
    const t = new ProbeTracker();
    t.relay("o", 7, "n9", 500);
    expect(t.isProbing("n9")).toBe(false);
  });

  test("due: nothing before the direct deadline", () => {
    const t = new ProbeTracker();
    t.start("n1", 0, 200, 500);
    expect(t.due(199, true)).toEqual({ needIndirect: [], missed: [] });
    expect(t.isProbing("n1")).toBe(true);
  });

  test("due: indirect once at the direct deadline, then missed at the final deadline", () => {
    const t = new ProbeTracker();
    const seq = t.start("n1", 0, 200, 500);
    const first = t.due(200, true);
    expect(first.missed).toEqual([]);
    expect(first.needIndirect.map((p) => [p.seq, p.target, p.indirectSent])).toEqual([[seq, "n1", true]]);
    expect(t.due(300, true)).toEqual({ needIndirect: [], missed: [] }); // not asked twice
    expect(t.due(499, true)).toEqual({ needIndirect: [], missed: [] });
    const last = t.due(500, true);
    expect(last.needIndirect).toEqual([]);
    expect(last.missed.map((p) => p.seq)).toEqual([seq]);
    expect(t.isProbing("n1")).toBe(false);
    expect(t.due(10_000, true)).toEqual({ needIndirect: [], missed: [] }); // reported once
  });

  test("due: without indirect probes a probe only goes missed", () => {
    const t = new ProbeTracker();
    const seq = t.start("n1", 0, 200, 500);
    expect(t.due(300, false)).toEqual({ needIndirect: [], missed: [] });
    expect(t.due(500, false).missed.map((p) => [p.seq, p.indirectSent])).toEqual([[seq, false]]);
  });

  test("due: a probe past both deadlines at once is missed, not asked about", () => {
    const t = new ProbeTracker();
    t.start("n1", 0, 200, 500);
    const out = t.due(800, true);
    expect(out.needIndirect).toEqual([]);
    expect(out.missed.map((p) => p.target)).toEqual(["n1"]);
  });

  test("due: each probe is checked against its own deadlines", () => {
    const t = new ProbeTracker();
    const a = t.start("a", 0, 100, 300);
    const b = t.start("b", 50, 150, 350);
    const c = t.start("c", 100, 200, 400);
    const out = t.due(320, true);
    expect(out.missed.map((p) => p.seq)).toEqual([a]);
    expect(out.needIndirect.map((p) => p.seq)).toEqual([b, c]);
    expect(t.isProbing("a")).toBe(false);
    expect(t.isProbing("b")).toBe(true);
  });

  test("a resolved probe is never reported by due", () => {
    const t = new ProbeTracker();
    const seq = t.start("n1", 0, 200, 500);
    t.resolve(seq, "n1");
    expect(t.due(1000, true)).toEqual({ needIndirect: [], missed: [] });
  });

  test("due expires relays at their deadline", () => {
    const t = new ProbeTracker();
    const r1 = t.relay("o", 1, "n1", 100);
    const r2 = t.relay("o", 2, "n2", 200);
    t.due(99, true);
    expect(t.takeRelay(r1, "n1")?.originSeq).toBe(1);
    const r3 = t.relay("o", 3, "n3", 100);
    t.due(100, true);
    expect(t.takeRelay(r3, "n3")).toBeUndefined();
    expect(t.takeRelay(r2, "n2")?.originSeq).toBe(2);
  });

  test("clear forgets probes and relays but not the sequence counter", () => {
    const t = new ProbeTracker();
    const p = t.start("n1", 0, 200, 500);
    const r = t.relay("o", 1, "n2", 500);
    t.clear();
    expect(t.isProbing("n1")).toBe(false);
    expect(t.resolve(p, "n1")).toBeUndefined();
    expect(t.takeRelay(r, "n2")).toBeUndefined();
    expect(t.due(10_000, true)).toEqual({ needIndirect: [], missed: [] });
    // A late ack for a probe from before the clear must not match a new probe.
    expect(t.start("n1", 0, 200, 500)).toBe(3);
  });
});

describe("insertIntoPass", () => {
  /** An Rng that always returns `r`. */
  const fixed = (r: number) => ({ next: () => r });
  test.each([
    // [order, nextIndex, r, order after, next index after]
    [[], 0, 0, ["x"], 0],
    [["a", "b", "c"], 0, 0, ["x", "a", "b", "c"], 0],
    [["a", "b", "c"], 0, 0.99, ["a", "b", "c", "x"], 0],
    [["a", "b", "c"], 2, 0, ["a", "b", "x", "c"], 2],
    [["a", "b", "c"], 2, 0.99, ["a", "b", "c", "x"], 2],
    [["a", "b", "c"], 3, 0.5, ["a", "b", "c", "x"], 3],
    [["a", "b"], 5, 0.5, ["a", "b", "x"], 2],
  ] as [string[], number, number, string[], number][])("%p from %p with r=%p -> %p, next %p", (order, nextIndex, r, after, next) => {
    const o = [...order];
    expect(insertIntoPass(o, nextIndex, "x", fixed(r))).toBe(next);
    expect(o).toEqual(after);
  });
});
