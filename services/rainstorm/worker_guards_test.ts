/**
 * The worker's guards: the pure decisions as tables (worker_guards.ts), then a Worker on a virtual
 * clock with operators that answer or not and a leader that claims its jobs or not: a hung
 * operator is killed once its silence reaches rainstorm.operator_timeout_ms (not before) and its
 * death report says why; an orphaned or ended job's tasks are stopped within the bounds the
 * settings promise (not before), with a log line naming the job and why; the reason reaches the
 * leader's task list (job_machine.ts) as it reaches the task_restarted event.
 */
import { describe, expect, test } from "bun:test";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import { VirtualClock } from "../testing/rainstorm_sim.ts";
import { JobMachine } from "./job_machine.ts";
import type { TaskDeath } from "./model.ts";
import type { Answer } from "./operator_proc.ts";
import { parseJobArgs } from "./plan.ts";
import type { TaskOperator } from "./task.ts";
import type { RainstormTransport } from "./transport.ts";
import { IDLE_COLLECT_MS } from "./worker_upkeep.ts";
import { type LeaderJobs, Worker } from "./worker.ts";
import {
  type AnswerWatch,
  type Claim,
  ENDED_GRACE_MS,
  hungReason,
  judgeJob,
  type LeaderAnswer,
  ORPHAN_CHECK_MS,
  type OrphanRule,
  watchAnswers,
} from "./worker_guards.ts";

describe("watchAnswers: since when an operator's silence counts", () => {
  const prev: AnswerWatch = { answered: 10, silentSinceMs: 1000, sampledMs: 4000 };
  const GAP = 3000;
  test.each<[string, AnswerWatch | undefined, { pending: number; answered: number }, number, AnswerWatch]>([
    ["first sample: silence starts now", undefined, { pending: 5, answered: 0 }, 500, { answered: 0, silentSinceMs: 500, sampledMs: 500 }],
    ["no answer since, inputs pending: silence goes on", prev, { pending: 5, answered: 10 }, 5000, { answered: 10, silentSinceMs: 1000, sampledMs: 5000 }],
    ["an answer since: starts over", prev, { pending: 5, answered: 11 }, 5000, { answered: 11, silentSinceMs: 5000, sampledMs: 5000 }],
    ["nothing pending: not silent, starts over", prev, { pending: 0, answered: 10 }, 5000, { answered: 10, silentSinceMs: 5000, sampledMs: 5000 }],
    [
      "samples a gap apart (this process paused): starts over",
      prev,
      { pending: 5, answered: 10 },
      4000 + GAP,
      { answered: 10, silentSinceMs: 7000, sampledMs: 7000 },
    ],
    ["just under the gap: goes on", prev, { pending: 5, answered: 10 }, 4000 + GAP - 1, { answered: 10, silentSinceMs: 1000, sampledMs: 6999 }],
  ])("%s", (_, before, progress, nowMs, after) => {
    expect(watchAnswers(before, progress, nowMs, GAP)).toEqual(after);
  });
});

describe("hungReason: kill or not", () => {
  test.each<[string, number, number, number, number, string | undefined]>([
    ["silent for the timeout with inputs pending: killed", 3, 1000, 6000, 5000, "operator answered nothing for 5000 ms with 3 inputs pending"],
    ["silent past the timeout: the measured silence", 1, 0, 7400.4, 5000, "operator answered nothing for 7400 ms with 1 inputs pending"],
    ["silent just under the timeout: kept", 3, 1000, 5999, 5000, undefined],
    ["nothing pending: kept however long", 0, 0, 1e9, 5000, undefined],
    ["timeout 0: never", 3, 0, 1e9, 0, undefined],
  ])("%s", (_, pending, silentSinceMs, nowMs, timeoutMs, reason) => {
    expect(hungReason(pending, silentSinceMs, nowMs, timeoutMs)).toBe(reason);
  });
});

