/**
 * RainStorm jobs on real processes (memberd + hydfsd + rainstormd per node) on testNet(35), with
 * the inputs stored in HyDFS first and every result compared with a plain in-test reference
 * (outputs and dest's content). Faults fire on the job's progress and each test checks they
 * landed (the task restarted under another pid; an exactly-once task read its log back).
 * Each test starts from a whole cluster (beforeEach), whatever the test before it killed.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatCsvRecord, parseCsvLine } from "../../ops/csv.ts";
import { MULTI_CALL_NAME } from "../../ops/main.ts";
import { OPERATOR_NAMES } from "../../ops/registry.ts";
import { isAlive, LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { type KilledTask, ProgressFaults, recoveredInputs, restartOf } from "../testing/faults.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { countViolations, RainstormTestClient } from "../testing/rainstorm_client.ts";
import { app1Counts, multisetDiff, runningCountLines } from "../testing/reference.ts";
import { scaled } from "../testing/time.ts";
import { seededRng } from "../shared/rng.ts";
import {
  CHAOS_COL,
  CHAOS_LINES,
  CHAOS_PATTERN,
  chaosJobArgs,
  chaosKillAfterOutputs,
  chaosTarget,
  DEFAULT_CHAOS_SEED,
  drawChaosPlan,
} from "../testing/chaos_plan.ts";

setDefaultTimeout(scaled(120_000));

const ROOT = resolve(import.meta.dir, "../..");
const DATASET = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8");
const LINES = DATASET.split("\n").filter((l, i, all) => i < all.length - 1 || l !== "");

/**
 * An operators directory with the built-in operators plus one that exits at once. The built-in
 * binary is hard-linked (or copied) in and its names link to it there, as in dist/ops: a link
 * to a file outside the operators directory would be refused.
 */
function opsDirWithBrokenOperator(dir: string): string {
  const ops = join(dir, "ops");
  mkdirSync(ops, { recursive: true });
  const built = join(ROOT, "dist", "ops");
  try {
    linkSync(join(built, MULTI_CALL_NAME), join(ops, MULTI_CALL_NAME));
  } catch {
    copyFileSync(join(built, MULTI_CALL_NAME), join(ops, MULTI_CALL_NAME));
  }
  for (const n of OPERATOR_NAMES) symlinkSync(MULTI_CALL_NAME, join(ops, n));
  const broken = join(ops, "exit-now");
  writeFileSync(broken, "#!/bin/sh\necho 'exit-now: refusing to start (test operator)' >&2\nexit 3\n");
  chmodSync(broken, 0o755);
  return ops;
}

type Task = Awaited<ReturnType<RainstormTestClient["tasks"]>>[number];

/** Kill task `t` through the leader (kill_task) and return what was killed. */
async function killTask(rs: RainstormTestClient, t: Task | undefined): Promise<KilledTask> {
  expect(t).toBeDefined();
  expect((await rs.killTask(t!.node, t!.pid)).status).toBe(200);
  return { stage: t!.stage, task: t!.task, node: t!.node, pid: t!.pid };
}

/** Each killed task came back: a task_restarted event for it under another pid. */
function expectRestarted(events: Record<string, any>[], killed: KilledTask[]): void {
  expect(killed.length).toBeGreaterThan(0);
  for (const k of killed) {
    const found = restartOf(events, k);
    // On failure the message names the task and pid that did not come back.
    expect(typeof found === "string" ? found : "restarted").toBe("restarted");
  }
}

/** The job's tasks as the leader lists them now. */
async function jobTasks(rs: RainstormTestClient, job: string): Promise<Task[]> {
  return (await rs.tasks()).filter((t) => t.job === job);
}

