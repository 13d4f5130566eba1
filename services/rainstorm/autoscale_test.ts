/**
 * Table tests of the autoscaling policy's rules, and a seeded simulation of a job under steady, stepped-up
 * and stepped-down load.
 */
import { describe, expect, test } from "bun:test";
import { seededRng } from "../shared/rng.ts";
import { type AutoscaleConfig, AutoscalePolicy, DEFAULT_AUTOSCALE, type ScalingDecision, validateAutoscaleConfig } from "./autoscale.ts";

const cfg = (c: Partial<AutoscaleConfig> = {}): AutoscaleConfig => ({ ...DEFAULT_AUTOSCALE, lowWatermark: 100, highWatermark: 500, ...c });
const T0 = 1_000_000;

/** Feeds one stage's samples at 1 s intervals; returns the decisions as [sample index, from, to]. */
function run(c: AutoscaleConfig, samples: (number | null)[][]): [number, number, number][] {
  const policy = new AutoscalePolicy(c);
  const out: [number, number, number][] = [];
  samples.forEach((taskRates, i) => {
    for (const d of policy.observe(T0 + i * 1000, [{ stage: 0, taskRates }])) out.push([i, d.from, d.to]);
  });
  return out;
}
const rep = <T>(k: number, x: T): T[] => Array.from({ length: k }, () => x);

describe("validateAutoscaleConfig", () => {
  test("defaults", () => {
    expect(DEFAULT_AUTOSCALE).toEqual({ sustainSamples: 3, settleMs: 5000, minTasks: 1, maxTasks: 16 });
    expect(() => validateAutoscaleConfig(cfg())).not.toThrow();
    expect(() => validateAutoscaleConfig(cfg({ lowWatermark: 0, highWatermark: 1, settleMs: 0, minTasks: 4, maxTasks: 4 }))).not.toThrow();
    expect(() => validateAutoscaleConfig(cfg({ lowWatermark: 200, highWatermark: 200 }))).not.toThrow();
  });
  const bad: [Partial<AutoscaleConfig>, string][] = [
    [{ lowWatermark: 900, highWatermark: 10 }, "autoscale: low watermark LW (900) must not exceed high watermark HW (10)"],
    [{ lowWatermark: -1 }, "low watermark LW must be a finite number >= 0 tuples/s, got -1"],
    [{ lowWatermark: NaN }, "low watermark LW must be a finite number >= 0 tuples/s, got NaN"],
    [{ highWatermark: 0, lowWatermark: 0 }, "high watermark HW must be a finite number > 0 tuples/s, got 0"],
    [{ highWatermark: Infinity }, "high watermark HW must be a finite number > 0 tuples/s, got Infinity"],
    [{ sustainSamples: 0 }, "sustainSamples must be a positive integer, got 0"],
    [{ sustainSamples: -2 }, "sustainSamples must be a positive integer, got -2"],
    [{ sustainSamples: 1.5 }, "sustainSamples must be a positive integer, got 1.5"],
    [{ settleMs: -1 }, "settleMs must be a finite number >= 0, got -1"],
    [{ minTasks: 0 }, "minTasks must be an integer >= 1, got 0"],
    [{ minTasks: 5, maxTasks: 4 }, "maxTasks must be an integer >= minTasks (5), got 4"],
    [{ maxTasks: 2.5 }, "maxTasks must be an integer >= minTasks (1), got 2.5"],
  ];
  for (const [c, message] of bad) {
    test(`refuses: ${message}`, () => {
      expect(() => validateAutoscaleConfig(cfg(c))).toThrow(message);
      expect(() => new AutoscalePolicy(cfg(c))).toThrow(message);
    });
  }
});

