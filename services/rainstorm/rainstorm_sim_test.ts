/**
 * RainStorm on the in-process simulated cluster (services/testing/rainstorm_sim.ts): the real
 * leader and workers on a virtual clock over a seeded network, operators in-process, HyDFS in
 * memory. Each test runs in milliseconds; a failing seed prints how to replay it.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { operatorFactory } from "../../ops/registry.ts";
import type { JobEvent } from "./model.ts";
import { RECENT_EVENTS_MAX } from "./job_watch.ts";
import { LeaderError } from "./job_checks.ts";
import { parseJobArgs } from "./plan.ts";
import { APP1_COL, APP1_PATTERN, app1Args, app1Golden, app1Problems, chaosRun, RainstormSim, type SimRun } from "../testing/rainstorm_sim.ts";

const ROOT = resolve(import.meta.dir, "../..");
/** The first 600 lines of the App 1 dataset: enough matches per key for kills to land mid-count. */
const LINES = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8")
  .split("\n")
  .filter(Boolean)
  .slice(0, 600);
const INPUT = `${LINES.join("\n")}\n`;
const GOLDEN = app1Golden(LINES);

/** Every result of grep-wrapper App 1's pattern over LINES, as dest lines. */
const GREPPED = LINES.flatMap((l) => operatorFactory("grep-wrapper")!([APP1_PATTERN, String(APP1_COL)]).process("", l)).map((o) => `${o.key}\t${o.value}`);

/** The job command of grep then echo over in.csv into out.txt. */
function grepEchoArgs(exactlyOnce: boolean): string[] {
  const stages = `stage0 grep-wrapper ${APP1_PATTERN} ${APP1_COL} stage1 echo-wrapper`;
  return ["2", "3", "-stage-config-map", stages, "in.csv", "out.txt", String(exactlyOnce), "false", "0", "0", "0"];
}

/** Kill a random task of the job each time the streamed outputs pass the next of `points`. */
function killsAt(sim: RainstormSim, points: number[]): { onEvent: (ev: JobEvent, r: SimRun) => void; count: () => number } {
  let kills = 0;
  const onEvent = (ev: JobEvent, r: SimRun) => {
    if (ev.event !== "output") return;
    while (points.length > 0 && r.outputs.length >= points[0]!) {
      points.shift();
      if (sim.killRandomTask(r.job)) kills++;
    }
  };
  return { onEvent, count: () => kills };
}

test("the golden dest is not trivial (several keys, several counts each)", () => {
  const keys = new Set(GOLDEN.dest.map((l) => l.split("\t")[0]));
  expect(keys.size).toBeGreaterThan(1);
  expect(GOLDEN.dest.length).toBeGreaterThan(keys.size * 5);
});

