/**
 * A worker's output notices (outputs.ts) on a virtual clock: in order, retried with backoff to
 * whichever leader address is current, a refusal (4xx) dropped, the queue bounded (counts kept,
 * lines dropped), each task's recent notices sent again on demand, and flush per job.
 */
import { describe, expect, test } from "bun:test";
import { makeLogger } from "../shared/log.ts";
import { VirtualClock } from "../testing/rainstorm_sim.ts";
import type { OutputsNotice } from "./model.ts";
import { mergeNotices, NOTICE_QUEUE_MAX, OutputNotices, RECENT_NOTICES_PER_TASK } from "./outputs.ts";

const notice = (seq: number, from = "s1t0", job = "job-n-1"): OutputsNotice => ({ job, stage: 1, index: 0, from, seq, total: seq * 2, lines: [`k\t${seq}`] });

function setup(opts: { leader?: () => string | undefined; answer?: (n: OutputsNotice, addr: string) => number; wantLines?: () => boolean } = {}) {
  const clock = new VirtualClock();
  const sent: { addr: string; from: string; seq: number; lines: number }[] = [];
  const warnings: string[] = [];
  const log = makeLogger("outputs-test", "silent");
  log.warn = ((t: string) => void warnings.push(t)) as typeof log.warn;
  const q = new OutputNotices({
    clock,
    log,
    leaderAddr: opts.leader ?? (() => "leader:1"),
    send: async (addr, n) => {
      await clock.sleep(1);
      const status = opts.answer?.(n, addr) ?? 200;
      if (status !== 200) throw Object.assign(new Error(`${status}`), { status });
      sent.push({ addr, from: n.from, seq: n.seq, lines: n.lines.length });
      return opts.wantLines?.() ?? true;
    },
  });
  /** Turn the clock up to `ms` from now, letting every promise settle. */
  const until = async (ms: number) => {
    const limit = clock.nowMs() + ms;
    for (;;) {
      for (let i = 0; i < 10; i++) await Promise.resolve();
      if (!clock.fireNext(limit)) break;
    }
  };
  return { clock, q, sent, warnings, until };
}

