/**
 * The leader's job state machine driven by hand: events and nowMs in, commands out. Placement,
 * acceptance, rescheduling after a task or worker failure, route updates, completion, failure,
 * output notices (counted per appender, resends dropped) and autoscaling carried out.
 */
import { describe, expect, test } from "bun:test";
import type { AutoscaleConfig } from "./autoscale.ts";
import { AUTOSCALE_SAMPLE_MS, type JobCommand, type JobInput, JobMachine, rateKey, RESTART_RETRY_MS } from "./job_machine.ts";
import { SOURCE_JOURNAL_MS } from "./job_source.ts";
import type { JobSpec } from "./plan.ts";

const SELF = "10.0.0.1:15000";
const W = ["10.0.0.1:15000", "10.0.0.2:15000", "10.0.0.3:15000"];
const hosts = (addrs: string[]) => addrs.map((a) => a.split(":")[0]!);

function spec(over: Partial<JobSpec> = {}): JobSpec {
  return {
    stages: [
      { op: "grep", args: ["x"] },
      { op: "aggregate", args: ["0"] },
    ],
    tasksPerStage: 3,
    src: "in.csv",
    dest: "out.txt",
    exactlyOnce: false,
    autoscale: false,
    inputRate: 0,
    lowWatermark: 0,
    highWatermark: 0,
    ...over,
  };
}

/** An output notice of job "j"'s last stage (stage 1): exactly-once `from` unless one is given. */
const notice = (seq: number, total: number, lines: string[], over: Partial<Extract<JobInput, { type: "outputs" }>> = {}): JobInput => ({
  type: "outputs",
  job: "j",
  stage: 1,
  index: 0,
  from: "s1t0",
  seq,
  total,
  lines,
  ...over,
});

/** The machine with its journal commands left out: these tests are about the other commands (journaling has its own below). */
class QuietMachine extends JobMachine {
  override step(nowMs: number, input: JobInput): JobCommand[] {
    return super.step(nowMs, input).filter((c) => c.cmd !== "journal");
  }
}

const of = <K extends JobCommand["cmd"]>(cmds: JobCommand[], cmd: K) => cmds.filter((c): c is Extract<JobCommand, { cmd: K }> => c.cmd === cmd);
const events = (cmds: JobCommand[]) => of(cmds, "emit").map((c) => c.event.event);

/** A machine with workers W and job "j" submitted; with `startAll`, every first start answered (pids 100, 101, ...). */
function setup(over: Partial<JobSpec> = {}, startAll = true, autoscale?: AutoscaleConfig) {
  const m = new QuietMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 1, logRetentionMs: 60_000 });
  m.step(0, { type: "members", workers: W, hostsUp: hosts(W) });
  const submitted = m.step(0, { type: "submit", id: "j", spec: spec(over), ...(autoscale ? { autoscale } : {}) });
  let pid = 100;
  const answers: JobCommand[] = [];
  if (startAll)
    for (const c of of(submitted, "start"))
      answers.push(...m.step(1, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: pid++, logPath: "" }));
  return { m, submitted, answers, job: m.job("j")! };
}