describe("RainStorm simulated", () => {
  test("App 1 exactly-once without faults: dest is exactly the golden counts", async () => {
    const sim = new RainstormSim({ seed: 1 });
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), INPUT);
    sim.stop();
    expect(app1Problems(run, GOLDEN)).toEqual([]);
    expect(run.events.at(-1)).toMatchObject({ event: "done", tuples_read: LINES.length, tuples_out: GOLDEN.dest.length });
  });

  test("a worker crash mid-job: its tasks are rescheduled on the others and dest is exactly golden", async () => {
    const sim = new RainstormSim({ seed: 2, nodes: 4 });
    let crashed = false;
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), INPUT, (ev, r) => {
      if (ev.event === "output" && !crashed && r.outputs.length >= GOLDEN.dest.length / 3) {
        crashed = true;
        sim.crash(3);
      }
    });
    sim.stop();
    expect(crashed).toBe(true);
    const moved = run.events.filter((e) => e.event === "task_restarted");
    // Node 3 ran tasks (round-robin placement of 6 tasks on 4 nodes), and every one of them moved.
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.every((e) => e.event === "task_restarted" && e.reason === "worker 10.0.0.3 failed" && e.node !== "10.0.0.3")).toBe(true);
    expect(app1Problems(run, GOLDEN)).toEqual([]);
  });

  test("exactly-once App 1 with task kills at seeded points (25%, 50%, 75% of the outputs): exactly the golden dest", async () => {
    const sim = new RainstormSim({ seed: 3, lossRate: 0.05 });
    const points = [0.25, 0.5, 0.75].map((f) => Math.floor(GOLDEN.dest.length * f));
    const kills: string[] = [];
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), INPUT, (ev, r) => {
      if (ev.event !== "output") return;
      while (points.length > 0 && r.outputs.length >= points[0]!) {
        points.shift();
        const k = sim.killRandomTask(r.job);
        kills.push(k ? `stage${k.stage}[${k.index}]` : "none");
      }
    });
    sim.stop();
    // Every kill landed on a running task, and each was restarted.
    expect(kills.length).toBe(3);
    expect(kills).not.toContain("none");
    expect(run.events.filter((e) => e.event === "task_restarted").length).toBeGreaterThanOrEqual(3);
    expect(app1Problems(run, GOLDEN)).toEqual([]);
  });

  test("at-least-once (grep then echo) with batch loss and task kills loses no result", async () => {
    const sim = new RainstormSim({ seed: 4, lossRate: 0.1 });
    const expected = new Set(GREPPED);
    const kills = killsAt(
      sim,
      [0.3, 0.6].map((f) => Math.floor(expected.size * f)),
    );
    const run = await sim.runJob(grepEchoArgs(false), INPUT, kills.onEvent);
    sim.stop();
    expect(kills.count()).toBe(2);
    expect(run.failed).toBeUndefined();
    const stored = new Set(run.dest.split("\n").filter(Boolean));
    expect([...expected].filter((l) => !stored.has(l))).toEqual([]);
    expect([...stored].filter((l) => !expected.has(l))).toEqual([]);
  });

  test("exactly-once dedup state is bounded: an 84,000-line job's tasks hold the ids of what is in flight only, across kills", async () => {
    // LINES 140 times over: line numbers differ, so every line is a distinct input.
    const many = Array.from({ length: 140 }, () => LINES).flat();
    const golden = app1Golden(many);
    const sim = new RainstormSim({ seed: 11, lossRate: 0.02 });
    const kills = killsAt(
      sim,
      [0.4, 0.7].map((f) => Math.floor(golden.dest.length * f)),
    );
    let maxHeld = 0;
    let maxInputs = 0;
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), `${many.join("\n")}\n`, (ev, r) => {
      kills.onEvent(ev, r);
      for (const n of sim.nodes)
        for (const t of n.crashed ? [] : n.worker.list()) {
          maxHeld = Math.max(maxHeld, t.dedupIds ?? 0);
          if (t.dedupIds !== undefined) maxInputs = Math.max(maxInputs, t.inputs);
        }
    });
    sim.stop();
    expect(kills.count()).toBe(2);
    expect(app1Problems(run, golden)).toEqual([]);
    // Each aggregate task processed over three times what it may hold: twice the prune threshold (seen_ids.ts).
    expect(maxInputs).toBeGreaterThan(3 * 2 * 4096);
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(2 * 4096);
  });

  test("exactly-once with a stateless last stage (grep then echo): the last stage keeps a task log, and under kills and loss dest has each result once", async () => {
    const sim = new RainstormSim({ seed: 8, lossRate: 0.1 });
    const expected = GREPPED;
    const kills = killsAt(
      sim,
      [0.2, 0.4, 0.6, 0.8].map((f) => Math.floor(expected.length * f)),
    );
    let logs: string[] = [];
    const run = await sim.runJob(grepEchoArgs(true), INPUT, (ev, r) => {
      if (ev.event === "output") logs = [...sim.store.files.keys()].filter((name) => name.startsWith(`rainstorm/${r.job}/`)).sort();
      kills.onEvent(ev, r);
    });
    sim.stop();
    expect(kills.count()).toBe(4);
    expect(run.failed).toBeUndefined();
    // Only the last stage (echo) logs: grep before it replays deterministically.
    expect(logs).toEqual([0, 1, 2].map((i) => `rainstorm/${run.job}/stage1-task${i}.log`));
    const stored = run.dest.split("\n").filter(Boolean);
    expect(stored.sort()).toEqual([...expected].sort());
    expect([...run.outputs].sort()).toEqual([...expected].sort());
    expect(run.events.at(-1)).toMatchObject({ event: "done", tuples_out: expected.length });
  });

  test.each([1, 2, 3, 4, 5, 6])(
    "kill_job mid-run (seed %i): the job ends cancelled, no task or operator of it is left on any worker, dest keeps what was written",
    async (seed) => {
      const sim = new RainstormSim({ seed, lossRate: 0.05 });
      const exactlyOnce = seed % 2 === 1;
      const at = Math.floor(GOLDEN.dest.length * (0.1 + (seed % 3) * 0.1));
      let answer: Awaited<ReturnType<RainstormSim["cancel"]>> | undefined;
      let cancelling = false;
      const run = await sim.runJob(app1Args("in.csv", "out.txt", exactlyOnce), INPUT, (ev, r) => {
        if (ev.event !== "output" || cancelling || r.outputs.length < at) return;
        cancelling = true;
        sim.clock.after(0, () => void sim.cancel(r.job).then((a) => (answer = a)));
      });
      // The answer comes once every stop_job is answered; then the virtual clock runs on a while.
      let later = false;
      sim.clock.after(5000, () => (later = true));
      await sim.runUntil(() => answer !== undefined && later, 60_000);
      const destThen = sim.store.files.get("out.txt");
      const left = sim.leftOf(run.job);
      sim.stop();
      const where = `seed ${seed} (replay: this test's seed ${seed})`;
      expect({ where, done: run.done, failed: run.failed, cancelled: run.cancelled }).toEqual({ where, done: false, failed: undefined, cancelled: true });
      expect(run.events.at(-1)).toMatchObject({ event: "cancelled", job: run.job, dest: "out.txt" });
      expect({ where, ...left }).toEqual({ where, tasks: [], livePids: [] });
      expect(answer).toMatchObject({ job: run.job, status: "cancelled" });
      // Dest holds what was written before the cancel (every line of it was streamed), and nothing came after.
      const stored = run.dest.split("\n").filter(Boolean);
      expect(stored.length).toBeGreaterThan(0);
      expect(stored.length).toBeLessThan(GOLDEN.dest.length);
      const streamed = new Set(run.outputs);
      expect(stored.filter((l) => !streamed.has(l))).toEqual([]);
      expect(destThen).toBe(run.dest);
      // The job is listed as cancelled; a second kill is a 409.
      expect(sim.leader.jobList().find((j) => j.job === run.job)?.status).toBe("cancelled");
      await expect(sim.cancel(run.job)).rejects.toThrow(`job ${run.job} has already ended (cancelled)`);
    },
  );

  test("watch mid-run: the recent past then every live event, exactly the tail of what the submitter saw; after the end, the past only", async () => {
    // One tuple per batch: many more events than the leader keeps.
    const sim = new RainstormSim({ seed: 7, rainstorm: { batch_size: 1 } });
    const all: JobEvent[] = [];
    let watched: { past: JobEvent[]; live: JobEvent[]; replayed: number } | undefined;
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), INPUT, (ev, r) => {
      all.push(ev);
      if (watched || ev.event !== "output" || r.outputs.length < GOLDEN.dest.length * 0.9) return;
      const live: JobEvent[] = [];
      const w = sim.leader.watch(r.job, (e) => live.push(e));
      watched = { past: w.recent, live, replayed: w.recent.length };
      expect(w.summary).toMatchObject({ job: r.job, status: "running", stages: [`grep-wrapper ${APP1_PATTERN} ${APP1_COL}`, "aggregate-wrapper"] });
    });
    sim.stop();
    expect(run.done).toBe(true);
    // The leader kept only the last RECENT_EVENTS_MAX of the job's events so far.
    expect(watched!.replayed).toBe(RECENT_EVENTS_MAX);
    const seen = [...watched!.past, ...watched!.live];
    expect(seen).toEqual(all.slice(all.length - seen.length));
    expect(all.length).toBeGreaterThan(seen.length);
    const after = sim.leader.watch(run.job, () => {
      throw new Error("a watcher of an ended job hears nothing live");
    });
    expect(after.summary.status).toBe("done");
    expect(after.recent.at(-1)).toEqual(all.at(-1)!);
    expect(() => sim.leader.watch("job-zz-1", () => {})).toThrow('job "job-zz-1": no such job on this leader');
  });

  test("the submitter names the job: the leader runs it under that id, and refuses an id in use (409) or malformed (400)", async () => {
    const sim = new RainstormSim({ seed: 12 });
    const run = await sim.runJob(app1Args("in.csv", "out.txt", true), INPUT);
    expect(run.job).toBe("job-sim-1");
    expect(app1Problems(run, GOLDEN)).toEqual([]);
    const spec = parseJobArgs(app1Args("in.csv", "out2.txt", true));
    const again = await sim.leader.submit(spec, () => {}, "job-sim-1").catch((e) => e);
    expect(again).toBeInstanceOf(LeaderError);
    expect([again.status, again.message]).toEqual([409, "job id job-sim-1 is in use; choose another"]);
    const bad = await sim.leader.submit(spec, () => {}, "../x").catch((e) => e);
    expect([bad.status, bad.message]).toEqual([400, 'job: expected a job id such as job-m1abc2de-1 (job-<base36>-<number>), got "../x"']);
    sim.stop();
  });

  test("the same seed replays the same run", async () => {
    const a = await chaosRun(11, LINES);
    const b = await chaosRun(11, LINES);
    expect(b).toEqual(a);
    expect(a.faults.length).toBeGreaterThan(0);
  });
});

/** RAINSTORM_SIM_SEED=<n> replays one seed; RAINSTORM_SIM_SEEDS=<n> runs seeds 1..n (default 24). */
const ONE_SEED = process.env.RAINSTORM_SIM_SEED;
const SEEDS = ONE_SEED ? [Number(ONE_SEED)] : Array.from({ length: Number(process.env.RAINSTORM_SIM_SEEDS ?? 24) }, (_, i) => i + 1);

test(`seeded chaos: ${SEEDS.length} runs of exactly-once App 1 with kills, crashes, delay and loss end with exactly the golden dest`, async () => {
  const failures: string[] = [];
  let faults = 0;
  for (const seed of SEEDS) {
    const r = await chaosRun(seed, LINES);
    faults += r.faults.length;
    if (r.problems.length > 0) failures.push(`seed ${seed} (${r.faults.join("; ")}): ${r.problems.join("; ")}\n  replay with RAINSTORM_SIM_SEED=${seed}`);
  }
  expect(failures).toEqual([]);
  expect(faults).toBeGreaterThanOrEqual(SEEDS.length);
}, 120_000);