describe("AutoscalePolicy rules", () => {
  const HOT = [600, 600];
  const COLD3 = [50, 50, 50];
  interface Row {
    name: string;
    cfg?: Partial<AutoscaleConfig>;
    samples: (number | null)[][];
    /** [sample index, from, to] */
    want: [number, number, number][];
  }
  const ROWS: Row[] = [
    // Rule 2: sustained above HW / below LW.
    { name: "avg > HW for 3 samples: +1 task at the third", samples: rep(3, HOT), want: [[2, 2, 3]] },
    { name: "avg > HW for only 2 samples: nothing", samples: rep(2, HOT), want: [] },
    { name: "sustainSamples 1 acts on the first sample", cfg: { sustainSamples: 1 }, samples: [HOT], want: [[0, 2, 3]] },
    { name: "avg < LW for 3 samples: -1 task at the third", samples: rep(3, COLD3), want: [[2, 3, 2]] },
    { name: "the average counts, not one hot task (avg 475)", samples: rep(6, [900, 50]), want: [] },
    { name: "the average counts, not one cold task (avg 750)", samples: rep(3, [1400, 100]), want: [[2, 2, 3]] },
    { name: "exactly HW is not above it", samples: rep(6, [500, 500]), want: [] },
    { name: "exactly LW is not below it", samples: rep(6, [100, 100, 100]), want: [] },
    { name: "never below minTasks (1)", samples: rep(6, [10]), want: [] },
    { name: "never below minTasks (2)", cfg: { minTasks: 2 }, samples: rep(6, [10, 10]), want: [] },
    { name: "never above maxTasks", cfg: { maxTasks: 2 }, samples: rep(6, HOT), want: [] },
    { name: "above maxTasks already (set by hand): no scale-up", cfg: { maxTasks: 2 }, samples: rep(6, [900, 900, 900]), want: [] },
    // Rule 1: unknown rates.
    { name: "a null rate resets the streak", samples: [HOT, HOT, [600, null], HOT, HOT], want: [] },
    { name: "after a null the streak restarts", samples: [HOT, HOT, [null, 600], HOT, HOT, HOT], want: [[5, 2, 3]] },
    { name: "a NaN rate counts as unknown", samples: [HOT, HOT, [600, NaN], HOT, HOT], want: [] },
    { name: "a restarting stage with all rates null never scales", samples: rep(10, [null, null]), want: [] },
    { name: "a stage with no tasks never scales", samples: rep(10, []), want: [] },
    // Rule 6 and streak direction.
    { name: "steady in the band: nothing", samples: rep(30, [300, 250, 420]), want: [] },
    { name: "one in-band sample resets the streak", samples: [HOT, HOT, [300, 300], HOT, HOT], want: [] },
    { name: "a change of direction restarts the streak", samples: [[600, 600, 600], [600, 600, 600], COLD3, COLD3, COLD3], want: [[4, 3, 2]] },
    // Rule 3: anti-flapping.
    { name: "down blocked: 2 tasks at 90 would be 180 > HW 150", cfg: { lowWatermark: 100, highWatermark: 150 }, samples: rep(6, [90, 90]), want: [] },
    {
      name: "down allowed: 3 tasks at 90 would be 135 <= HW 150",
      cfg: { lowWatermark: 100, highWatermark: 150 },
      samples: rep(3, [90, 90, 90]),
      want: [[2, 3, 2]],
    },
    {
      name: "up allowed: 2 tasks at 160 would be 106.7 >= LW 100",
      cfg: { lowWatermark: 100, highWatermark: 150 },
      samples: rep(3, [160, 160]),
      want: [[2, 2, 3]],
    },
    { name: "up blocked: 2 tasks at 160 would be 106.7 < LW 110", cfg: { lowWatermark: 110, highWatermark: 150 }, samples: rep(6, [160, 160]), want: [] },
    { name: "LW = HW: a single task just above never flaps", cfg: { lowWatermark: 200, highWatermark: 200 }, samples: rep(6, [201]), want: [] },
    // Rule 4: damping.
    {
      name: "after a change the stage settles 5 s, then needs a fresh streak",
      // Decision at 2 (T0+2s); samples 3..6 are within 5 s; 7, 8, 9 are a new streak.
      samples: [HOT, HOT, HOT, ...rep(10, [600, 600, 600])],
      want: [
        [2, 2, 3],
        [9, 3, 4],
      ],
    },
    {
      name: "settling samples do not count even if the caller is slow to apply",
      samples: [HOT, HOT, HOT, HOT, HOT, [600, 600, 600], ...rep(6, [600, 600, 600])],
      want: [
        [2, 2, 3],
        [9, 3, 4],
      ],
    },
    {
      name: "settleMs 0: the next sample starts the new streak",
      cfg: { settleMs: 0 },
      samples: [HOT, HOT, HOT, ...rep(3, [600, 600, 600])],
      want: [
        [2, 2, 3],
        [5, 3, 4],
      ],
    },
    {
      name: "a caller applying the change after settleMs resets the streak once more",
      cfg: { settleMs: 1000 },
      samples: [HOT, HOT, HOT, HOT, HOT, HOT, [600, 600, 600], [600, 600, 600], [600, 600, 600], [600, 600, 600]],
      want: [
        [2, 2, 3],
        [9, 3, 4],
      ],
    },
    // Rule 5: changes made by someone else.
    { name: "an external task count change resets the streak", samples: [HOT, HOT, [600, 600, 600], [600, 600, 600], [600, 600, 600]], want: [] },
    {
      name: "after an external change, 3 fresh samples act",
      samples: [HOT, HOT, [600, 600, 600], [600, 600, 600], [600, 600, 600], [600, 600, 600]],
      want: [[5, 3, 4]],
    },
  ];
  for (const row of ROWS) test(row.name, () => expect(run(cfg(row.cfg), row.samples)).toEqual(row.want));

  test("stages are independent; a sample gives at most one decision per stage", () => {
    const policy = new AutoscalePolicy(cfg());
    let out: ScalingDecision[] = [];
    for (let i = 0; i < 3; i++) {
      out = policy.observe(T0 + i * 1000, [
        { stage: 0, taskRates: [812, 812, 812] },
        { stage: 1, taskRates: [20, 40] },
        { stage: 2, taskRates: [300, 300] },
        { stage: 0, taskRates: [812, 812, 812] }, // repeated in the same sample: ignored
      ]);
      if (i < 2) expect(out).toEqual([]);
    }
    expect(out).toEqual([
      { stage: 0, from: 3, to: 4, avgRatePerTask: 812, reason: "avg 812 tuples/s per task > HW 500 for 3 samples; 3 -> 4 tasks" },
      { stage: 1, from: 2, to: 1, avgRatePerTask: 30, reason: "avg 30 tuples/s per task < LW 100 for 3 samples; 2 -> 1 tasks" },
    ]);
    // Stage 0 settles; stage 1 is at minTasks; stage 2 is in the band: nothing for a while.
    for (let i = 3; i < 6; i++) {
      expect(
        policy.observe(T0 + i * 1000, [
          { stage: 0, taskRates: [812, 812, 812, 812] },
          { stage: 1, taskRates: [60] },
          { stage: 2, taskRates: [300, 300] },
        ]),
      ).toEqual([]);
    }
  });

  test("reason gives fractional averages to one decimal", () => {
    const d = new AutoscalePolicy(cfg({ sustainSamples: 1 })).observe(T0, [{ stage: 3, taskRates: [600, 601, 601] }]);
    expect(d).toEqual([{ stage: 3, from: 3, to: 4, avgRatePerTask: 1802 / 3, reason: "avg 600.7 tuples/s per task > HW 500 for 1 samples; 3 -> 4 tasks" }]);
  });

  test("a clock that goes back counts as still settling", () => {
    const policy = new AutoscalePolicy(cfg({ sustainSamples: 1 }));
    expect(policy.observe(T0, [{ stage: 0, taskRates: HOT }])).toHaveLength(1);
    expect(policy.observe(T0 - 60_000, [{ stage: 0, taskRates: [600, 600, 600] }])).toEqual([]);
    expect(policy.observe(T0 + 5000, [{ stage: 0, taskRates: [600, 600, 600] }])).toHaveLength(1);
  });
});

