/**
 * Table tests of rate schedules: parsing, the rate in force, its integral and the integral's inverse.
 */
import { describe, expect, test } from "bun:test";
import { randomInt, seededRng } from "../shared/rng.ts";
import { PlanError } from "./plan.ts";
import { MIN_RATE_PER_SEC, parseRateSchedule, rateAt, type RateStep, timeDueMs, tuplesDueBy } from "./rate_schedule.ts";

const S = (...pairs: [number, number][]): RateStep[] => pairs.map(([ratePerSec, durationMs]) => ({ ratePerSec, durationMs }));
/** 500/s for 10 s, 5000/s for 20 s, 500/s for 10 s: 5000 + 100000 + 5000 tuples over 40 s. */
const BURST = S([500, 10_000], [5000, 20_000], [500, 10_000]);

describe("parseRateSchedule", () => {
  const cases: [string, RateStep[]][] = [
    ["500:10s,5000:20s,500:10s", BURST],
    ["100:1500ms", S([100, 1500])],
    ["100:2m", S([100, 120_000])],
    ["100:250", S([100, 250])], // a bare duration is ms, as everywhere else
    [" 1.5 : 1.5s , 7:1s ", S([1.5, 1500], [7, 1000])],
    ["1:1s", S([MIN_RATE_PER_SEC, 1000])],
    ["10000000:1s", S([10_000_000, 1000])],
    ["1:1440m", S([1, 86_400_000])],
    [Array(100).fill("1:1s").join(","), Array.from({ length: 100 }, () => ({ ratePerSec: 1, durationMs: 1000 }))],
  ];
  for (const [text, want] of cases) test(JSON.stringify(text.slice(0, 40)), () => expect(parseRateSchedule(text)).toEqual(want));

  const bad: [string, string][] = [
    ["", "--rate-schedule: empty; expected one or more"],
    ["   ", "--rate-schedule: empty"],
    ["500:10s,5000:x", `--rate-schedule: step 2 "5000:x": duration "x" is not a duration`],
    ["500:10s,5000:x", "expected <tuples/s>:<duration> such as 5000:20s"],
    ["500", `step 1 "500": expected <tuples/s>:<duration> such as 5000:20s`],
    ["500:10s:3", `step 1 "500:10s:3": expected <tuples/s>:<duration>`],
    ["500:10s,", `step 2 "": expected <tuples/s>:<duration>`],
    ["0:10s", `step 1 "0:10s": rate must be at least 1 and at most 10000000 tuples/s, got 0`],
    // A rate just above 0 is a step (and, as the last step, a job) that never ends.
    ["0.5:10s", `step 1 "0.5:10s": rate must be at least 1 and at most 10000000 tuples/s, got 0.5`],
    ["100:1s,0.0000001:1s", `step 2 "0.0000001:1s": rate must be at least 1`],
    ["0.999:1s", "rate must be at least 1"],
    ["1e-300:1s", `rate "1e-300" is not a number`],
    ["Infinity:1s", `rate "Infinity" is not a number`],
    ["NaN:1s", `rate "NaN" is not a number`],
    ["-5:10s", `step 1 "-5:10s": rate "-5" is not a number`],
    ["abc:10s", `rate "abc" is not a number`],
    ["1e3:10s", `rate "1e3" is not a number`],
    ["10000001:1s", "rate must be at least 1 and at most 10000000 tuples/s, got 10000001"],
    [`1${"0".repeat(400)}:1s`, "rate must be at least 1 and at most 10000000 tuples/s"],
    ["5:0s", `step 1 "5:0s": duration must be > 0`],
    ["5:10h", `duration "10h" is not a duration (ms, s or m`],
    ["5:1440m,5:1ms", `step 2 "5:1ms": the schedule lasts more than 24 h`],
    [Array(101).fill("1:1s").join(","), "101 steps; at most 100 are allowed"],
  ];
  for (const [text, message] of bad) {
    test(`refuses ${JSON.stringify(text.slice(0, 30))}: ${message}`, () => {
      expect(() => parseRateSchedule(text)).toThrow(PlanError);
      expect(() => parseRateSchedule(text)).toThrow(message);
    });
  }
});