describe("judgeJob: stop a job's tasks here or not", () => {
  const rule: OrphanRule = { orphanTimeoutMs: 30_000, endedGraceMs: 2000, leader: "10.0.0.1:15000" };
  const says = (entries: [string, string][]): LeaderAnswer => ({ reached: true, status: new Map(entries) });
  const down: LeaderAnswer = { reached: false, error: "connection refused" };
  const J = "job-a-1";
  test.each<[string, Claim | undefined, LeaderAnswer, number, OrphanRule, { claim: Claim; stop?: string }]>([
    ["running: claimed now", { claimedMs: 0 }, says([[J, "running"]]), 50_000, rule, { claim: { claimedMs: 50_000 } }],
    ["first seen, leader down: the timeout starts now", undefined, down, 7000, rule, { claim: { claimedMs: 7000 } }],
    ["leader down under the timeout: kept", { claimedMs: 10_000 }, down, 39_999, rule, { claim: { claimedMs: 10_000 } }],
    [
      "leader down for the timeout: stopped",
      { claimedMs: 10_000 },
      down,
      40_000,
      rule,
      { claim: { claimedMs: 10_000 }, stop: "no leader has claimed the job for 30000 ms: the leader at 10.0.0.1:15000 is unreachable (connection refused)" },
    ],
    ["unknown to the leader under the timeout: kept", { claimedMs: 10_000 }, says([["job-b-2", "running"]]), 20_000, rule, { claim: { claimedMs: 10_000 } }],
    [
      "unknown to the leader for the timeout: stopped",
      { claimedMs: 10_000 },
      says([]),
      41_000,
      rule,
      { claim: { claimedMs: 10_000 }, stop: "no leader has claimed the job for 31000 ms: the leader at 10.0.0.1:15000 does not know it" },
    ],
    ["timeout 0: an unclaimed job is never stopped", { claimedMs: 0 }, down, 1e9, { ...rule, orphanTimeoutMs: 0 }, { claim: { claimedMs: 0 } }],
    ["ended, first seen: the grace starts", { claimedMs: 10_000 }, says([[J, "done"]]), 12_000, rule, { claim: { claimedMs: 10_000, endedSinceMs: 12_000 } }],
    [
      "ended for the grace: stopped",
      { claimedMs: 10_000, endedSinceMs: 12_000 },
      says([[J, "cancelled"]]),
      14_000,
      rule,
      { claim: { claimedMs: 10_000, endedSinceMs: 12_000 }, stop: "the leader at 10.0.0.1:15000 reports the job cancelled" },
    ],
    [
      "ended stops even with timeout 0",
      { claimedMs: 0, endedSinceMs: 0 },
      says([[J, "failed"]]),
      5000,
      { ...rule, orphanTimeoutMs: 0 },
      { claim: { claimedMs: 0, endedSinceMs: 0 }, stop: "the leader at 10.0.0.1:15000 reports the job failed" },
    ],
  ])("%s", (_, prev, answer, nowMs, r, out) => {
    expect(judgeJob(J, prev, answer, nowMs, r)).toEqual(out);
  });
});

/** An operator that answers only when told to: its inputs stay pending otherwise. */
class QuietOperator implements TaskOperator {
  alive = true;
  kills = 0;
  pending = 0;
  answered = 0;
  readonly exited: Promise<number>;
  private exit!: (code: number) => void;
  constructor(readonly pid: number) {
    this.exited = new Promise((resolve) => (this.exit = resolve));
  }
  processLines(_lines: string, count: number): Promise<Answer[]> {
    this.pending += count;
    return new Promise(() => {});
  }
  answerOne(): void {
    this.pending--;
    this.answered++;
  }
  snapshot(): Promise<unknown> {
    return Promise.resolve(null);
  }
  restore(): void {}
  endInput(): Promise<number | undefined> {
    this.kill();
    return Promise.resolve(137);
  }
  kill(): void {
    this.kills++;
    if (!this.alive) return;
    this.alive = false;
    this.exit(137);
  }
  stderrTail(): string {
    return "";
  }
  progress(): { pending: number; answered: number } {
    return { pending: this.pending, answered: this.answered };
  }
}