describe("placement", () => {
  test.each([
    // [tasks per stage, workers, expected addresses of stage 0 then stage 1]
    [3, W, [W, [W[0], W[1], W[2]].map((_, i) => W[(3 + i) % 3])]],
    [
      2,
      W,
      [
        [W[0], W[1]],
        [W[2], W[0]],
      ],
    ],
    [1, [W[1]!], [[W[1]], [W[1]]]],
  ] as [number, string[], string[][]][])("%i tasks per stage on %j", (n, workers, expected) => {
    const m = new QuietMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 1, logRetentionMs: 0 });
    m.step(0, { type: "members", workers, hostsUp: hosts(workers) });
    const cmds = m.step(0, { type: "submit", id: "j", spec: spec({ tasksPerStage: n }) });
    expect(m.job("j")!.routes).toEqual({ version: 1, term: 1, stages: expected });
    // The leader's own worker learns the routes first (the source sends through it), then every task starts.
    expect(cmds[0]).toEqual({ cmd: "routes", job: "j", addrs: [SELF], routes: m.job("j")!.routes });
    expect(of(cmds, "start").map((c) => c.addr)).toEqual(expected.flat());
    expect(of(cmds, "start").every((c) => c.start.routes.version === 1 && c.start.exactlyOnce === false)).toBe(true);
  });

  test("accepted, answered and the source started only once every first start is answered", () => {
    const { m, submitted } = setup({}, false);
    const starts = of(submitted, "start");
    let out: JobCommand[] = [];
    starts.forEach((c, i) => {
      out = m.step(1, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: 10 + i, logPath: `/l${i}` });
      if (i < starts.length - 1) expect(out).toEqual([]);
    });
    expect(out.map((c) => c.cmd)).toEqual(["emit", "log", "submit_result", "run_source", "log"]);
    expect(of(out, "submit_result")[0]).toEqual({ cmd: "submit_result", job: "j" });
    // The source runs on a worker other than the leader's node (the data plane stays off the leader).
    expect(of(out, "run_source")[0]).toMatchObject({ job: "j", fromLine: 0 });
    expect(of(out, "run_source")[0]!.addr).not.toBe(SELF);
    expect(
      m
        .job("j")!
        .tasks.flat()
        .map((t) => t.pid),
    ).toEqual([10, 11, 12, 13, 14, 15]);
  });

  test("a first start that fails fails the job and answers the submitter with why", () => {
    const { m, submitted } = setup({}, false);
    const c = of(submitted, "start")[2]!;
    const out = m.step(1, { type: "task_start_failed", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, error: "boom" });
    expect(events(out)).toEqual(["failed"]);
    expect(of(out, "submit_result")[0]).toEqual({ cmd: "submit_result", job: "j", error: "boom" });
    expect(of(out, "stop_job")[0]!.endOfStream).toBe(false);
    expect(m.job("j")!.status).toBe("failed");
    // Later answers of the failed job change nothing.
    const late = of(submitted, "start")[0]!;
    expect(m.step(2, { type: "task_started", job: "j", stage: late.start.stage, index: late.start.index, addr: late.addr, pid: 5, logPath: "" })).toEqual([]);
  });
});