describe("rateAt", () => {
  const ROWS: [string, RateStep[], number, number][] = [
    // [schedule, steps, elapsedMs, rate]
    ["burst", BURST, -1, 0],
    ["burst", BURST, 0, 500],
    ["burst", BURST, 9_999, 500],
    ["burst", BURST, 10_000, 5000], // boundaries belong to the next step
    ["burst", BURST, 29_999.5, 5000],
    ["burst", BURST, 30_000, 500],
    ["burst", BURST, 40_000, 500], // the last rate continues
    ["burst", BURST, 1e9, 500],
    ["7:100ms", S([7, 100]), 5e6, 7],
    ["none", [], 10, 0],
  ];
  for (const [name, steps, t, want] of ROWS) test(`${name} at ${t} ms -> ${want}`, () => expect(rateAt(steps, t)).toBe(want));
});

describe("tuplesDueBy and timeDueMs", () => {
  const ROWS: [string, RateStep[], number, number][] = [
    // [schedule, steps, elapsedMs, tuples due] (each row also checks timeDueMs(tuples) = elapsedMs when tuples > 0)
    ["burst", BURST, 0, 0],
    ["burst", BURST, 2, 1],
    ["burst", BURST, 1_000, 500],
    ["burst", BURST, 10_000, 5000],
    ["burst", BURST, 10_200, 6000],
    ["burst", BURST, 30_000, 105_000],
    ["burst", BURST, 40_000, 110_000],
    ["burst", BURST, 41_000, 110_500], // the last rate continues
    ["1:1s,2:1s", S([1, 1000], [2, 1000]), 1500, 2],
    ["1:1s,2:1s", S([1, 1000], [2, 1000]), 500, 0.5],
    ["4:250ms", S([4, 250]), 10_000, 40],
  ];
  for (const [name, steps, t, want] of ROWS)
    test(`${name} by ${t} ms -> ${want}`, () => {
      expect(tuplesDueBy(steps, t)).toBeCloseTo(want, 9);
      if (want > 0 && Number.isInteger(want)) expect(timeDueMs(steps, want)).toBeCloseTo(t, 9);
    });

  test("edges", () => {
    expect(tuplesDueBy(BURST, -50)).toBe(0);
    expect(tuplesDueBy([], 1000)).toBe(0);
    expect(timeDueMs(BURST, 0)).toBe(0);
    expect(timeDueMs(BURST, -3)).toBe(0);
    expect(timeDueMs([], 1)).toBe(Infinity);
    expect(timeDueMs(BURST, Infinity)).toBe(Infinity);
    // n exactly at a step boundary is due at the boundary, not later in the next step.
    expect(timeDueMs(BURST, 5000)).toBe(10_000);
    expect(timeDueMs(BURST, 110_000)).toBe(40_000);
  });

  test("a paced source sends the schedule's count in each step", () => {
    // Simulate a source that, every 1 ms tick, sends every line that is due.
    let sent = 0;
    const perStep: number[] = [0, 0, 0];
    for (let t = 1; t <= 40_000; t++) {
      while (tuplesDueBy(BURST, t) >= sent + 1) {
        sent++;
        perStep[t <= 10_000 ? 0 : t <= 30_000 ? 1 : 2]!++;
      }
    }
    expect(perStep).toEqual([5000, 100_000, 5000]);
  });

  test("timeDueMs is the exact inverse on random schedules (seeded)", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const rng = seededRng(seed);
      const steps = Array.from({ length: 1 + randomInt(rng, 6) }, () => ({
        ratePerSec: [0.5, 3, 7, 100, 333, 5000, 10_000_000][randomInt(rng, 7)]!,
        durationMs: [1, 7, 333, 1000, 1500, 60_000][randomInt(rng, 6)]!,
      }));
      for (let k = 0; k < 200; k++) {
        const n = 1 + randomInt(rng, 100_000);
        const t = timeDueMs(steps, n);
        const ctx = `seed ${seed}: steps ${JSON.stringify(steps)} n=${n} t=${t}`;
        if (!(tuplesDueBy(steps, t) >= n)) throw new Error(`${ctx}: tuplesDueBy(t) = ${tuplesDueBy(steps, t)} < n`);
        // Earliest: a hair earlier (relative 1e-9 of t, at least 1 ns) is not yet due.
        const earlier = t - Math.max(t * 1e-9, 1e-6);
        if (!(tuplesDueBy(steps, earlier) < n)) throw new Error(`${ctx}: already due at ${earlier}`);
        if (timeDueMs(steps, n + 1) < t) throw new Error(`${ctx}: timeDueMs(n + 1) < timeDueMs(n)`);
      }
    }
  });
});