describe("RainStorm on 5 nodes", () => {
  const dir = tempPath("rainstorm-test-");
  const usesBuilt = (() => {
    try {
      return readdirSync(join(ROOT, "dist", "ops")).includes("rainstorm-op");
    } catch {
      return false;
    }
  })();
  // With dist/ops built, a custom ops dir adds the broken operator; from source, rainstormd finds ops/*.ts.
  const extra = usesBuilt ? { rainstorm: { ops_dir: join(dir, "ops") } } : {};
  const c = new LocalCluster({ dir: join(dir, "cluster"), subnet: testNet(35), knobs: { t_cleanup_ms: 3000 }, extra, killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const rs = new RainstormTestClient(c);
  let destCounter = 0;
  const dest = () => `out-${++destCounter}.txt`;

  beforeAll(async () => {
    if (usesBuilt) opsDirWithBrokenOperator(dir);
    await c.up(5, scaled(30_000));
    await hydfs.write(1, "create", "dataset1.csv", DATASET);
    await hydfs.write(1, "create", "first1000.csv", `${LINES.slice(0, 1000).join("\n")}\n`);
  });
  // A test that killed a node leaves it dead: start what is missing, so no test depends on the order.
  beforeEach(async () => {
    await c.up(5, scaled(30_000));
  });
  afterAll(async () => {
    await c.down(true);
    if (!process.env.RAINSTORM_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  });

  test("identity job, 1 stage x 3 tasks: the output multiset equals the input lines", async () => {
    const out = dest();
    const run = await rs.run(["1", "3", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", out, "false", "false", "0", "0", "0"], scaled(60_000));
    expect(run.failed).toBeUndefined();
    expect(run.done?.tuples_read).toBe(LINES.length);
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1)).sort();
    expect(values).toEqual([...LINES].sort());
    // The same records were appended to dest in HyDFS.
    const stored = (await hydfs.getText(2, out)).split("\n").filter(Boolean);
    expect(stored.sort()).toEqual([...run.outputs].sort());
    // End of stream reached every task: each operator saw its input end and exited by itself.
    const logs = () =>
      [1, 2, 3, 4, 5].flatMap((k) => {
        const jobDir = join(c.dir, `node-${k}`, "data", "rainstorm", "logs", run.done!.job);
        try {
          return readdirSync(jobDir).map((f) => readFileSync(join(jobDir, f), "utf8"));
        } catch {
          return [];
        }
      });
    await waitFor(
      () => logs().length === 3 && logs().every((l) => l.includes("end of stream") && l.includes("exited with code 0")),
      scaled(5000),
      "every task to get end of stream and exit 0",
    );
    const metrics = await (await fetch(rs.url(1, "/metrics"))).text();
    expect(metrics).toContain(`rainstorm_job_tuples_read_total{job="${run.done!.job}",status="done"} ${LINES.length}`);
  });

  test("App 1: grep then aggregate (3 tasks per stage) gives the reference counts; dest is key\\t1..N per key", async () => {
    const pattern = "SIGN_";
    const col = 6; // Asset Category, e.g. SIGN_GUIDE, SIGN_POLE
    const reference = app1Counts(LINES, pattern, col);
    const out = dest();
    const run = await rs.run(
      ["2", "3", "-stage-config-map", `stage0 grep-wrapper ${pattern} ${col} stage1 aggregate-wrapper`, "dataset1.csv", out, "false", "false", "0", "0", "0"],
      scaled(60_000),
    );
    expect(run.failed).toBeUndefined();
    const finalCounts = new Map<string, number>();
    for (const line of run.outputs) {
      const [key, count] = [line.slice(0, line.lastIndexOf("\t")), Number(line.slice(line.lastIndexOf("\t") + 1))];
      finalCounts.set(key, Math.max(finalCounts.get(key) ?? 0, count));
    }
    expect(Object.fromEntries(finalCounts)).toEqual(Object.fromEntries(reference));
    expect(reference.size).toBeGreaterThan(1);
    // Without failures every record arrives once: the stream and dest are each key's running counts.
    expect(multisetDiff(run.outputs, runningCountLines(reference))).toEqual([]);
    expect(multisetDiff((await hydfs.getText(2, out)).split("\n").filter(Boolean), runningCountLines(reference))).toEqual([]);
  });

  test("App 2: grep then transform: one line per match, the first 3 fields correctly quoted; dest holds the same", async () => {
    const pattern = "Street Name";
    const expected = LINES.filter((l) => l.includes(pattern)).map((l) => formatCsvRecord(parseCsvLine(l).slice(0, 3)));
    const out = dest();
    const run = await rs.run(
      ["2", "3", "grep-wrapper", `'${pattern}' 4`, "transform-wrapper", "3", "dataset1.csv", out, "false", "false", "0", "0", "0"],
      scaled(60_000),
    );
    expect(run.failed).toBeUndefined();
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1));
    expect(values.sort()).toEqual(expected.sort());
    expect(values.some((v) => v.startsWith('"'))).toBe(true); // quoted fields with commas survived
    expect(multisetDiff((await hydfs.getText(2, out)).split("\n").filter(Boolean), run.outputs)).toEqual([]);
  });

  test("input rate: 100 tuples/s over 1,000 lines takes about 10 s; task rates add up to about 100", async () => {
    const sums: number[] = [];
    let sampler: Timer | undefined;
    const run = await rs.run(
      ["1", "3", "-stage-config-map", "stage0 echo-wrapper", "first1000.csv", dest(), "false", "false", "100", "0", "1000"],
      scaled(60_000),
      (ev) => {
        if (ev.event !== "accepted") return;
        sampler = setInterval(async () => {
          const tasks = (await rs.tasks()).filter((t) => t.job === ev.job);
          const total = tasks.reduce((n, t) => n + (t.rate ?? 0), 0);
          if (tasks.length > 0) sums.push(total);
        }, 1000);
      },
    );
    clearInterval(sampler);
    expect(run.done?.tuples_read).toBe(1000);
    // The lower bound is the rate limit itself (a slow box cannot break it): not scaled.
    expect(run.done!.duration_ms).toBeGreaterThan(8500);
    expect(run.done!.duration_ms).toBeLessThan(scaled(14_000));
    // Skip the first and last samples (partial seconds); the middle ones should be near 100.
    const middle = sums.slice(2, -2);
    expect(middle.length).toBeGreaterThan(3);
    const mean = middle.reduce((a, b) => a + b, 0) / middle.length;
    expect(mean).toBeGreaterThan(70);
    expect(mean).toBeLessThan(130);
  });

  test("kill_task of a stateless task mid-job (after 300 of 1,000 outputs): the task restarts under a new pid and the job completes", async () => {
    const killed: KilledTask[] = [];
    let job = "";
    const faults = new ProgressFaults([
      {
        afterOutputs: 300,
        act: async () =>
          void killed.push(
            await killTask(
              rs,
              (await jobTasks(rs, job)).find((x) => x.stage === 0),
            ),
          ),
      },
    ]);
    const run = await rs.run(
      ["2", "3", "echo-wrapper", "", "echo-wrapper", "", "first1000.csv", dest(), "false", "false", "300", "0", "1000"],
      scaled(60_000),
      (ev) => {
        if (ev.event === "accepted") job = ev.job;
        faults.onEvent(ev);
      },
    );
    await faults.settled();
    expect(run.failed).toBeUndefined();
    expectRestarted(run.events, killed);
    // At-least-once: every input line reached the output.
    const values = new Set(run.outputs.map((l) => l.slice(l.indexOf("\t") + 1)));
    for (const line of LINES.slice(0, 1000)) expect(values.has(line)).toBe(true);
  });

  test("bad jobs are refused before anything starts, naming the problem", async () => {
    const cases: [string[], string][] = [
      [["1", "1", "-stage-config-map", "stage0 no-such-op", "dataset1.csv", dest(), "false", "false", "0", "0", "0"], "unknown operator"],
      [["1", "1", "-stage-config-map", "stage0 ../../bin/sh", "dataset1.csv", dest(), "false", "false", "0", "0", "0"], "no '/' or '..'"],
      [["2", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", dest(), "false", "false", "0", "0", "0"], "stage map has 1 stages"],
      [["1", "1", "-stage-config-map", "stage0 echo-wrapper", "missing.csv", dest(), "false", "false", "0", "0", "0"], "no such HyDFS file"],
      [["1", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", "dataset1.csv", "false", "false", "0", "0", "0"], "already exists"],
      [["1", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", dest(), "false", "false", "fast", "0", "0"], "input_rate"],
      [["1", "1", "-stage-config-map", "stage0 grep-wrapper", "dataset1.csv", dest(), "false", "false", "0", "0", "0"], "grep"],
      [
        ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", dest(), "false", "true", "0", "0", "0"],
        "autoscale=true: HW must be above 0 tuples/s per task, got 0",
      ],
      [
        ["1", "1", "-stage-config-map", "stage0 aggregate-wrapper", "dataset1.csv", dest(), "true", "true", "0", "10", "100"],
        "autoscale=true: stage0 runs aggregate-wrapper, which is not a known stateless operator",
      ],
      [
        ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", dest(), "false", "true", "5", "10", "100", "--rate-schedule", "5:1s"],
        "input_rate is 5 and --rate-schedule is given",
      ],
    ];
    for (const [args, text] of cases) {
      const run = await rs.run(args);
      expect(run.rejected?.status).toBeGreaterThanOrEqual(400);
      expect(run.rejected?.error).toContain(text);
    }
  });

  test.if(usesBuilt)("an operator that exits at once fails the job with its error; then two jobs back to back succeed", async () => {
    const run = await rs.run(["1", "2", "-stage-config-map", "stage0 exit-now", "dataset1.csv", dest(), "false", "false", "0", "0", "0"], scaled(30_000));
    expect(run.done).toBeUndefined();
    expect(run.failed ?? run.rejected?.error).toContain("exit-now: refusing to start");
    for (let i = 0; i < 2; i++) {
      const ok = await rs.run(["1", "2", "-stage-config-map", "stage0 echo-wrapper", "first1000.csv", dest(), "false", "false", "0", "0", "0"], scaled(60_000));
      expect(ok.failed).toBeUndefined();
      expect(ok.done?.tuples_read).toBe(1000);
    }
  });

  test("a worker node that dies mid-job (after 250 of 1,000 outputs) has its tasks rescheduled; the job completes", async () => {
    let victim = 0;
    let killedAt = 0;
    let rescheduledAt = 0;
    let onVictim: { stage: number; index: number }[] = [];
    const faults = new ProgressFaults([
      {
        afterOutputs: 250,
        act: async () => {
          killedAt = performance.now();
          c.kill(victim);
        },
      },
    ]);
    const run = await rs.run(
      ["2", "3", "echo-wrapper", "", "echo-wrapper", "", "first1000.csv", dest(), "false", "false", "250", "0", "1000"],
      scaled(90_000),
      (ev) => {
        if (ev.event === "task_restarted" && String(ev.reason).includes("failed") && !rescheduledAt) rescheduledAt = performance.now();
        if (ev.event === "accepted") {
          const tasks = ev.tasks as { stage: number; index: number; node: string }[];
          const candidates = [...new Set(tasks.map((t) => t.node))].filter((h) => h !== c.host(1));
          victim = Number(candidates[0]!.split(".").pop());
          onVictim = tasks.filter((t) => t.node === c.host(victim));
        }
        faults.onEvent(ev);
      },
    );
    await faults.settled();
    expect(victim).toBeGreaterThan(1);
    expect(onVictim.length).toBeGreaterThan(0);
    // Detection takes at most t_suspect + t_fail + 1 s (3.5 s with the defaults); rescheduling
    // must follow within 2 s of it.
    expect(rescheduledAt).toBeGreaterThan(0);
    expect(rescheduledAt - killedAt).toBeLessThan(scaled(3500 + 2000));
    expect(run.failed).toBeUndefined();
    // Every task of the dead node moved to a live one.
    const moved = run.events.filter((e) => e.event === "task_restarted" && String(e.reason).includes("failed"));
    for (const t of onVictim) expect(moved.some((e) => e.stage === t.stage && e.index === t.index && e.node !== c.host(victim))).toBe(true);
    const values = new Set(run.outputs.map((l) => l.slice(l.indexOf("\t") + 1)));
    for (const line of LINES.slice(0, 1000)) expect(values.has(line)).toBe(true);
    await waitFor(async () => (await rs.tasks()).every((t) => t.node !== c.host(victim)), scaled(5000), "no task left on the dead node");
  });
});

describe("RainStorm with a cluster secret", () => {
  test("job submission, task control and the data plane need the credential", async () => {
    const c = new LocalCluster({ dir: tempPath("rainstorm-secret-"), subnet: testNet(38), secret: "rs-secret", killOnExit: true });
    try {
      await c.up(2, scaled(30_000));
      const url = (path: string) => `http://${c.host(1)}:15000${path}`;
      const anonymous = [
        await fetch(url("/jobs"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ args: [] }) }),
        await fetch(url("/kill_task"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ node: c.host(2), pid: 1 }) }),
        await fetch(url("/worker/start"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
        await fetch(url("/tasks")),
      ];
      for (const res of anonymous) expect(res.status).toBe(401);
      await new HydfsTestClient(c).write(1, "create", "in.txt", "a\nb\n");
      const run = await new RainstormTestClient(c).run(
        ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "in.txt", "out.txt", "false", "false", "0", "0", "0"],
        scaled(60_000),
      );
      expect(run.outputs.map((l) => l.split("\t")[1]).sort()).toEqual(["a", "b"]);
    } finally {
      await c.down(true);
    }
  });
});

describe("RainStorm exactly-once (App 1 with kills after about 30% and 60% of the outputs)", () => {
  const c = new LocalCluster({ dir: tempPath("rainstorm-eo-"), subnet: testNet(39), knobs: { t_cleanup_ms: 3000 }, killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const rs = new RainstormTestClient(c);
  const PATTERN = "SIGN_";
  const COL = 6;
  const RATE = 600;
  const reference = app1Counts(LINES, PATTERN, COL);
  /** Outputs of a whole App 1 run: one per matching line (each key's running counts). */
  const TOTAL = runningCountLines(reference).length;
  let n = 0;

  beforeAll(async () => {
    await c.up(5, scaled(30_000));
    await hydfs.write(1, "create", "dataset1.csv", DATASET);
  });
  // (d) kills a node and the log-replica test a hydfsd: bring back what is missing before each test.
  beforeEach(async () => {
    await c.up(5, scaled(30_000));
  });
  afterAll(async () => {
    await c.down(true);
  });

  /**
   * Run App 1 with exactly_once=true; `at30` and `at60` act on the job's tasks once about 30% and
   * 60% of its outputs have streamed (each after the previous one finished). Checks the counts and
   * dest's content, and that every step fired.
   */
  async function runApp1(at30?: (tasks: Task[], job: string) => Promise<void>, at60?: (tasks: Task[], job: string) => Promise<void>) {
    const dest = `eo-out-${++n}.txt`;
    let job = "";
    const steps = [at30 && { afterOutputs: Math.round(TOTAL * 0.3), act: at30 }, at60 && { afterOutputs: Math.round(TOTAL * 0.6), act: at60 }];
    const faults = new ProgressFaults(
      steps.filter((s) => !!s).map((s) => ({ afterOutputs: s.afterOutputs, act: async () => s.act(await jobTasks(rs, job), job) })),
    );
    const run = await rs.run(
      [
        "2",
        "3",
        "-stage-config-map",
        `stage0 grep-wrapper ${PATTERN} ${COL} stage1 aggregate-wrapper`,
        "dataset1.csv",
        dest,
        "true",
        "false",
        String(RATE),
        "0",
        "0",
      ],
      scaled(90_000),
      (ev) => {
        if (ev.event === "accepted") job = ev.job;
        faults.onEvent(ev);
      },
    );
    await faults.settled();
    expect(run.failed).toBeUndefined();
    // Final counts equal the reference, each key's counts strictly increase as emitted, dest
    // holds exactly key\t1..N per key.
    // Node 1 (the leader) is never killed here.
    const stored = (await hydfs.getText(1, dest)).split("\n").filter(Boolean);
    expect(countViolations(run.outputs, stored, reference)).toEqual([]);
    return { ...run, job };
  }

  const killed: KilledTask[] = [];
  const kill = async (t: Task | undefined) => void killed.push(await killTask(rs, t));
  beforeEach(() => {
    killed.length = 0;
  });
  const busiestAggregate = (ts: Task[]) => ts.filter((t) => t.stage === 1).sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))[0];
  /** The restarted aggregate read its exactly-once log back: a start that recovered some inputs. */
  const expectReadBack = (job: string, t: { stage: number; task: number }) =>
    expect(Math.max(0, ...recoveredInputs(c, job, t.stage, t.task))).toBeGreaterThan(0);

  test("golden run without failures", async () => {
    const run = await runApp1();
    expect(run.events.filter((e) => e.event === "task_restarted")).toEqual([]);
  });

  test("(a) one stage-0 task killed", async () => {
    const run = await runApp1(async (ts) => kill(ts.find((t) => t.stage === 0)));
    expectRestarted(run.events, killed);
  });

  test("(b) one aggregate task killed: it continues from its logged counts", async () => {
    const run = await runApp1(async (ts) => kill(busiestAggregate(ts)));
    expectRestarted(run.events, killed);
    expect(killed[0]!.stage).toBe(1);
    expectReadBack(run.job, killed[0]!);
  });

  test("(c) a stage-0 and an aggregate task killed together", async () => {
    const run = await runApp1(async (ts) => {
      await Promise.all([kill(ts.find((t) => t.stage === 0)), kill(busiestAggregate(ts))]);
    });
    expectRestarted(run.events, killed);
    expect(killed.map((k) => k.stage).sort()).toEqual([0, 1]);
    expectReadBack(
      run.job,
      killed.find((k) => k.stage === 1)!,
    );
  });

  test("(e) the same aggregate task killed twice in a row", async () => {
    const run = await runApp1(
      async (ts) => kill(busiestAggregate(ts)),
      async (_ts, job) => {
        // The second kill hits the restarted task: wait for it to run under its new pid.
        const first = killed[0]!;
        const t = await waitFor(
          async () => (await jobTasks(rs, job)).find((x) => x.stage === first.stage && x.task === first.task && x.pid !== first.pid),
          scaled(10_000),
          `stage${first.stage}[${first.task}] to run again after the first kill`,
        );
        await kill(t);
      },
    );
    expect(killed.length).toBe(2);
    expect([killed[1]!.stage, killed[1]!.task]).toEqual([killed[0]!.stage, killed[0]!.task]);
    expectRestarted(run.events, killed);
    // Both restarts read the log back (each start writes how many inputs it recovered).
    const recovered = recoveredInputs(c, run.job, killed[0]!.stage, killed[0]!.task).filter((x) => x > 0);
    expect(recovered.length).toBeGreaterThanOrEqual(2);
  });

  test("App 2 (grep + transform) with two task kills: exactly one output line per matching input line", async () => {
    const pattern = "Street Name";
    const expected = LINES.filter((l) => l.includes(pattern)).map((l) => formatCsvRecord(parseCsvLine(l).slice(0, 3)));
    const dest = `eo-app2-${++n}.txt`;
    let job = "";
    const killBusiest = (stage: number) => async () =>
      kill((await jobTasks(rs, job)).filter((x) => x.stage === stage).sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))[0]);
    const faults = new ProgressFaults([
      { afterOutputs: Math.round(expected.length * 0.3), act: killBusiest(0) },
      { afterOutputs: Math.round(expected.length * 0.6), act: killBusiest(1) },
    ]);
    const run = await rs.run(
      ["2", "3", "grep-wrapper", `'${pattern}' 4`, "transform-wrapper", "3", "dataset1.csv", dest, "true", "false", String(RATE), "0", "0"],
      scaled(90_000),
      (ev) => {
        if (ev.event === "accepted") job = ev.job;
        faults.onEvent(ev);
      },
    );
    await faults.settled();
    expect(run.failed).toBeUndefined();
    expect(run.events.filter((e) => e.event === "task_restarted").length).toBeGreaterThanOrEqual(2);
    expectRestarted(run.events, killed);
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1));
    expect(values.sort()).toEqual(expected.sort());
    // dest holds exactly the streamed records: the same content, each once.
    const stored = (await hydfs.getText(3, dest)).split("\n").filter(Boolean);
    expect(stored.length).toBe(expected.length);
    expect(multisetDiff(stored, run.outputs)).toEqual([]);
  });

  test("losing one HyDFS replica of a task log during the job changes nothing; the task then reads its log back", async () => {
    let victim = 0;
    let target: Task | undefined;
    const run = await runApp1(
      async (ts) => {
        // The busiest aggregate's log: kill the hydfsd of one of its replicas (not the leader's).
        target = busiestAggregate(ts)!;
        const log = `rainstorm/${target.job}/stage1-task${target.task}.log`;
        const replicas = (await hydfs.ls(1, log)).replicas.map((r) => Number(r.host.split(".").pop()));
        victim = replicas.find((k) => k !== 1)!;
        c.kill(victim, "hydfsd");
        await waitFor(() => !isAlive(c.pid(victim, "hydfsd")), scaled(5000), `hydfsd of node ${victim} to die`);
      },
      // Then kill that aggregate: its restart must read the log with one replica gone.
      async (ts) => kill(ts.find((t) => t.stage === target!.stage && t.task === target!.task)),
    );
    expect(victim).toBeGreaterThan(1);
    expectRestarted(run.events, killed);
    expectReadBack(run.job, killed[0]!);
  });

  test("chaos: 20 seeded runs with random task kills at random points of progress match the golden counts", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? DEFAULT_CHAOS_SEED);
    const rng = seededRng(seed);
    const sample = LINES.slice(0, CHAOS_LINES);
    const golden = new Map<string, number>();
    for (const line of sample)
      if (line.includes(CHAOS_PATTERN)) golden.set(parseCsvLine(line)[CHAOS_COL] ?? "", (golden.get(parseCsvLine(line)[CHAOS_COL] ?? "") ?? 0) + 1);
    const expectedOutputs = [...golden.values()].reduce((n, v) => n + v, 0);
    await hydfs.write(1, "create", "chaos.csv", `${sample.join("\n")}\n`);
    for (let i = 0; i < 20; i++) {
      // The same plans as the benchmark's chaos section for the same seed (services/testing/chaos_plan.ts).
      const plan = drawChaosPlan(rng);
      let job = "";
      const killed: KilledTask[] = [];
      const faults = new ProgressFaults(
        plan.map((k) => ({
          afterOutputs: chaosKillAfterOutputs(k, expectedOutputs),
          act: async () => void killed.push(await killTask(rs, chaosTarget(await rs.tasks(), job, k))),
        })),
      );
      const run = await rs.run(chaosJobArgs("chaos.csv", `chaos-${seed}-${i}.txt`), scaled(60_000), (ev) => {
        if (ev.event === "accepted") job = ev.job;
        faults.onEvent(ev);
      });
      const replay = `chaos run ${i} (replay with CHAOS_SEED=${seed})`;
      await faults.settled().catch((err) => {
        throw new Error(`${replay}: ${(err as Error).message}`);
      });
      const stored = run.failed ? [] : (await hydfs.getText(1, `chaos-${seed}-${i}.txt`)).split("\n").filter(Boolean);
      const problems = run.failed ? [`job failed: ${run.failed}`] : countViolations(run.outputs, stored, golden);
      if (problems.length > 0) throw new Error(`${replay} differs from golden: ${problems.join("; ")}`);
      // Every planned kill landed on a running task, and that task came back under a new pid.
      expect(killed.length).toBe(plan.length);
      for (const k of killed) {
        const found = restartOf(run.events, k);
        if (typeof found === "string") throw new Error(`${replay}: ${found}`);
      }
    }
  });

  test("(d) a whole worker node (all its daemons) SIGKILLed", async () => {
    let host = "";
    let onHost: Task[] = [];
    let agg: Task | undefined;
    const run = await runApp1(async (ts) => {
      agg = busiestAggregate(ts.filter((t) => t.node !== c.host(1)));
      host = agg?.node ?? ts.find((t) => t.node !== c.host(1))!.node;
      onHost = ts.filter((t) => t.node === host);
      c.kill(Number(host.split(".").pop()));
    });
    // Every task of the dead node moved to a live one; the aggregate read its log back there.
    expect(onHost.length).toBeGreaterThan(0);
    for (const t of onHost) {
      expect(
        run.events.some(
          (e) => e.event === "task_restarted" && e.stage === t.stage && e.index === t.task && e.node !== host && String(e.reason).includes("failed"),
        ),
      ).toBe(true);
    }
    if (agg) expectReadBack(run.job, agg);
  });
});
