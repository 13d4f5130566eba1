/**
 * RainStorm jobs on real processes (memberd + hydfsd + rainstormd per node) on 127.0.35.k, with
 * the inputs stored in HyDFS first and every result compared with a plain in-test reference.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatCsvRecord, parseCsvLine } from "../../ops/csv.ts";
import { MULTI_CALL_NAME } from "../../ops/main.ts";
import { OPERATOR_NAMES } from "../../ops/registry.ts";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { countViolations, RainstormTestClient } from "../testing/rainstorm_client.ts";
import { seededRng } from "../shared/rng.ts";
import { CHAOS_COL, CHAOS_LINES, CHAOS_PATTERN, chaosJobArgs, chaosTarget, DEFAULT_CHAOS_SEED, drawChaosPlan } from "../testing/chaos_plan.ts";

setDefaultTimeout(120_000);

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
  const c = new LocalCluster({ dir: join(dir, "cluster"), subnet: "127.0.35", knobs: { t_cleanup_ms: 3000 }, extra, killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const rs = new RainstormTestClient(c);
  let destCounter = 0;
  const dest = () => `out-${++destCounter}.txt`;

  beforeAll(async () => {
    if (usesBuilt) opsDirWithBrokenOperator(dir);
    await c.up(5);
    await hydfs.write(1, "create", "dataset1.csv", DATASET);
    await hydfs.write(1, "create", "first1000.csv", `${LINES.slice(0, 1000).join("\n")}\n`);
  });
  afterAll(async () => {
    await c.down(true);
    if (!process.env.RAINSTORM_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  });

  test("identity job, 1 stage x 3 tasks: the output multiset equals the input lines", async () => {
    const out = dest();
    const run = await rs.run(["1", "3", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", out, "false", "false", "0", "0", "0"]);
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
    await waitFor(() => logs().length === 3 && logs().every((l) => l.includes("end of stream") && l.includes("exited with code 0")), 5000, "every task to get end of stream and exit 0");
    const metrics = await (await fetch(rs.url(1, "/metrics"))).text();
    expect(metrics).toContain(`rainstorm_job_tuples_read_total{job="${run.done!.job}",status="done"} ${LINES.length}`);
  });

  test("App 1: grep then aggregate (3 tasks per stage) gives the reference counts", async () => {
    const pattern = "SIGN_";
    const col = 6; // Asset Category, e.g. SIGN_GUIDE, SIGN_POLE
    const reference = new Map<string, number>();
    for (const line of LINES) {
      if (!line.includes(pattern)) continue;
      const key = parseCsvLine(line)[col] ?? "";
      reference.set(key, (reference.get(key) ?? 0) + 1);
    }
    const run = await rs.run(["2", "3", "-stage-config-map", `stage0 grep-wrapper ${pattern} ${col} stage1 aggregate-wrapper`, "dataset1.csv", dest(), "false", "false", "0", "0", "0"]);
    expect(run.failed).toBeUndefined();
    const finalCounts = new Map<string, number>();
    const seen = new Map<string, number[]>();
    for (const line of run.outputs) {
      const [key, count] = [line.slice(0, line.lastIndexOf("\t")), Number(line.slice(line.lastIndexOf("\t") + 1))];
      finalCounts.set(key, Math.max(finalCounts.get(key) ?? 0, count));
      seen.set(key, [...(seen.get(key) ?? []), count]);
    }
    expect(Object.fromEntries(finalCounts)).toEqual(Object.fromEntries(reference));
    expect(reference.size).toBeGreaterThan(1);
  });

  test("App 2: grep then transform: one line per match, the first 3 fields correctly quoted", async () => {
    const pattern = "Street Name";
    const expected = LINES.filter((l) => l.includes(pattern)).map((l) => formatCsvRecord(parseCsvLine(l).slice(0, 3)));
    const run = await rs.run(["2", "3", "grep-wrapper", `'${pattern}' 4`, "transform-wrapper", "3", "dataset1.csv", dest(), "false", "false", "0", "0", "0"]);
    expect(run.failed).toBeUndefined();
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1));
    expect(values.sort()).toEqual(expected.sort());
    expect(values.some((v) => v.startsWith('"'))).toBe(true); // quoted fields with commas survived
  });

  test("input rate: 100 tuples/s over 1,000 lines takes about 10 s; task rates add up to about 100", async () => {
    const sums: number[] = [];
    let sampler: Timer | undefined;
    const run = await rs.run(["1", "3", "-stage-config-map", "stage0 echo-wrapper", "first1000.csv", dest(), "false", "false", "100", "0", "1000"], 60_000, (ev) => {
      if (ev.event !== "accepted") return;
      sampler = setInterval(async () => {
        const tasks = (await rs.tasks()).filter((t) => t.job === ev.job);
        const total = tasks.reduce((n, t) => n + (t.rate ?? 0), 0);
        if (tasks.length > 0) sums.push(total);
      }, 1000);
    });
    clearInterval(sampler);
    expect(run.done?.tuples_read).toBe(1000);
    expect(run.done!.duration_ms).toBeGreaterThan(8500);
    expect(run.done!.duration_ms).toBeLessThan(14_000);
    // Skip the first and last samples (partial seconds); the middle ones should be near 100.
    const middle = sums.slice(2, -2);
    expect(middle.length).toBeGreaterThan(3);
    const mean = middle.reduce((a, b) => a + b, 0) / middle.length;
    expect(mean).toBeGreaterThan(70);
    expect(mean).toBeLessThan(130);
  });

  test("kill_task of a stateless task mid-job: the task restarts and the job completes", async () => {
    let killed: { node: string; pid: number } | undefined;
    const run = await rs.run(["2", "3", "echo-wrapper", "", "echo-wrapper", "", "first1000.csv", dest(), "false", "false", "300", "0", "1000"], 60_000, (ev) => {
      if (ev.event !== "accepted") return;
      setTimeout(async () => {
        const t = (await rs.tasks()).find((x) => x.job === ev.job && x.stage === 0);
        if (!t) return;
        killed = { node: t.node, pid: t.pid };
        const res = await rs.killTask(t.node, t.pid);
        expect(res.status).toBe(200);
      }, 1000);
    });
    expect(killed).toBeDefined();
    expect(run.failed).toBeUndefined();
    expect(run.events.some((e) => e.event === "task_restarted")).toBe(true);
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
      [["1", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", dest(), "false", "true", "0", "0", "0"], "autoscale=true: HW must be above 0 tuples/s per task, got 0"],
      [["1", "1", "-stage-config-map", "stage0 aggregate-wrapper", "dataset1.csv", dest(), "true", "true", "0", "10", "100"], "autoscale=true: stage0 runs aggregate-wrapper, which is not a known stateless operator"],
      [["1", "1", "-stage-config-map", "stage0 echo-wrapper", "dataset1.csv", dest(), "false", "true", "5", "10", "100", "--rate-schedule", "5:1s"], "input_rate is 5 and --rate-schedule is given"],
    ];
    for (const [args, text] of cases) {
      const run = await rs.run(args);
      expect(run.rejected?.status).toBeGreaterThanOrEqual(400);
      expect(run.rejected?.error).toContain(text);
    }
  });

  test.if(usesBuilt)("an operator that exits at once fails the job with its error; then two jobs back to back succeed", async () => {
    const run = await rs.run(["1", "2", "-stage-config-map", "stage0 exit-now", "dataset1.csv", dest(), "false", "false", "0", "0", "0"], 30_000);
    expect(run.done).toBeUndefined();
    expect(run.failed ?? run.rejected?.error).toContain("exit-now: refusing to start");
    for (let i = 0; i < 2; i++) {
      const ok = await rs.run(["1", "2", "-stage-config-map", "stage0 echo-wrapper", "first1000.csv", dest(), "false", "false", "0", "0", "0"]);
      expect(ok.failed).toBeUndefined();
      expect(ok.done?.tuples_read).toBe(1000);
    }
  });

  test("a worker node that dies mid-job has its tasks rescheduled; the job completes", async () => {
    let victim = 0;
    let killedAt = 0;
    let rescheduledAt = 0;
    const run = await rs.run(["2", "3", "echo-wrapper", "", "echo-wrapper", "", "first1000.csv", dest(), "false", "false", "250", "0", "1000"], 90_000, (ev) => {
      if (ev.event === "task_restarted" && String(ev.reason).includes("failed") && !rescheduledAt) rescheduledAt = performance.now();
      if (ev.event !== "accepted") return;
      const candidates = [...new Set((ev.tasks as { node: string }[]).map((t) => t.node))].filter((h) => h !== c.host(1));
      victim = Number(candidates[0]!.split(".").pop());
      setTimeout(() => {
        killedAt = performance.now();
        c.kill(victim);
      }, 1000);
    });
    expect(victim).toBeGreaterThan(1);
    // Detection takes at most t_suspect + t_fail + 1 s (3.5 s with the defaults); rescheduling
    // must follow within 2 s of it.
    expect(rescheduledAt - killedAt).toBeLessThan(3500 + 2000);
    expect(run.failed).toBeUndefined();
    const moved = run.events.filter((e) => e.event === "task_restarted" && String(e.reason).includes("failed"));
    expect(moved.length).toBeGreaterThan(0);
    const values = new Set(run.outputs.map((l) => l.slice(l.indexOf("\t") + 1)));
    for (const line of LINES.slice(0, 1000)) expect(values.has(line)).toBe(true);
    await waitFor(async () => (await rs.tasks()).every((t) => t.node !== c.host(victim)), 5000, "no task left on the dead node");
  });
});

describe("RainStorm with a cluster secret", () => {
  test("job submission, task control and the data plane need the credential", async () => {
    const c = new LocalCluster({ dir: tempPath("rainstorm-secret-"), subnet: "127.0.38", secret: "rs-secret", killOnExit: true });
    try {
      await c.up(2);
      const url = (path: string) => `http://${c.host(1)}:15000${path}`;
      const anonymous = [
        await fetch(url("/jobs"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ args: [] }) }),
        await fetch(url("/kill_task"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ node: c.host(2), pid: 1 }) }),
        await fetch(url("/worker/start"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
        await fetch(url("/tasks")),
      ];
      for (const res of anonymous) expect(res.status).toBe(401);
      await new HydfsTestClient(c).write(1, "create", "in.txt", "a\nb\n");
      const run = await new RainstormTestClient(c).run(["1", "1", "-stage-config-map", "stage0 echo-wrapper", "in.txt", "out.txt", "false", "false", "0", "0", "0"]);
      expect(run.outputs.map((l) => l.split("\t")[1]).sort()).toEqual(["a", "b"]);
    } finally {
      await c.down(true);
    }
  });
});

describe("RainStorm exactly-once (App 1 with kills at about 30% and 60% of the input)", () => {
  const c = new LocalCluster({ dir: tempPath("rainstorm-eo-"), subnet: "127.0.39", knobs: { t_cleanup_ms: 3000 }, killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const rs = new RainstormTestClient(c);
  const PATTERN = "SIGN_";
  const COL = 6;
  const RATE = 600;
  const reference = new Map<string, number>();
  for (const line of LINES) if (line.includes(PATTERN)) reference.set(parseCsvLine(line)[COL] ?? "", (reference.get(parseCsvLine(line)[COL] ?? "") ?? 0) + 1);
  let n = 0;

  beforeAll(async () => {
    await c.up(5);
    await hydfs.write(1, "create", "dataset1.csv", DATASET);
  });
  afterAll(async () => {
    await c.down(true);
  });

  type Task = Awaited<ReturnType<RainstormTestClient["tasks"]>>[number];
  /** Run App 1 with exactly_once=true; `at30` and `at60` act on the job's tasks mid-run. */
  async function runApp1(at30?: (tasks: Task[]) => Promise<void>, at60?: (tasks: Task[]) => Promise<void>) {
    const dest = `eo-out-${++n}.txt`;
    const timers: Timer[] = [];
    const actions: Promise<void>[] = [];
    const run = await rs.run(["2", "3", "-stage-config-map", `stage0 grep-wrapper ${PATTERN} ${COL} stage1 aggregate-wrapper`, "dataset1.csv", dest, "true", "false", String(RATE), "0", "0"], 90_000, (ev) => {
      if (ev.event !== "accepted") return;
      const durationMs = (LINES.length / RATE) * 1000;
      const schedule = (fraction: number, act?: (tasks: Task[]) => Promise<void>) => {
        if (!act) return;
        timers.push(setTimeout(() => actions.push(rs.tasks().then((ts) => act(ts.filter((t) => t.job === ev.job)))), durationMs * fraction));
      };
      schedule(0.3, at30);
      schedule(0.6, at60);
    });
    for (const t of timers) clearTimeout(t);
    await Promise.all(actions);
    expect(run.failed).toBeUndefined();
    // Final counts equal the reference, each key's counts strictly increase as emitted, dest
    // holds each record exactly once.
    // Node 1 (the leader) is never killed here.
    const stored = (await hydfs.getText(1, dest)).split("\n").filter(Boolean);
    expect(countViolations(run.outputs, stored, reference)).toEqual([]);
    return run;
  }

  const kill = async (t: Task | undefined) => {
    expect(t).toBeDefined();
    expect((await rs.killTask(t!.node, t!.pid)).status).toBe(200);
  };
  const busiestAggregate = (ts: Task[]) => ts.filter((t) => t.stage === 1).sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))[0];

  test("golden run without failures", async () => {
    await runApp1();
  });

  test("(a) one stage-0 task killed", async () => {
    const run = await runApp1(async (ts) => kill(ts.find((t) => t.stage === 0)));
    expect(run.events.some((e) => e.event === "task_restarted")).toBe(true);
  });

  test("(b) one aggregate task killed: it continues from its logged counts", async () => {
    const run = await runApp1(async (ts) => kill(busiestAggregate(ts)));
    expect(run.events.some((e) => e.event === "task_restarted" && e.stage === 1)).toBe(true);
  });

  test("(c) a stage-0 and an aggregate task killed together", async () => {
    await runApp1(async (ts) => {
      await Promise.all([kill(ts.find((t) => t.stage === 0)), kill(busiestAggregate(ts))]);
    });
  });

  test("(e) the same aggregate task killed twice in a row", async () => {
    let target: { stage: number; task: number } | undefined;
    await runApp1(
      async (ts) => {
        const t = busiestAggregate(ts)!;
        target = { stage: t.stage, task: t.task };
        await kill(t);
      },
      async (ts) => {
        await kill(ts.find((t) => t.stage === target!.stage && t.task === target!.task));
      },
    );
  });

  test("App 2 (grep + transform) with two task kills: exactly one output line per matching input line", async () => {
    const pattern = "Street Name";
    const expected = LINES.filter((l) => l.includes(pattern)).map((l) => formatCsvRecord(parseCsvLine(l).slice(0, 3)));
    const dest = `eo-app2-${++n}.txt`;
    const timers: Timer[] = [];
    const run = await rs.run(["2", "3", "grep-wrapper", `'${pattern}' 4`, "transform-wrapper", "3", "dataset1.csv", dest, "true", "false", String(RATE), "0", "0"], 90_000, (ev) => {
      if (ev.event !== "accepted") return;
      for (const [fraction, stage] of [[0.3, 0], [0.6, 1]] as const) {
        timers.push(
          setTimeout(async () => {
            const t = (await rs.tasks()).filter((x) => x.job === ev.job && x.stage === stage).sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))[0];
            if (t) await rs.killTask(t.node, t.pid);
          }, (LINES.length / RATE) * 1000 * fraction),
        );
      }
    });
    for (const t of timers) clearTimeout(t);
    expect(run.failed).toBeUndefined();
    expect(run.events.filter((e) => e.event === "task_restarted").length).toBeGreaterThanOrEqual(2);
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1));
    expect(values.sort()).toEqual(expected.sort());
    expect((await hydfs.getText(3, dest)).split("\n").filter(Boolean).length).toBe(expected.length);
  });

  test("losing one HyDFS replica of a task log during the job changes nothing", async () => {
    await runApp1(async (ts) => {
      // The busiest aggregate's log: kill the hydfsd of one of its replicas (not the leader's).
      const agg = busiestAggregate(ts)!;
      const log = `rainstorm/${agg.job}/stage1-task${agg.task}.log`;
      const replicas = (await hydfs.ls(1, log)).replicas.map((r) => Number(r.host.split(".").pop()));
      const victim = replicas.find((k) => k !== 1)!;
      c.kill(victim, "hydfsd");
    });
    // Bring the hydfsd back for the tests that follow.
    for (let k = 1; k <= 5; k++) c.startAgain(k, "hydfsd");
    await c.waitHydfsRing([1, 2, 3, 4, 5]);
  });

  test("chaos: 20 seeded runs with random task kills at random moments match the golden counts", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? DEFAULT_CHAOS_SEED);
    const rng = seededRng(seed);
    const sample = LINES.slice(0, CHAOS_LINES);
    const golden = new Map<string, number>();
    for (const line of sample) if (line.includes(CHAOS_PATTERN)) golden.set(parseCsvLine(line)[CHAOS_COL] ?? "", (golden.get(parseCsvLine(line)[CHAOS_COL] ?? "") ?? 0) + 1);
    await hydfs.write(1, "create", "chaos.csv", `${sample.join("\n")}\n`);
    let restarts = 0;
    for (let i = 0; i < 20; i++) {
      // The same plans as the benchmark's chaos section for the same seed (services/testing/chaos_plan.ts).
      const plan = drawChaosPlan(rng);
      const timers: Timer[] = [];
      const run = await rs.run(chaosJobArgs("chaos.csv", `chaos-${seed}-${i}.txt`), 60_000, (ev) => {
        if (ev.event !== "accepted") return;
        for (const k of plan) {
          timers.push(
            setTimeout(async () => {
              const t = chaosTarget(await rs.tasks(), ev.job, k);
              if (t) await rs.killTask(t.node, t.pid);
            }, k.atMs),
          );
        }
      });
      for (const t of timers) clearTimeout(t);
      restarts += run.events.filter((e) => e.event === "task_restarted").length;
      const stored = run.failed ? [] : (await hydfs.getText(1, `chaos-${seed}-${i}.txt`)).split("\n").filter(Boolean);
      const problems = run.failed ? [`job failed: ${run.failed}`] : countViolations(run.outputs, stored, golden);
      if (problems.length > 0) throw new Error(`chaos run ${i} differs from golden (replay with CHAOS_SEED=${seed}): ${problems.join("; ")}`);
    }
    // The kills really happened (a kill can miss only a task that had already finished).
    expect(restarts).toBeGreaterThanOrEqual(15);
  });

  test("(d) a whole worker node (all its daemons) SIGKILLed", async () => {
    await runApp1(async (ts) => {
      const host = busiestAggregate(ts.filter((t) => t.node !== c.host(1)))?.node ?? ts.find((t) => t.node !== c.host(1))!.node;
      c.kill(Number(host.split(".").pop()));
    });
  });
});