/** A Worker on a virtual clock, its operators QuietOperators, its log lines and death reports kept. */
function quietWorker(rainstorm: Record<string, unknown>, leader?: LeaderJobs) {
  const clock = new VirtualClock();
  const collected: number[] = [];
  const ops: QuietOperator[] = [];
  const deaths: TaskDeath[] = [];
  const lines: string[] = [];
  const notes: string[] = [];
  const cfg = buildNodeConfig({ host: "127.0.0.1", data_dir: "/nonexistent/worker-guards-test", rainstorm });
  const worker = new Worker({
    cfg,
    log: makeLogger("worker", "info", { write: (text) => lines.push(text) }),
    onTaskDied: (d) => deaths.push(d),
    transport: {} as RainstormTransport,
    clock,
    spawnOperator: () => {
      const op = new QuietOperator(1000 + ops.length);
      ops.push(op);
      return op;
    },
    localLogs: { mkdir: () => {}, append: (_path, text) => void notes.push(text) },
    collectGarbage: () => void collected.push(clock.nowMs()),
    ...(leader ? { leader } : {}),
  });
  const start = (job: string, index = 0) =>
    worker.startTask({
      job,
      stage: 0,
      index,
      op: "my-op",
      args: [],
      routes: { version: 1, stages: [["127.0.0.1:15000", "127.0.0.1:15000"]] },
      dest: "out.txt",
    });
  /** Run the virtual clock to `ms` from its start, letting the promises each timer settles run too. */
  const until = async (ms: number) => {
    while (clock.fireNext(ms)) for (let i = 0; i < 5; i++) await Promise.resolve();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { clock, worker, ops, deaths, lines, notes, start, until, collected };
}

describe("a Worker that became idle collects its garbage once", () => {
  test("never before any work; once, IDLE_COLLECT_MS after its last task went; again only after more work", async () => {
    const w = quietWorker({});
    await w.until(10_000);
    expect(w.collected).toEqual([]);
    w.start("job-idle-1");
    await w.until(20_000);
    expect(w.collected).toEqual([]);
    await w.worker.stopJob("job-idle-1");
    await w.until(30_000);
    // Sampled every second: idle seen first at 21 s, collected at the first sample IDLE_COLLECT_MS later.
    expect(w.collected).toEqual([21_000 + IDLE_COLLECT_MS]);
    w.start("job-idle-2");
    await w.until(35_000);
    await w.worker.stopJob("job-idle-2");
    await w.until(45_000);
    expect(w.collected).toEqual([21_000 + IDLE_COLLECT_MS, 36_000 + IDLE_COLLECT_MS]);
  });
});

describe("a Worker kills a hung operator", () => {
  const JOB = "job-hung-1";

  test("inputs pending and no answer: killed once the timeout passes (not before); the death report and the task log say why", async () => {
    const w = quietWorker({ operator_timeout_ms: 5000 });
    w.start(JOB);
    w.ops[0]!.pending = 3; // written at time 0
    await w.until(5000); // the first sample (1 s) starts the silence: 4 s of silence measured at most
    expect(w.ops[0]!.kills).toBe(0);
    await w.until(6000);
    expect(w.ops[0]!.kills).toBe(1);
    expect(w.deaths).toEqual([{ job: JOB, stage: 0, index: 0, pid: 1000, reason: "operator answered nothing for 5000 ms with 3 inputs pending" }]);
    expect(w.notes.some((n) => n.includes(`task ${JOB}/0/0: killed: operator answered nothing for 5000 ms with 3 inputs pending`))).toBe(true);
    expect(w.lines.some((l) => l.includes(`task ${JOB}/0/0 (pid 1000) is hung`))).toBe(true);
    // Its replacement is watched afresh.
    w.start(JOB);
    w.ops[1]!.pending = 1;
    await w.until(11_000);
    expect(w.ops[1]!.kills).toBe(0);
    await w.until(12_000);
    expect(w.ops[1]!.kills).toBe(1);
    w.worker.stop();
  });

  test("an operator that answers, however slowly, or has nothing pending, or with the timeout 0, is never killed", async () => {
    const slow = quietWorker({ operator_timeout_ms: 5000 });
    slow.start(JOB, 0);
    slow.start(JOB, 1);
    slow.ops[0]!.pending = 100;
    const ticker = { cancel() {} };
    // One answer every 4 s: under the timeout each time.
    const answer = () => {
      slow.ops[0]!.answerOne();
      Object.assign(ticker, slow.clock.after(4000, answer));
    };
    Object.assign(ticker, slow.clock.after(4000, answer));
    await slow.until(60_000);
    expect(slow.ops.map((o) => o.kills)).toEqual([0, 0]);
    ticker.cancel();
    slow.worker.stop();

    const off = quietWorker({ operator_timeout_ms: 0 });
    off.start(JOB);
    off.ops[0]!.pending = 3;
    await off.until(600_000);
    expect(off.ops[0]!.kills).toBe(0);
    expect(off.deaths).toEqual([]);
    off.worker.stop();
  });
});

describe("a Worker stops the tasks of a job no leader claims", () => {
  /** A leader whose answer the test sets: each job's status, or unreachable. */
  function fakeLeader(): LeaderJobs & { status: Map<string, string>; down: boolean; asked: number } {
    const l = {
      addr: "127.0.0.1:15000",
      status: new Map<string, string>(),
      down: false,
      asked: 0,
      jobs: async (timeoutMs: number) => {
        l.asked++;
        expect(timeoutMs).toBeGreaterThan(0);
        if (l.down) throw new Error("connection refused");
        return [...l.status].map(([job, status]) => ({ job, status }));
      },
    };
    return l;
  }
  const TIMEOUT = 10_000;

  test("leader unreachable: a job's tasks stop after orphan_timeout_ms (not before) and within one more check; the log names the job and why", async () => {
    const leader = fakeLeader();
    const w = quietWorker({ orphan_timeout_ms: TIMEOUT }, leader);
    leader.status.set("job-a-1", "running");
    leader.status.set("job-b-2", "running");
    w.start("job-a-1", 0);
    w.start("job-a-1", 1);
    w.start("job-b-2", 0);
    await w.until(60_000);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 0, 0]);
    expect(leader.asked).toBe(60_000 / ORPHAN_CHECK_MS);
    // The leader goes at 60 s (last claim at 60 s): nothing stops before 70 s, all by 72 s.
    leader.down = true;
    await w.until(60_000 + TIMEOUT - 1);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 0, 0]);
    await w.until(60_000 + TIMEOUT + ORPHAN_CHECK_MS);
    expect(w.ops.map((o) => o.kills)).toEqual([1, 1, 1]);
    expect(w.worker.list()).toEqual([]);
    const said = w.lines.filter((l) => l.includes("stopping its"));
    expect(said.length).toBe(2);
    expect(said[0]).toContain("job job-a-1: stopping its 2 tasks on this worker: no leader has claimed the job for 10000 ms");
    expect(said[0]).toContain("the leader at 127.0.0.1:15000 is unreachable (connection refused)");
    // Each stopped task is reported dead (a leader that still runs the job would restart it).
    expect(w.deaths.map((d) => [d.job, d.index, d.pid])).toEqual([
      ["job-a-1", 0, 1000],
      ["job-a-1", 1, 1001],
      ["job-b-2", 0, 1002],
    ]);
    expect(w.deaths[0]!.reason).toBe(
      "stopped by its worker: no leader has claimed the job for 10000 ms: the leader at 127.0.0.1:15000 is unreachable (connection refused)",
    );
    // Nothing left to ask about.
    const asked = leader.asked;
    await w.until(80_000);
    expect(leader.asked).toBe(asked);
    w.worker.stop();
  });

  test("a job the leader does not know stops after the timeout; one it reports ended after the grace; a running one stays", async () => {
    const leader = fakeLeader();
    const w = quietWorker({ orphan_timeout_ms: TIMEOUT }, leader);
    leader.status.set("job-run-1", "running");
    w.start("job-run-1");
    w.start("job-gone-2"); // never known to the leader
    w.start("job-done-3");
    leader.status.set("job-done-3", "done"); // seen ended at the first check (2 s)
    await w.until(ORPHAN_CHECK_MS + ENDED_GRACE_MS - 1);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 0, 0]);
    await w.until(ORPHAN_CHECK_MS + ENDED_GRACE_MS);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 0, 1]);
    expect(w.lines.some((l) => l.includes("job job-done-3: stopping its 1 tasks on this worker: the leader at 127.0.0.1:15000 reports the job done"))).toBe(
      true,
    );
    // job-gone-2 was first seen at the first check (2 s): stopped at 12 s.
    await w.until(ORPHAN_CHECK_MS + TIMEOUT - 1);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 0, 1]);
    await w.until(ORPHAN_CHECK_MS + TIMEOUT);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 1, 1]);
    expect(
      w.lines.some((l) =>
        l.includes(
          "job job-gone-2: stopping its 1 tasks on this worker: no leader has claimed the job for 10000 ms: the leader at 127.0.0.1:15000 does not know it",
        ),
      ),
    ).toBe(true);
    await w.until(600_000);
    expect(w.ops.map((o) => o.kills)).toEqual([0, 1, 1]);
    expect(w.worker.list().map((t) => t.job)).toEqual(["job-run-1"]);
    w.worker.stop();
  });

  test("without a leader to ask (the simulator), tasks run until stopped", async () => {
    const w = quietWorker({ orphan_timeout_ms: 1000 });
    w.start("job-a-1");
    await w.until(600_000);
    expect(w.ops[0]!.kills).toBe(0);
    w.worker.stop();
  });
});