describe("rescheduling", () => {
  test("a task whose operator died restarts on its alive worker; routes stay", () => {
    const { m, job } = setup();
    const t = job.tasks[1]![0]!;
    const out = m.step(5, { type: "task_exited", job: "j", stage: 1, index: 0, pid: t.pid, reason: "exit 1" });
    expect(of(out, "start").map((c) => c.addr)).toEqual([t.addr]);
    expect(of(out, "routes")).toEqual([]);
    expect(job.routes.version).toBe(1);
    const done = m.step(6, { type: "task_started", job: "j", stage: 1, index: 0, addr: t.addr, pid: 999, logPath: "" });
    expect(of(done, "emit")[0]!.event).toEqual({ event: "task_restarted", stage: 1, index: 0, node: t.addr.split(":")[0]!, pid: 999, reason: "exit 1" });
    expect(of(done, "routes")).toEqual([]);
    expect(t.restarts).toBe(1);
  });

  test.each([
    ["a stale pid (an older incarnation)", 1, 0],
    ["an unknown task", 9, 0],
  ])("a death report of %s is ignored", (_, stage, pidOffset) => {
    const { m, job } = setup();
    const pid = (job.tasks[stage]?.[0]?.pid ?? 100) + pidOffset - 1;
    expect(m.step(5, { type: "task_exited", job: "j", stage, index: 0, pid, reason: "x" })).toEqual([]);
  });

  test("a task that dies more than maxTaskRestarts times fails its job", () => {
    const { m, job } = setup();
    const t = job.tasks[0]![1]!;
    let out: JobCommand[] = [];
    for (let i = 0; i < 3; i++) {
      out = m.step(10 + i, { type: "task_exited", job: "j", stage: 0, index: 1, pid: t.pid, reason: `death ${i}` });
      if (i < 2) m.step(10 + i, { type: "task_started", job: "j", stage: 0, index: 1, addr: t.addr, pid: 500 + i, logPath: "" });
    }
    expect(events(out)).toEqual(["failed"]);
    expect(of(out, "emit")[0]!.event).toEqual({ event: "failed", job: "j", error: "task stage0[1] (grep) died 3 times; last: death 2" });
  });

  test("a worker that leaves: its tasks move to the least loaded alive workers, with new routes to everyone", () => {
    const { m, job } = setup();
    const gone = W[2]!;
    const moved = job.tasks.flat().filter((t) => t.addr === gone);
    const out = m.step(20, { type: "members", workers: [W[0]!, W[1]!], hostsUp: hosts([W[0]!, W[1]!]) });
    expect(of(out, "start").length).toBe(moved.length);
    expect(job.tasks.flat().some((t) => t.addr === gone)).toBe(false);
    expect(job.routes.version).toBe(1 + moved.length);
    // Routes go out once each moved task runs: to this node and every task's worker.
    let routes: JobCommand[] = [];
    for (const c of of(out, "start"))
      routes = m.step(21, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: 700 + c.start.index, logPath: "" });
    expect(of(routes, "routes")[0]!.addrs.sort()).toEqual([W[0]!, W[1]!]);
    expect(of(routes, "routes")[0]!.routes.stages.flat()).not.toContain(gone);
  });

  test("a suspect worker keeps its tasks", () => {
    const { m } = setup();
    expect(of(m.step(20, { type: "members", workers: [W[0]!, W[1]!], hostsUp: hosts(W) }), "start")).toEqual([]);
  });

  test("a restart whose start fails is tried again RESTART_RETRY_MS later, as a new death", () => {
    const { m, job } = setup();
    const t = job.tasks[0]![0]!;
    m.step(30, { type: "task_exited", job: "j", stage: 0, index: 0, pid: t.pid, reason: "exit 1" });
    const failed = m.step(31, { type: "task_start_failed", job: "j", stage: 0, index: 0, addr: t.addr, error: "refused" });
    expect(of(failed, "log")[0]!.level).toBe("warn");
    expect(m.nextDueMs()).toBe(31 + RESTART_RETRY_MS);
    expect(m.step(31 + RESTART_RETRY_MS - 1, { type: "tick" })).toEqual([]);
    const retry = m.step(31 + RESTART_RETRY_MS, { type: "tick" });
    expect(of(retry, "start").length).toBe(1);
    expect(t.restarts).toBe(2);
  });
});

