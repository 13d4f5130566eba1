import { describe, expect, test } from "bun:test";
import { hashKey, parseInputRate, parseJobArgs, parseStageMap, parseWatermark, partitionOf, placeRoundRobin, PlanError, validateOperatorName } from "./plan.ts";
import { MAX_RATE_PER_SEC, MIN_RATE_PER_SEC } from "./rate_schedule.ts";

const TAIL = ["src.csv", "out.txt", "false", "false", "100", "20", "80"];

describe("parseStageMap", () => {
  const cases: [string, { op: string; args: string[] }[]][] = [
    ["stage0 echo-wrapper", [{ op: "echo-wrapper", args: [] }]],
    [
      "stage0 grep-wrapper Parking 4 stage1 aggregate-wrapper",
      [
        { op: "grep-wrapper", args: ["Parking", "4"] },
        { op: "aggregate-wrapper", args: [] },
      ],
    ],
    [
      "stage0 grep-wrapper 'Sign Post' 4 stage1 transform-wrapper 3",
      [
        { op: "grep-wrapper", args: ["Sign Post", "4"] },
        { op: "transform-wrapper", args: ["3"] },
      ],
    ],
    [`stage0 grep-wrapper "a \\"quoted\\" b" 1`, [{ op: "grep-wrapper", args: ['a "quoted" b', "1"] }]],
  ];
  for (const [map, stages] of cases) test(map, () => expect(parseStageMap(map)).toEqual(stages));

  const bad: [string, string][] = [
    ["", "at least one stage"],
    ["echo-wrapper", "start with stage0"],
    ["stage1 echo-wrapper", "expected stage0 next, got stage1"],
    ["stage0 echo-wrapper stage2 echo-wrapper", "expected stage1 next, got stage2"],
    ["stage0", "stage0 names no operator"],
    ["stage0 grep-wrapper 'open", "unterminated"],
  ];
  for (const [map, message] of bad) test(`refuses ${JSON.stringify(map)}`, () => expect(() => parseStageMap(map)).toThrow(message));
});

describe("parseJobArgs", () => {
  test("the seed's form with -stage-config-map", () => {
    const spec = parseJobArgs(["2", "3", "-stage-config-map", "stage0 grep-wrapper 'Sign Post' 4 stage1 aggregate-wrapper", ...TAIL]);
    expect(spec.stages.map((s) => s.op)).toEqual(["grep-wrapper", "aggregate-wrapper"]);
    expect(spec.stages[0]!.args).toEqual(["Sign Post", "4"]);
    expect(spec).toMatchObject({
      tasksPerStage: 3,
      src: "src.csv",
      dest: "out.txt",
      exactlyOnce: false,
      autoscale: false,
      inputRate: 100,
      lowWatermark: 20,
      highWatermark: 80,
    });
  });

  test("the positional form gives the same plan", () => {
    const a = parseJobArgs(["2", "3", "grep-wrapper", "'Sign Post' 4", "aggregate-wrapper", "", ...TAIL]);
    const b = parseJobArgs(["2", "3", "-stage-config-map", "stage0 grep-wrapper 'Sign Post' 4 stage1 aggregate-wrapper", ...TAIL]);
    expect(a).toEqual(b);
  });

  test("--rate-schedule anywhere, in either spelling, replaces input_rate", () => {
    const tail0 = ["src.csv", "out.txt", "false", "true", "0", "20", "80"];
    const a = parseJobArgs(["1", "1", "--rate-schedule", "500:10s,5000:2s", "echo-wrapper", "", ...tail0]);
    const b = parseJobArgs(["1", "1", "echo-wrapper", "", ...tail0, "--rate-schedule=500:10s,5000:2s"]);
    expect(a).toEqual(b);
    expect(a.rateSchedule).toEqual([
      { ratePerSec: 500, durationMs: 10_000 },
      { ratePerSec: 5000, durationMs: 2000 },
    ]);
    expect(parseJobArgs(["1", "1", "echo-wrapper", "", ...tail0]).rateSchedule).toBeUndefined();
  });

  const bad: [string[], string][] = [
    [["1", "1", "echo-wrapper", "", ...TAIL, "--rate-schedule", "500:10s"], "input_rate is 100 and --rate-schedule is given"],
    [["1", "1", "echo-wrapper", "", ...TAIL, "--rate-schedule"], "--rate-schedule: expected a schedule"],
    [["1", "1", "echo-wrapper", "", "src.csv", "out.txt", "false", "false", "0", "20", "80", "--rate-schedule", "500"], "--rate-schedule: step 1"],
    [["x", "3", "-stage-config-map", "stage0 echo", ...TAIL], 'Nstages: expected an integer in [1, 16], got "x"'],
    [["1", "0", "-stage-config-map", "stage0 echo", ...TAIL], 'Ntasks_per_stage: expected an integer in [1, 64], got "0"'],
    [["2", "1", "-stage-config-map", "stage0 echo", ...TAIL], "Nstages is 2 but the stage map has 1 stages"],
    [["1", "1", "-stage-config-map", "stage0 echo", "src", "dst"], "expected 7 arguments after the stages"],
    [["1", "1", "-stage-config-map", "stage0 echo", "s", "d", "maybe", "false", "0", "0", "0"], 'exactly_once: expected true or false, got "maybe"'],
    [
      ["1", "1", "-stage-config-map", "stage0 echo", "s", "d", "false", "false", "-5", "0", "0"],
      'input_rate: expected 0 (as fast as possible) or a number of tuples/s from 1 to 10000000, got "-5"',
    ],
    [
      ["1", "1", "-stage-config-map", "stage0 echo", "s", "d", "false", "false", "1e-300", "0", "0"],
      'input_rate: expected 0 (as fast as possible) or a number of tuples/s from 1 to 10000000, got "1e-300"',
    ],
    [
      ["1", "1", "-stage-config-map", "stage0 echo", "s", "d", "false", "false", "0", "-1", "10"],
      'LW: expected a number of tuples/s per task from 0 to 10000000, got "-1"',
    ],
    [
      ["1", "1", "-stage-config-map", "stage0 echo", "s", "d", "false", "false", "0", "0", "Infinity"],
      'HW: expected a number of tuples/s per task from 0 to 10000000, got "Infinity"',
    ],
    [["1", "1", "-stage-config-map", "stage0 echo", "s", "d", "false", "false", "0", "90", "10"], "LW (90) must not exceed HW (10)"],
    [["2", "1", "echo"], "expected 2 pairs of <op> '<args>'"],
    [["1", "1", "x", "-stage-config-map", "stage0 echo", ...TAIL], "-stage-config-map: expected right after"],
  ];
  for (const [args, message] of bad) {
    test(`refuses: ${message}`, () => {
      expect(() => parseJobArgs(args)).toThrow(PlanError);
      expect(() => parseJobArgs(args)).toThrow(message);
    });
  }
});