describe("OutputNotices", () => {
  test("a leader that says nobody watches the job gets counts only, until it asks for lines again", async () => {
    let want = true;
    const { q, sent, until } = setup({ wantLines: () => want });
    q.push(notice(1));
    await until(100);
    want = false;
    q.push(notice(2)); // sent with its lines: the answer that says no comes with it
    await until(100);
    q.push(notice(3));
    await until(100);
    want = true;
    q.push(notice(4)); // still counts only: the leader's yes comes with this one
    await until(100);
    q.push(notice(5));
    await until(100);
    expect(sent.map((s) => [s.seq, s.lines])).toEqual([
      [1, 1],
      [2, 1],
      [3, 0],
      [4, 0],
      [5, 1],
    ]);
  });

  test("in order, one at a time; a failing leader is retried with backoff, then everything arrives in order", async () => {
    let failUntilMs = 300;
    const { clock, q, sent, until } = setup({ answer: () => (clock.nowMs() < failUntilMs ? 503 : 200) });
    for (let i = 1; i <= 5; i++) q.push(notice(i, i % 2 ? "s1t0" : "s1t1"));
    await until(250);
    expect(sent).toEqual([]);
    expect(q.size).toBe(5);
    await until(5000);
    expect(sent.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(q.size).toBe(0);
    failUntilMs = 0;
  });

  test("the address is asked at each attempt: notices follow a new leader; none goes while there is no leader", async () => {
    let leader: string | undefined;
    const { q, sent, until } = setup({ leader: () => leader, answer: (_, addr) => (addr === "old:1" ? 503 : 200) });
    q.push(notice(1));
    await until(1000);
    expect(sent).toEqual([]);
    leader = "old:1";
    await until(1000);
    expect(sent).toEqual([]);
    leader = "new:1";
    await until(3000);
    expect(sent).toEqual([{ addr: "new:1", from: "s1t0", seq: 1, lines: 1 }]);
  });

  test("a refusal (4xx) is final: that notice is dropped, the next goes; 421 (not the leader) is retried", async () => {
    let notLeader = 2;
    const { q, sent, until } = setup({ answer: (n) => (n.seq === 1 ? 404 : n.seq === 2 && notLeader-- > 0 ? 421 : 200) });
    q.push(notice(1));
    q.push(notice(2));
    await until(1000);
    expect(sent.map((s) => s.seq)).toEqual([2]);
    expect(notLeader).toBe(-1);
  });

  test(`bounded: past ${NOTICE_QUEUE_MAX} queued, a notice keeps its counts without its lines, merged with its task's last count-only one; logged once`, async () => {
    let leader: string | undefined;
    const { q, sent, warnings, until } = setup({ leader: () => leader });
    for (let i = 1; i <= NOTICE_QUEUE_MAX + 500; i++) q.push(notice(i, i % 2 ? "s1t0" : "s1t1"));
    // Two tasks: at most one count-only notice each beyond the bound.
    expect(q.size).toBe(NOTICE_QUEUE_MAX + 2);
    expect(warnings.length).toBe(1);
    leader = "leader:1";
    await until(60_000);
    expect(sent.length).toBe(NOTICE_QUEUE_MAX + 2);
    expect(sent.slice(0, NOTICE_QUEUE_MAX).every((s) => s.lines === 1)).toBe(true);
    // The last counts of each task arrive, without lines.
    expect(sent.slice(NOTICE_QUEUE_MAX)).toEqual([
      { addr: "leader:1", from: "s1t0", seq: NOTICE_QUEUE_MAX + 499, lines: 0 },
      { addr: "leader:1", from: "s1t1", seq: NOTICE_QUEUE_MAX + 500, lines: 0 },
    ]);
  });

  test(`resendRecent: each task's last ${RECENT_NOTICES_PER_TASK} notices go again, in order`, async () => {
    const { q, sent, until } = setup();
    for (let i = 1; i <= 100; i++) q.push(notice(i));
    q.push(notice(1, "s1t1"));
    await until(10_000);
    sent.length = 0;
    q.resendRecent();
    await until(10_000);
    const first = 100 - RECENT_NOTICES_PER_TASK + 1;
    expect(sent.filter((s) => s.from === "s1t0").map((s) => s.seq)).toEqual(Array.from({ length: RECENT_NOTICES_PER_TASK }, (_, i) => first + i));
    expect(sent.filter((s) => s.from === "s1t1").map((s) => s.seq)).toEqual([1]);
  });

  test("flush(job): true once the job's notices are delivered, false when they are not within the time; forgetJob drops them", async () => {
    let leader: string | undefined = "leader:1";
    const { q, until } = setup({ leader: () => leader });
    q.push(notice(1));
    let flushed: boolean | undefined;
    void q.flush("job-n-1", 1000).then((f) => (flushed = f));
    await until(1000);
    expect(flushed).toBe(true);
    leader = undefined;
    q.push(notice(2));
    q.push(notice(1, "s1t0", "job-other-1"));
    flushed = undefined;
    void q.flush("job-n-1", 1000).then((f) => (flushed = f));
    await until(2000);
    expect(flushed as boolean | undefined).toBe(false);
    q.forgetJob("job-n-1");
    expect(q.holds("job-n-1")).toBe(false);
    expect(q.holds("job-other-1")).toBe(true);
    q.stop();
  });
});

describe("a task's waiting notices go in one call", () => {
  test("consecutive notices of one task merge (lines joined, the last seq and total); another task's or a count-only one ends the run", async () => {
    let leader: string | undefined;
    const { q, sent, until } = setup({ leader: () => leader });
    const n = (seq: number, from = "s1t0") => ({ ...notice(seq, from), total: seq, lines: [`k\t${seq}`] });
    for (const x of [n(1), n(2), n(3), n(1, "s1t1"), n(4), n(5)]) q.push(x);
    leader = "leader:1";
    await until(1000);
    expect(sent.map((s) => [s.from, s.seq, s.lines])).toEqual([
      ["s1t0", 3, 3],
      ["s1t1", 1, 1],
      ["s1t0", 5, 2],
    ]);
  });

  test("mergeNotices: one notice stays as it is", () => {
    const one = notice(1);
    expect(mergeNotices([one])).toBe(one);
    expect(
      mergeNotices([
        { ...one, total: 1 },
        { ...notice(2), total: 2 },
      ]),
    ).toEqual({ ...notice(2), total: 2, lines: ["k\t1", "k\t2"] });
  });
});

describe("across a failover", () => {
  test("a restarted task's notices told again (push again=true) go one call each, the new ones after them merge (ctl prints each seq once per task)", async () => {
    let leader: string | undefined;
    const { q, sent, until } = setup({ leader: () => leader });
    const n = (seq: number) => ({ ...notice(seq), total: seq, lines: [`k\t${seq}`] });
    // Records 1 and 2 of an earlier incarnation told again, then records 3 and 4, all waiting together.
    q.push(n(1), true);
    q.push(n(2), true);
    q.push(n(3));
    q.push(n(4));
    leader = "new:1";
    await until(1000);
    expect(sent.map((s) => [s.seq, s.lines])).toEqual([
      [1, 1],
      [2, 1],
      [4, 2],
    ]);
  });

  test("resendRecent puts each task's recent notices before its waiting ones, one call each (ctl prints each seq once per task)", async () => {
    let leader: string | undefined = "old:1";
    const { q, sent, until } = setup({ leader: () => leader });
    const n = (seq: number) => ({ ...notice(seq), total: seq, lines: [`k\t${seq}`] });
    q.push(n(1));
    q.push(n(2));
    await until(1000);
    leader = undefined;
    q.push(n(3));
    q.push(n(4));
    sent.length = 0;
    leader = "new:1";
    q.resendRecent();
    await until(1000);
    expect(sent.map((s) => [s.addr, s.seq, s.lines])).toEqual([
      ["new:1", 1, 1],
      ["new:1", 2, 1],
      ["new:1", 3, 1],
      ["new:1", 4, 1],
    ]);
  });

  test("a call that failed is tried again as it was, even when more notices of the task came meanwhile", async () => {
    let fail = 1;
    const { q, sent, until } = setup({ answer: () => (fail-- > 0 ? 503 : 200) });
    const n = (seq: number) => ({ ...notice(seq), total: seq, lines: [`k\t${seq}`] });
    q.push(n(1));
    q.push(n(2));
    await until(10);
    q.push(n(3));
    await until(5000);
    // The first call held notice 1 alone (it went at once) and failed: it is tried again alone, not merged with 2.
    expect(sent.map((s) => [s.seq, s.lines])).toEqual([
      [1, 1],
      [3, 2],
    ]);
  });
});