describe("completion and output notices", () => {
  test("the last stage's tasks start with dest; the others without", () => {
    const { submitted } = setup();
    expect(of(submitted, "start").map((c) => [c.start.stage, c.start.dest])).toEqual([
      [0, undefined],
      [0, undefined],
      [0, undefined],
      [1, "out.txt"],
      [1, "out.txt"],
      [1, "out.txt"],
    ]);
  });

  test("source done: done with the counts, end of stream to every task, then exactly-once logs go after the retention", () => {
    const { m } = setup({ exactlyOnce: true });
    m.step(100, { type: "source_progress", job: "j", tuplesRead: 3 });
    m.step(150, notice(4, 2, ["a\t1", "b\t1"]));
    const out = m.step(1000, { type: "source_done", job: "j" });
    expect(of(out, "emit")[0]!.event).toEqual({ event: "done", job: "j", tuples_read: 3, tuples_out: 2, duration_ms: 1000, tuples_per_s: 3, dest: "out.txt" });
    expect(of(out, "stop_job")[0]!).toEqual({ cmd: "stop_job", job: "j", addrs: W, endOfStream: true });
    expect(of(out, "job_ended")[0]!.status).toBe("done");
    // What the job keeps of its results is one entry per appender.
    expect([...m.job("j")!.outputs]).toEqual([["s1t0", { seq: 4, total: 2 }]]);
    // A resend after the end is taken and dropped.
    expect(m.step(1001, notice(4, 2, ["a\t1", "b\t1"]))).toEqual([]);
    expect(m.nextDueMs()).toBe(61_000);
    // After the retention: the task logs go, then the job is forgotten.
    const later = m.step(61_000, { type: "tick" });
    expect(of(later, "remove_task_logs")[0]!.tasks.length).toBe(6);
    expect(of(later, "forget_job")).toEqual([{ cmd: "forget_job", job: "j" }]);
    expect(m.job("j")).toBeUndefined();
    expect(m.allJobs()).toEqual([]);
    expect(of(m.step(61_001, notice(5, 3, ["c\t1"])), "refuse")[0]!.status).toBe(404);
  });

  test.each([
    ["done", (m: JobMachine) => m.step(1000, { type: "source_done", job: "j" })],
    ["failed", (m: JobMachine) => m.step(1000, { type: "source_failed", job: "j", error: "x" })],
    ["cancelled", (m: JobMachine) => m.step(1000, { type: "cancel", job: "j" })],
  ])("an at-least-once job that ended %s is forgotten after the retention, not before", (_, endIt) => {
    const { m } = setup();
    endIt(m);
    expect(of(m.step(60_999, { type: "tick" }), "forget_job")).toEqual([]);
    expect(m.job("j")).toBeDefined();
    expect(of(m.step(61_000, { type: "tick" }), "forget_job")).toEqual([{ cmd: "forget_job", job: "j" }]);
    expect(m.allJobs()).toEqual([]);
    expect(m.nextDueMs()).toBeUndefined();
  });

  test("the source fails: the job fails, tasks are killed", () => {
    const { m } = setup();
    const out = m.step(5, { type: "source_failed", job: "j", error: "reading in.csv: 500" });
    expect(of(out, "emit")[0]!.event).toEqual({ event: "failed", job: "j", error: "source: reading in.csv: 500" });
    expect(of(out, "stop_job")[0]!.endOfStream).toBe(false);
    expect(of(out, "submit_result")).toEqual([]);
  });

  test.each([
    ["an unknown job", true, { job: "nope" }, 404, "not known"],
    ["a stage that is not the last", true, { stage: 0, from: "s0t0" }, 400, "only its last stage (stage 1) writes dest, got stage 0"],
    ["an exactly-once job, from an incarnation", true, { from: "s1t0-77" }, 400, "an exactly-once job's task appends as s<stage>t<index>, got s1t0-77"],
    ["an at-least-once job, from a task", false, {}, 400, "an at-least-once job's task appends as s<stage>t<index>-<pid>, got s1t0"],
  ] as [string, boolean, Partial<Extract<JobInput, { type: "outputs" }>>, number, string][])(
    "an output notice for %s is refused",
    (_, exactlyOnce, over, status, text) => {
      const { m } = setup({ exactlyOnce });
      const out = m.step(5, notice(1, 1, ["a\t1"], over));
      expect(out.length).toBe(1);
      expect(of(out, "refuse")[0]!.status).toBe(status);
      expect(of(out, "refuse")[0]!.error).toContain(text);
    },
  );

  test("exactly-once: tuples_out is the sum of each task's latest total; a seq heard already (a resend) is dropped", () => {
    const { m, job } = setup({ exactlyOnce: true });
    const first = m.step(5, notice(1, 2, ["a\t1", "b\t1"]));
    expect(of(first, "emit")[0]!.event).toEqual({ event: "output", lines: ["a\t1", "b\t1"], from: "s1t0", seq: 1 });
    // Record 2 had no results: the next notice is seq 3.
    expect(events(m.step(6, notice(3, 3, ["c\t1"])))).toEqual(["output"]);
    expect(m.step(7, notice(3, 3, ["c\t1"]))).toEqual([]);
    expect(m.step(8, notice(1, 2, ["a\t1", "b\t1"]))).toEqual([]);
    m.step(9, notice(1, 4, ["x\t1", "x\t2", "y\t1", "y\t2"], { index: 2, from: "s1t2" }));
    expect(job.tuplesOut).toBe(7);
    // A notice whose lines were dropped (a worker's full queue) still counts.
    expect(m.step(10, notice(5, 5, []))).toEqual([]);
    expect(job.tuplesOut).toBe(9);
  });

  test("a notice that merges several: only the lines after the total heard so far are streamed", () => {
    const { m, job } = setup({ exactlyOnce: true });
    m.step(5, notice(2, 2, ["a\t1", "a\t2"]));
    const out = m.step(6, notice(4, 4, ["a\t1", "a\t2", "a\t3", "a\t4"]));
    expect(of(out, "emit")[0]!.event).toEqual({ event: "output", lines: ["a\t3", "a\t4"], from: "s1t0", seq: 4 });
    expect(job.tuplesOut).toBe(4);
  });

  test("at-least-once: each incarnation of a task counts on its own", () => {
    const { m, job } = setup();
    m.step(5, notice(1, 2, ["a\t1", "b\t1"], { from: "s1t0-100" }));
    m.step(6, notice(1, 1, ["a\t1"], { from: "s1t0-200" }));
    expect(job.tuplesOut).toBe(3);
    expect(job.outputs.size).toBe(2);
  });
});