describe("rates: input_rate is 0 or a real pace; LW and HW are bounded", () => {
  const inputRates: [string, number][] = [
    ["0", 0],
    ["0.0", 0],
    ["1", 1],
    [String(MIN_RATE_PER_SEC), MIN_RATE_PER_SEC],
    ["1.5", 1.5],
    ["100", 100],
    [String(MAX_RATE_PER_SEC), MAX_RATE_PER_SEC],
  ];
  for (const [text, want] of inputRates) test(`input_rate ${text} -> ${want}`, () => expect(parseInputRate(text)).toBe(want));
  // Never-ending (tiny), unbounded, and non-decimal spellings that Number() would accept.
  for (const bad of [
    "1e-300",
    "0.5",
    "0.999",
    "0.0000001",
    "10000001",
    "1e400",
    "Infinity",
    "NaN",
    "-1",
    "-0",
    "",
    " 5",
    "5 ",
    "0x10",
    "1e3",
    "+5",
    "1,000",
    "5.",
    ".5",
  ]) {
    test(`input_rate ${JSON.stringify(bad)} is refused, naming the value and the range`, () => {
      expect(() => parseInputRate(bad)).toThrow(PlanError);
      expect(() => parseInputRate(bad)).toThrow(
        `input_rate: expected 0 (as fast as possible) or a number of tuples/s from ${MIN_RATE_PER_SEC} to ${MAX_RATE_PER_SEC}, got ${JSON.stringify(bad)}`,
      );
    });
  }
  test("a missing input_rate is refused", () => expect(() => parseInputRate(undefined)).toThrow("got undefined"));

  const watermarks: [string, number][] = [
    ["0", 0],
    ["0.5", 0.5],
    ["20", 20],
    [String(MAX_RATE_PER_SEC), MAX_RATE_PER_SEC],
  ];
  for (const [text, want] of watermarks) test(`watermark ${text} -> ${want}`, () => expect(parseWatermark(text, "LW")).toBe(want));
  for (const bad of ["-1", "1e-300", "1e400", "Infinity", "NaN", "", "0x10", "10000001", " 1"]) {
    test(`watermark ${JSON.stringify(bad)} is refused`, () =>
      expect(() => parseWatermark(bad, "HW")).toThrow(`HW: expected a number of tuples/s per task from 0 to ${MAX_RATE_PER_SEC}, got ${JSON.stringify(bad)}`));
  }

  test("a schedule step below the minimum rate is refused at job parsing too", () => {
    expect(() => parseJobArgs(["1", "1", "echo-wrapper", "", "s", "d", "false", "false", "0", "0", "0", "--rate-schedule", "100:1s,0.001:1s"])).toThrow(
      `step 2 "0.001:1s": rate must be at least ${MIN_RATE_PER_SEC}`,
    );
  });
});

describe("validateOperatorName", () => {
  for (const ok of ["grep-wrapper", "aggregate", "my_op.py", "x1"]) test(`accepts ${ok}`, () => expect(validateOperatorName(ok)).toBe(ok));
  for (const bad of ["../bin/sh", "/bin/sh", "a/b", "..", "-rf", "", "a b", "x".repeat(65)]) {
    test(`refuses ${JSON.stringify(bad)}`, () => expect(() => validateOperatorName(bad)).toThrow("plain name"));
  }
});

describe("placement and partitioning", () => {
  test("round robin continues where the previous stage stopped", () => {
    expect(placeRoundRobin(["a", "b", "c"], 3, 0)).toEqual(["a", "b", "c"]);
    expect(placeRoundRobin(["a", "b", "c", "d", "e"], 3, 3)).toEqual(["d", "e", "a"]);
    expect(placeRoundRobin(["a"], 3, 1)).toEqual(["a", "a", "a"]);
    expect(() => placeRoundRobin([], 1, 0)).toThrow("no alive worker");
  });

  test("FNV-1a golden values (stable across nodes and runs)", () => {
    // Reference values of 32-bit FNV-1a.
    expect(hashKey("")).toBe(0x811c9dc5);
    expect(hashKey("a")).toBe(0xe40c292c);
    expect(hashKey("foobar")).toBe(0xbf9cf968);
  });

  test("keys spread over tasks and each key always goes to the same task", () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[partitionOf(`src:${i}`, 3)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
    expect(partitionOf("Sign Post", 7)).toBe(partitionOf("Sign Post", 7));
  });
});