describe("simulation: steady, step up, step down (seeded)", () => {
  const LW = 100;
  const HW = 500;
  const C = cfg({ lowWatermark: LW, highWatermark: HW });
  /** Per-task rates vary ±60% around the even share of the stage's load. */
  const NOISE = 0.6;
  /** A task added by the policy reports null for this many samples (it is starting). */
  const WARMUP_SAMPLES = 2;
  const STEADY_S = 600;
  const UP_S = 300;
  const DOWN_S = 300;

  interface Logged extends ScalingDecision {
    t: number;
  }

  function simulate(seed: number): { decisions: Logged[]; finalTasks: number; upTasks: number } {
    const rng = seededRng(seed);
    const policy = new AutoscalePolicy(C);
    let tasks = 4;
    let warming = 0;
    let upTasks = 0;
    const decisions: Logged[] = [];
    for (let t = 0; t < STEADY_S + UP_S + DOWN_S; t++) {
      if (t === STEADY_S + UP_S) upTasks = tasks;
      // Stage input in tuples/s: 300 per task of the initial 4 (in the band), then 3 x HW per initial task, then half of LW in all.
      const load = t < STEADY_S ? 4 * 300 : t < STEADY_S + UP_S ? 4 * 3 * HW : LW / 2;
      const taskRates: (number | null)[] = Array.from({ length: tasks }, () => (load / tasks) * (1 + NOISE * (2 * rng.next() - 1)));
      if (warming > 0) {
        taskRates[tasks - 1] = null;
        warming--;
      }
      for (const d of policy.observe(t * 1000, [{ stage: 1, taskRates }])) {
        decisions.push({ ...d, t });
        if (d.from !== tasks) throw new Error(`decision from ${d.from} but the stage has ${tasks} tasks`);
        tasks = d.to;
        if (d.to > d.from) warming = WARMUP_SAMPLES;
      }
    }
    return { decisions, finalTasks: tasks, upTasks };
  }

  function check(seed: number): void {
    const { decisions, finalTasks, upTasks } = simulate(seed);
    const log = decisions.map((d) => `t=${d.t}s ${d.from}->${d.to} (${d.reason})`).join("\n  ");
    const fail = (what: string): never => {
      throw new Error(`seed ${seed}: ${what}\n  decisions:\n  ${log}`);
    };
    const steady = decisions.filter((d) => d.t < STEADY_S);
    const up = decisions.filter((d) => d.t >= STEADY_S && d.t < STEADY_S + UP_S);
    const down = decisions.filter((d) => d.t >= STEADY_S + UP_S);
    if (steady.length !== 0) fail(`${steady.length} decisions under steady in-band load, want 0`);
    // Step up: the first scale-up within sustainSamples + 1 samples, none again before settleMs.
    const first = up[0] ?? fail("no scale-up after the step up");
    if (first.t - STEADY_S > C.sustainSamples) fail(`first scale-up ${first.t - STEADY_S} s after the step, want <= ${C.sustainSamples}`);
    if (first.from !== 4 || first.to !== 5) fail(`first scale-up ${first.from}->${first.to}, want 4->5`);
    const minGapS = C.settleMs / 1000 + C.sustainSamples - 1;
    for (const phase of [up, down]) {
      for (let i = 1; i < phase.length; i++) {
        const gap = phase[i]!.t - phase[i - 1]!.t;
        if (gap < minGapS) fail(`decisions ${gap} s apart at t=${phase[i]!.t}, want >= ${minGapS} (settle + sustain)`);
      }
    }
    // No flapping: only ups while the load is high, only downs once it is low, one task at a time.
    if (up.some((d) => d.to !== d.from + 1)) fail("a non-+1 decision under high load");
    if (down.some((d) => d.to !== d.from - 1)) fail("a non--1 decision under low load");
    // High load ends with the average at or near HW: 6000 tuples/s needs at least 12 tasks of 500.
    if (upTasks < 12 || upTasks > C.maxTasks) fail(`${upTasks} tasks after the step up, want 12..${C.maxTasks}`);
    if (up.length !== upTasks - 4) fail(`${up.length} scale-ups, want ${upTasks - 4}`);
    // Low load ends at minTasks, each step once.
    if (finalTasks !== C.minTasks) fail(`${finalTasks} tasks after the step down, want ${C.minTasks}`);
    if (down.length !== upTasks - C.minTasks) fail(`${down.length} scale-downs, want ${upTasks - C.minTasks}`);
  }

  for (const seed of [1, 2, 3, 7, 42, 1234, 99_999, 0xdeadbeef]) test(`seed ${seed}`, () => check(seed));

  test("the same seed replays the same decisions", () => {
    expect(simulate(42)).toEqual(simulate(42));
  });
});