describe("cancel (kill_job)", () => {
  test("a running job: every task stopped (no end of stream), then cancelled told with its counts", () => {
    const { m, job } = setup({ exactlyOnce: true });
    m.step(100, { type: "source_progress", job: "j", tuplesRead: 7 });
    m.step(150, notice(1, 1, ["a\t1"]));
    const out = m.step(2000, { type: "cancel", job: "j" });
    expect(out.map((c) => c.cmd)).toEqual(["job_ended", "stop_job", "log", "emit"]);
    expect(of(out, "job_ended")[0]!.status).toBe("cancelled");
    expect(of(out, "stop_job")[0]!).toEqual({ cmd: "stop_job", job: "j", addrs: W, endOfStream: false });
    expect(of(out, "emit")[0]!.event).toEqual({ event: "cancelled", job: "j", tuples_read: 7, tuples_out: 1, dest: "out.txt" });
    expect(job.status).toBe("cancelled");
    expect(job.endedMs).toBe(2000);
    // Exactly-once task logs go after the retention, as for any ended job.
    expect(m.nextDueMs()).toBe(62_000);
  });

  test.each([
    ["an unknown job", "nope", undefined, 404, 'job "nope": no such job on this leader'],
    ["a done job", "j", "source_done", 409, "job j has already ended (done); only a running job can be killed"],
    ["a failed job", "j", "source_failed", 409, "job j has already ended (failed)"],
    ["a cancelled job", "j", "cancel", 409, "job j has already ended (cancelled)"],
  ] as [string, string, "source_done" | "source_failed" | "cancel" | undefined, number, string][])(
    "cancel of %s is refused (%#)",
    (_, id, before, status, text) => {
      const { m } = setup();
      if (before) m.step(10, { type: before, job: "j", error: "x" } as JobInput);
      const out = m.step(20, { type: "cancel", job: id });
      expect(out).toEqual([{ cmd: "refuse", status, error: expect.stringContaining(text) }]);
    },
  );

  test("cancelled before every first start is answered: the submitter hears it could not start; late answers change nothing", () => {
    const { m, submitted } = setup({}, false);
    const out = m.step(5, { type: "cancel", job: "j" });
    expect(of(out, "submit_result")).toEqual([{ cmd: "submit_result", job: "j", error: "cancelled by kill_job" }]);
    const c = of(submitted, "start")[0]!;
    expect(m.step(6, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: 9, logPath: "" })).toEqual([]);
  });

  test("after a cancel, deaths, the source's end and membership changes do nothing", () => {
    const { m, job } = setup();
    m.step(5, { type: "cancel", job: "j" });
    const t = job.tasks[0]![0]!;
    const later: JobInput[] = [
      { type: "task_exited", job: "j", stage: 0, index: 0, pid: t.pid, reason: "killed" },
      { type: "source_done", job: "j" },
      { type: "source_failed", job: "j", error: "stopped" },
      { type: "members", workers: [W[0]!], hostsUp: hosts([W[0]!]) },
    ];
    for (const input of later) expect(m.step(6, input)).toEqual([]);
    expect(job.status).toBe("cancelled");
  });

  test("after a cancel, output notices still count and stream: the workers send theirs while they stop the tasks, before cancelled is told", () => {
    const { m, job } = setup();
    m.step(5, { type: "cancel", job: "j" });
    expect(events(m.step(6, notice(1, 1, ["a\t1"], { from: "s1t0-100" })))).toEqual(["output"]);
    expect(job.tuplesOut).toBe(1);
  });
});