describe("the reason of a task's last restart reaches list_tasks as it reaches the task_restarted event", () => {
  test("job machine: a restarted task keeps the reason its worker reported", () => {
    const m = new JobMachine({ selfAddr: "10.0.0.1:15000", maxTaskRestarts: 5, term: 1, logRetentionMs: 0 });
    m.step(0, { type: "members", workers: ["10.0.0.1:15000"], hostsUp: ["10.0.0.1"] });
    const spec = parseJobArgs(["1", "1", "-stage-config-map", "stage0 echo-wrapper", "src", "dest", "false", "false", "0", "0", "0"]);
    m.step(1, { type: "submit", id: "job-x-1", spec });
    m.step(2, { type: "task_started", job: "job-x-1", stage: 0, index: 0, addr: "10.0.0.1:15000", pid: 7, logPath: "/l" });
    const task = () => m.job("job-x-1")!.tasks[0]![0]!;
    expect(task().lastRestartReason).toBeUndefined();
    const reason = "operator answered nothing for 5000 ms with 3 inputs pending";
    m.step(3, { type: "task_exited", job: "job-x-1", stage: 0, index: 0, pid: 7, reason });
    const out = m.step(4, { type: "task_started", job: "job-x-1", stage: 0, index: 0, addr: "10.0.0.1:15000", pid: 8, logPath: "/l" });
    expect(out).toContainEqual({ cmd: "emit", job: "job-x-1", event: { event: "task_restarted", stage: 0, index: 0, node: "10.0.0.1", pid: 8, reason } });
    expect(task().lastRestartReason).toBe(reason);
  });
});