describe("autoscaling", () => {
  const cfg: AutoscaleConfig = { lowWatermark: 10, highWatermark: 100, sustainSamples: 1, settleMs: 0, minTasks: 1, maxTasks: 4 };
  const stateless = { stages: [{ op: "grep", args: ["x"] }], tasksPerStage: 2, autoscale: true };

  /** Sample once at `nowMs` with every stage-0 task at `rate` tuples/s. */
  function sample(m: JobMachine, nowMs: number, rate: number): JobCommand[] {
    const job = m.job("j")!;
    const asked = m.step(nowMs, { type: "tick" });
    expect(of(asked, "sample_rates").length).toBe(1);
    const rates = new Map(job.tasks[0]!.map((t) => [rateKey("j", 0, t.index, t.pid), rate]));
    return m.step(nowMs, { type: "rates", job: "j", rates });
  }

  test("a rate above HW adds a task: it starts first, the routes follow once it runs", () => {
    const { m, job } = setup(stateless, true, cfg);
    expect(m.nextDueMs()).toBe(1 + AUTOSCALE_SAMPLE_MS);
    const out = sample(m, 1 + AUTOSCALE_SAMPLE_MS, 500);
    const start = of(out, "start")[0]!;
    expect(start.start.index).toBe(2);
    expect(start.start.routes.stages[0]!.length).toBe(3);
    expect(of(out, "routes")).toEqual([]);
    // While the change is under way, a due sample is skipped.
    expect(of(m.step(1 + 2 * AUTOSCALE_SAMPLE_MS, { type: "tick" }), "sample_rates")).toEqual([]);
    const ran = m.step(2100, { type: "task_started", job: "j", stage: 0, index: 2, addr: start.addr, pid: 321, logPath: "" });
    expect(of(ran, "routes")[0]!.routes.stages[0]!.length).toBe(3);
    expect(of(ran, "emit")[0]!.event).toMatchObject({ event: "scaled", stage: 0, from: 2, to: 3, avg_rate_per_task: 500 });
    expect(job.tasks[0]!.length).toBe(3);
  });

  test("a rate below LW removes the last task: routes without it go out first (to it too), then it is retired", () => {
    const { m, job } = setup({ ...stateless, tasksPerStage: 3 }, true, cfg);
    const last = job.tasks[0]![2]!;
    const out = sample(m, 1 + AUTOSCALE_SAMPLE_MS, 1);
    expect(out.map((c) => c.cmd)).toEqual(["routes", "retire"]);
    expect(of(out, "routes")[0]!.addrs).toContain(last.addr);
    expect(of(out, "routes")[0]!.routes.stages[0]!.length).toBe(2);
    const retired = m.step(1500, { type: "retired", job: "j", stage: 0, index: 2, addr: last.addr });
    expect(of(retired, "emit")[0]!.event).toMatchObject({ event: "scaled", from: 3, to: 2 });
  });

  test("a scale-up whose start fails takes the task out again (no route named it)", () => {
    const { m, job } = setup(stateless, true, cfg);
    const start = of(sample(m, 1 + AUTOSCALE_SAMPLE_MS, 500), "start")[0]!;
    const out = m.step(1100, { type: "task_start_failed", job: "j", stage: 0, index: 2, addr: start.addr, error: "no" });
    expect(of(out, "routes")).toEqual([]);
    expect(job.tasks[0]!.length).toBe(2);
    expect(job.routes.stages[0]!.length).toBe(2);
  });
});

describe("journal and takeover (issue 14)", () => {
  const journaled = (cmds: JobCommand[]) => of(cmds, "journal").map((c) => c.record);

  test("a submit is journaled first, with its placement; a moved task's routes are journaled before any command names them", () => {
    const m = new JobMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 3, logRetentionMs: 0 });
    m.step(0, { type: "members", workers: W, hostsUp: hosts(W) });
    const cmds = m.step(0, { type: "submit", id: "j", spec: spec(), startedWallMs: 42 });
    expect(cmds[0]).toMatchObject({ cmd: "journal", record: { k: "submit", term: 3, job: "j", startedWallMs: 42, routes: { version: 1 } } });
    expect(m.job("j")!.routes.term).toBe(3);
    for (const c of of(cmds, "start"))
      m.step(1, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: 7, logPath: "" });
    // Worker 3 goes: its tasks move, and the new routes are journaled before the starts that carry them.
    const moved = m.step(2, { type: "members", workers: W.slice(0, 2), hostsUp: hosts(W.slice(0, 2)) });
    const firstJournal = moved.findIndex((c) => c.cmd === "journal");
    const firstStart = moved.findIndex((c) => c.cmd === "start");
    expect(firstJournal).toBeGreaterThanOrEqual(0);
    expect(firstJournal).toBeLessThan(firstStart);
    expect(journaled(moved).at(-1)).toEqual({ k: "routes", term: 3, routes: { version: m.job("j")!.routes.version, stages: m.job("j")!.routes.stages } });
  });

  test("the end is journaled with its counts", () => {
    const m = new JobMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 1, logRetentionMs: 0 });
    m.step(0, { type: "members", workers: W, hostsUp: hosts(W) });
    for (const c of of(m.step(0, { type: "submit", id: "j", spec: spec() }), "start"))
      m.step(1, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: 7, logPath: "" });
    const cmds = m.step(5, { type: "source_done", job: "j" });
    expect(journaled(cmds)).toEqual([{ k: "end", term: 1, status: "done", tuplesRead: 0, tuplesOut: 0, durationMs: 5 }]);
  });

  test("adopt: running tasks kept, missing ones restarted (moved off dead workers), routes of the next version under the new term, source resumed", () => {
    const m = new JobMachine({ selfAddr: W[1]!, maxTaskRestarts: 2, term: 2, logRetentionMs: 0 });
    const alive = W.slice(1);
    m.step(0, { type: "members", workers: alive, hostsUp: hosts(alive) });
    const found = new Map([
      ["0/1", { addr: W[1]!, pid: 11, logPath: "/l1" }],
      ["1/0", { addr: W[2]!, pid: 12, logPath: "/l2" }],
    ]);
    const cmds = m.step(10, {
      type: "adopt",
      journaled: {
        job: "j",
        spec: spec({ tasksPerStage: 2 }),
        startedWallMs: 1,
        routes: {
          version: 4,
          stages: [
            [W[0]!, W[1]!],
            [W[2]!, W[0]!],
          ],
        },
        pos: 1234,
        status: "running",
        term: 1,
      },
      found,
    });
    const job = m.job("j")!;
    expect(job.accepted).toBe(true);
    expect(job.tuplesRead).toBe(1234);
    expect(job.routes.version).toBe(5);
    expect(job.routes.term).toBe(2);
    // The tasks on W[0] (dead) restart elsewhere; the found ones keep their pids.
    expect(job.tasks[0]![1]).toMatchObject({ addr: W[1], pid: 11 });
    expect(job.tasks[1]![0]).toMatchObject({ addr: W[2], pid: 12 });
    const starts = of(cmds, "start");
    expect(starts.map((c) => `${c.start.stage}/${c.start.index}`).sort()).toEqual(["0/0", "1/1"]);
    for (const c of starts) expect(alive).toContain(c.addr);
    expect(of(cmds, "routes")[0]!.routes).toMatchObject({ version: 5, term: 2 });
    // The source starts again after the journaled position, off the leader's node.
    expect(of(cmds, "run_source")).toEqual([{ cmd: "run_source", job: "j", addr: W[2]!, fromLine: 1234 }]);
    expect(journaled(cmds)[0]).toMatchObject({ k: "routes", term: 2, routes: { version: 5 } });
  });

  test("adopt ignores a job it has already", () => {
    const m = new JobMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 2, logRetentionMs: 0 });
    m.step(0, { type: "members", workers: W, hostsUp: hosts(W) });
    const j = { job: "j", spec: spec(), startedWallMs: 1, routes: { version: 1, stages: [W, W] }, pos: 0, status: "running" as const, term: 1 };
    m.step(1, { type: "adopt", journaled: j, found: new Map() });
    const version = m.job("j")!.routes.version;
    expect(m.step(2, { type: "adopt", journaled: j, found: new Map() })).toEqual([]);
    expect(m.job("j")!.routes.version).toBe(version);
  });
});

describe("the source on a worker (issue 14)", () => {
  test("it moves when its worker goes, from its acknowledged position; progress of the old one is ignored; done from either ends the job", () => {
    const { m } = setup();
    const job = m.job("j")!;
    const first = job.source!.addr;
    expect(first).not.toBe(SELF);
    m.step(2, { type: "source_progress", job: "j", tuplesRead: 900, acked: 700, addr: first });
    expect(job.source!.acked).toBe(700);
    const alive = W.filter((w) => w !== first);
    const moved = m.step(3, { type: "members", workers: alive, hostsUp: hosts(alive) });
    const run = of(moved, "run_source")[0]!;
    expect(run).toMatchObject({ job: "j", fromLine: 700 });
    expect(alive).toContain(run.addr);
    // A late report of the lost source changes nothing.
    m.step(4, { type: "source_progress", job: "j", tuplesRead: 1000, acked: 1000, addr: first });
    expect(job.source!.acked).toBe(700);
    expect(events(m.step(5, { type: "source_done", job: "j", addr: first }))).toContain("done");
  });

  test("a source that cannot start moves to another worker", () => {
    const { m } = setup();
    const at = m.job("j")!.source!.addr;
    const out = m.step(2, { type: "source_lost", job: "j", addr: at, reason: "start failed: 503" });
    expect(of(out, "run_source")[0]!.addr).not.toBe(at);
  });

  test("its acknowledged position is journaled at most every SOURCE_JOURNAL_MS", () => {
    const m = new JobMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 1, logRetentionMs: 0 });
    m.step(0, { type: "members", workers: W, hostsUp: hosts(W) });
    for (const c of of(m.step(0, { type: "submit", id: "j", spec: spec() }), "start"))
      m.step(1, { type: "task_started", job: "j", stage: c.start.stage, index: c.start.index, addr: c.addr, pid: 7, logPath: "" });
    const journaledAt = (now: number, acked: number) =>
      of(m.step(now, { type: "source_progress", job: "j", tuplesRead: acked, acked }), "journal").map((c) => c.record);
    expect(journaledAt(100, 10)).toEqual([]);
    expect(journaledAt(1 + SOURCE_JOURNAL_MS, 20)).toEqual([{ k: "source", term: 1, pos: 20 }]);
    expect(journaledAt(2 + SOURCE_JOURNAL_MS, 30)).toEqual([]);
    expect(journaledAt(2 + 2 * SOURCE_JOURNAL_MS, 40)).toEqual([{ k: "source", term: 1, pos: 40 }]);
  });
});

test("a death reported before its start was answered restarts the task once the answer comes", () => {
  const { m, job } = setup();
  const t = job.tasks[0]![0]!;
  const died = m.step(2, { type: "task_exited", job: "j", stage: 0, index: 0, pid: t.pid, reason: "killed" });
  const restart = of(died, "start")[0]!;
  // The new incarnation (pid 999) dies before the leader hears it started.
  expect(m.step(3, { type: "task_exited", job: "j", stage: 0, index: 0, pid: 999, reason: "killed again" })).toEqual([]);
  const answered = m.step(4, { type: "task_started", job: "j", stage: 0, index: 0, addr: restart.addr, pid: 999, logPath: "" });
  expect(of(answered, "start")).toHaveLength(1);
  expect(t.restarts).toBe(2);
});

test("a job that ended under an earlier leader is listed as it ended, then forgotten with its task logs after the retention", () => {
  const m = new JobMachine({ selfAddr: SELF, maxTaskRestarts: 2, term: 2, logRetentionMs: 1000 });
  m.step(0, { type: "members", workers: W, hostsUp: hosts(W) });
  const journaled = {
    job: "j",
    spec: spec({ exactlyOnce: true }),
    startedWallMs: 1,
    routes: { version: 3, stages: [W, W] },
    pos: 900,
    status: "done" as const,
    term: 1,
    tuplesRead: 1000,
    tuplesOut: 120,
    durationMs: 4000,
  };
  expect(m.step(10, { type: "adopt", journaled, found: new Map() })).toEqual([]);
  expect(m.job("j")).toMatchObject({ status: "done", tuplesRead: 1000, tuplesOut: 120, startedMs: -3990, endedMs: 10 });
  const later = m.step(1010, { type: "tick" });
  expect(later.map((c) => c.cmd)).toEqual(["remove_task_logs", "forget_job"]);
  expect(m.job("j")).toBeUndefined();
});
