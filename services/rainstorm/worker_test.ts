/**
 * What a worker accepts from the wire, in-process: operator names and the files they resolve to
 * (links followed, inside ops_dir only), task starts (job ids, numbers, args, routes) and data
 * batches (decodeBatch: count against lines, the lines' form, every field). Tables, plus a Worker
 * that is asked to start programs it must not start (a marker file shows whether one ran).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { chmodSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import { tempPath } from "../testing/cluster.ts";
import { tupleLine } from "./operator_proc.ts";
import {
  type Batch,
  BatchError,
  checkJobId,
  checkOutputsNotice,
  checkRoutes,
  checkTaskStart,
  decodeBatch,
  encodeBatch,
  tupleLinesProblem,
  isInside,
  MAX_BATCH_TUPLES,
  operatorFile,
  RequestError,
  resultLinesProblem,
  splitBatch,
  TaskGone,
  type TaskStart,
  taskStderrLogPath,
  Worker,
} from "./worker.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dir = tempPath("worker-test-");
const ops = join(dir, "ops");
const outside = join(dir, "outside");
const marker = join(dir, "MARKER");
/** What /bin/sh is with its links followed (often /usr/bin/dash). */
const SH = realpathSync("/bin/sh");

const JOB = "job-m1abc2de-1";
const ROUTES = { version: 1, stages: [["127.0.0.1:15000"]] };

function script(path: string, body: string, mode = 0o755): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
}

beforeAll(() => {
  mkdirSync(join(ops, "subdir"), { recursive: true });
  mkdirSync(outside, { recursive: true });
  // Inside: a multi-call binary and a link to it (as dist/ops), an operator of one's own, a
  // link to it, a file that is not executable, a directory.
  script(join(ops, "rainstorm-op"), "exec cat >/dev/null");
  symlinkSync("rainstorm-op", join(ops, "echo-wrapper"));
  script(join(ops, "my-op"), "exec cat >/dev/null");
  symlinkSync(join(ops, "my-op"), join(ops, "my-op-abs-link"));
  script(join(ops, "not-executable"), "exit 0", 0o644);
  // Links that lead out of ops_dir: to a shell, to a script beside ops_dir, through another link.
  symlinkSync("/bin/sh", join(ops, "sh-link"));
  script(join(outside, "evil"), `touch ${marker}`);
  symlinkSync("../outside/evil", join(ops, "evil-rel"));
  symlinkSync(join(outside, "evil"), join(ops, "evil-abs"));
  symlinkSync("sh-link", join(ops, "chain"));
  symlinkSync(outside, join(ops, "outdir"));
  symlinkSync(join(ops, "missing"), join(ops, "dangling"));
  // The same ops dir reached through a link: real paths on both sides.
  symlinkSync(ops, join(dir, "ops-alias"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("operatorFile: plain names, resolved inside ops_dir only", () => {
  test("a built-in name links to the multi-call binary beside it: that binary runs, invoked by the name", () => {
    expect(operatorFile(ops, "echo-wrapper")).toEqual({ path: join(ops, "echo-wrapper"), real: join(ops, "rainstorm-op") });
    expect(operatorFile(ops, "my-op")).toEqual({ path: join(ops, "my-op"), real: join(ops, "my-op") });
    expect(operatorFile(ops, "my-op-abs-link")?.real).toBe(join(ops, "my-op"));
    expect(operatorFile(join(dir, "ops-alias"), "echo-wrapper")?.real).toBe(join(ops, "rainstorm-op"));
  });

  test("the built dist/ops links stay valid (when built)", () => {
    const built = join(ROOT, "dist", "ops");
    if (!existsSync(join(built, "rainstorm-op"))) return;
    for (const name of readdirSync(built)) expect(operatorFile(built, name)?.real).toBe(join(built, "rainstorm-op"));
  });

  test("no such operator: undefined (nothing runs)", () => {
    expect(operatorFile(ops, "nope")).toBeUndefined();
    expect(operatorFile(ops, "dangling")).toBeUndefined();
    expect(operatorFile(join(dir, "no-such-dir"), "echo-wrapper")).toBeUndefined();
  });

  const names = [
    "../../bin/sh",
    "../../../../bin/sh",
    "/bin/sh",
    "a/../../x",
    "subdir/../my-op",
    "..",
    ".",
    "",
    "-rf",
    "sh\0",
    "my-op\0",
    "a\nb",
    "a\tb",
    "a\u001b[31m",
    "x".repeat(65),
    "my op",
  ];
  for (const name of names) {
    test(`refuses the name ${JSON.stringify(name.slice(0, 30))} before making a path`, () => {
      expect(() => operatorFile(ops, name)).toThrow(RequestError);
      expect(() => operatorFile(ops, name)).toThrow("expected a plain name from the operators directory");
    });
  }

  const links: [string, string][] = [
    ["sh-link", `leads to ${SH}, outside the operators directory`],
    ["evil-rel", `leads to ${join(outside, "evil")}, outside the operators directory`],
    ["evil-abs", "outside the operators directory"],
    ["chain", `leads to ${SH}`],
    ["outdir", "outside the operators directory"],
    ["subdir", "is not a regular file"],
    ["not-executable", "is not executable"],
  ];
  for (const [name, message] of links) {
    test(`refuses ${name}: ${message}`, () => {
      expect(() => operatorFile(ops, name)).toThrow(RequestError);
      expect(() => operatorFile(ops, name)).toThrow(message);
    });
  }

  test("isInside: strictly below the directory", () => {
    expect(isInside("/a/b", "/a/b/c")).toBe(true);
    expect(isInside("/a/b", "/a/b/..c")).toBe(true); // a file named ..c
    expect(isInside("/a/b", "/a/b")).toBe(false);
    expect(isInside("/a/b", "/a/bc")).toBe(false);
    expect(isInside("/a/b", "/a")).toBe(false);
    expect(isInside("/a/b", "/bin/sh")).toBe(false);
  });
});

describe("job ids, task starts and routes from the wire", () => {
  for (const ok of [JOB, "job-a-1", "job-lz3k9q0w-123456"]) test(`job id ${ok}`, () => expect(checkJobId(ok)).toBe(ok));
  for (const bad of [
    "",
    "j",
    "job",
    "job-abc",
    "job-abc-0",
    "job-ABC-1",
    "job-abc-1/..",
    "../../etc",
    "job-abc-1\n",
    "job-abc-1\0",
    " job-abc-1",
    "job-abc--1",
    `job-${"a".repeat(17)}-1`,
    7,
    null,
    ["job-a-1"],
  ]) {
    test(`refuses job id ${JSON.stringify(bad)}`, () => {
      expect(() => checkJobId(bad)).toThrow(RequestError);
      expect(() => checkJobId(bad)).toThrow("job: expected a job id such as job-m1abc2de-1");
    });
  }

  test("task log paths come from checked parts and stay in the log directory", () => {
    expect(taskStderrLogPath("/data/logs", JOB, 1, 2)).toBe(`/data/logs/${JOB}/stage1-task2.log`);
    expect(() => taskStderrLogPath("/data/logs", "../../x", 0, 0)).toThrow("job: expected a job id");
    expect(() => taskStderrLogPath("/data/logs", JOB, -1, 0)).toThrow("stage: expected an integer from 0 to 15");
    expect(() => taskStderrLogPath("/data/logs", JOB, 0, 1e300)).toThrow("index: expected an integer from 0 to 63, got 1e+300");
  });

  const start: TaskStart = { job: JOB, stage: 0, index: 0, op: "echo-wrapper", args: ["a", "b c"], routes: ROUTES, exactlyOnce: false, dest: "out.txt" };
  test("a good start passes as it is", () => expect(checkTaskStart(start)).toEqual(start));

  const bad: [Record<string, unknown>, string][] = [
    [{ job: "../../../tmp/x" }, "job: expected a job id"],
    [{ stage: -1 }, "stage: expected an integer from 0 to 15, got -1"],
    [{ stage: 1.5 }, "stage: expected an integer"],
    [{ stage: 16 }, "stage: expected an integer from 0 to 15, got 16"],
    [{ stage: 1 }, "stage: 1 is not a stage of the routes (1 stages)"],
    [{ index: 64 }, "index: expected an integer from 0 to 63"],
    [{ index: "0" }, "index: expected an integer"],
    [{ op: "../../../../bin/sh" }, "expected a plain name"],
    [{ op: "/bin/sh" }, "expected a plain name"],
    [{ op: 5 }, "expected a plain name"],
    [{ args: "-c id" }, "args: expected a list of at most 200 strings"],
    [{ args: Array(201).fill("x") }, "args: expected a list of at most 200 strings"],
    [{ args: ["ok", 3] }, "args[1]: expected a string of at most 65536 characters without NUL"],
    [{ args: ["a\0b"] }, "args[0]: expected a string of at most 65536 characters without NUL"],
    [{ args: ["x".repeat(65_537)] }, "args[0]: expected a string of at most 65536 characters"],
    [{ routes: undefined }, "routes: expected {version, stages}"],
    [{ dest: undefined }, "dest: a task of the last stage appends its results to dest: invalid HyDFS file name undefined: expected a string"],
    [{ dest: "../x" }, 'dest: a task of the last stage appends its results to dest: invalid HyDFS file name "../x"'],
    [{ dest: "a\nb" }, "no control characters"],
    [{ routes: { ...ROUTES, stages: [["127.0.0.1:15000"], ["127.0.0.1:15000"]] } }, 'dest: only a task of the last stage writes dest, got "out.txt"'],
    [{ routes: { ...ROUTES, stages: [["127.0.0.1:99999"]] } }, "routes.stages[0][0]: expected host:port"],
    [{ routes: { ...ROUTES, stages: [] } }, "routes.stages: expected 1 to 16 stages"],
    [{ routes: { ...ROUTES, stages: [[]] } }, "routes.stages[0]: expected 1 to 64 addresses"],
    [{ routes: { ...ROUTES, version: -1 } }, "routes.version: expected an integer"],
    [{ exactlyOnce: "yes" }, 'exactlyOnce: expected true or false, got "yes"'],
  ];
  for (const [change, message] of bad) {
    test(`refuses ${JSON.stringify(change).slice(0, 60)}: ${message}`, () => {
      expect(() => checkTaskStart({ ...start, ...change } as TaskStart)).toThrow(RequestError);
      expect(() => checkTaskStart({ ...start, ...change } as TaskStart)).toThrow(message);
    });
  }
  test("checkRoutes takes host names and IPv4 addresses", () => {
    const r = { version: 3, stages: [["10.0.0.1:15000", "vm2.example.edu:15000"], ["a:1"], ["localhost:65535"]] };
    expect(checkRoutes(r)).toEqual(r);
  });
});

describe("a Worker refuses to start what is not a plain operator inside ops_dir", () => {
  let worker: Worker;
  const died: unknown[] = [];
  beforeAll(() => {
    const cfg = buildNodeConfig({ host: "127.0.0.1", data_dir: join(dir, "data"), rainstorm: { ops_dir: ops } });
    worker = new Worker({ cfg, log: makeLogger("worker-test", "silent"), onTaskDied: (t) => died.push(t) });
  });
  afterAll(() => worker.stop());

  const base: TaskStart = { job: JOB, stage: 0, index: 0, op: "my-op", args: [], routes: ROUTES, dest: "out.txt" };
  const refused: [Partial<TaskStart>, string][] = [
    [{ op: "../../../../bin/sh", args: ["-c", `touch ${marker}`] }, "expected a plain name"],
    [{ op: "../../bin/sh", args: ["-c", `touch ${marker}`] }, "expected a plain name"],
    [{ op: "/bin/sh", args: ["-c", `touch ${marker}`] }, "expected a plain name"],
    [{ op: "a/../../x" }, "expected a plain name"],
    [{ op: "sh\0", args: ["-c", `touch ${marker}`] }, "expected a plain name"],
    [{ op: "my-op\r\n" }, "expected a plain name"],
    [{ op: "sh-link", args: ["-c", `touch ${marker}`] }, `leads to ${SH}, outside the operators directory`],
    [{ op: "evil-rel" }, "outside the operators directory"],
    [{ op: "chain", args: ["-c", `touch ${marker}`] }, "outside the operators directory"],
    [{ job: "../../../../tmp/x" }, "job: expected a job id"],
    [{ stage: 1e300 }, "stage: expected an integer from 0 to 15"],
    [{ args: ["-c\0touch"] }, "without NUL"],
  ];
  for (const [change, message] of refused) {
    test(`${JSON.stringify(change).slice(0, 70)}: ${message}, and nothing runs`, async () => {
      expect(() => worker.startTask({ ...base, ...change })).toThrow(RequestError);
      expect(() => worker.startTask({ ...base, ...change })).toThrow(message);
      await Bun.sleep(50);
      expect(existsSync(marker)).toBe(false);
      expect(worker.list()).toEqual([]);
      expect(existsSync(join(dir, "data", "rainstorm", "logs", JOB))).toBe(false);
    });
  }

  test("the leader-side check (operatorCommand) refuses the same way", () => {
    expect(() => worker.operatorCommand("../../bin/sh", [])).toThrow(RequestError);
    expect(() => worker.operatorCommand("sh-link", [])).toThrow("outside the operators directory");
    expect(worker.operatorCommand("echo-wrapper", ["x"])).toEqual({ cmd: [join(ops, "rainstorm-op"), "x"], argv0: join(ops, "echo-wrapper"), framing: "tsv" });
  });

  test("a plain name inside ops_dir starts, and so does a built-in name linked to the multi-call binary", async () => {
    for (const [op, index] of [
      ["my-op", 0],
      ["echo-wrapper", 1],
    ] as const) {
      const r = worker.startTask({ ...base, op, index });
      expect(r.pid).toBeGreaterThan(0);
      expect(r.logPath).toBe(join(dir, "data", "rainstorm", "logs", JOB, `stage0-task${index}.log`));
    }
    expect(worker.list().map((t) => [t.op, t.alive])).toEqual([
      ["my-op", true],
      ["echo-wrapper", true],
    ]);
    expect(await worker.stopJob(JOB)).toBe(2);
    expect(existsSync(marker)).toBe(false);
  });

  test("batches: an unknown job is 404, a stage the job lacks is 400, a task not here is TaskGone", async () => {
    worker.startTask({ ...base, job: "job-live-1" });
    const batch = (b: Partial<Batch>): Batch => ({ job: "job-live-1", stage: 0, index: 0, count: 0, lines: "", ...b });
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: Error) => e,
      );
    const unknown = await err(worker.handleBatch(batch({ job: "job-other-1" })));
    expect(unknown).toBeInstanceOf(RequestError);
    expect((unknown as RequestError).status).toBe(404);
    expect((unknown as Error).message).toBe("batch: job job-other-1 is not known on this worker");
    const noStage = await err(worker.handleBatch(batch({ stage: 3 })));
    expect((noStage as RequestError).status).toBe(400);
    expect((noStage as Error).message).toBe("batch: job job-live-1 has 1 stages; there is no stage 3");
    expect(await err(worker.handleBatch(batch({ index: 5 })))).toBeInstanceOf(TaskGone);
    await worker.stopJob("job-live-1");
    expect(await err(worker.handleBatch(batch({})))).toBeInstanceOf(TaskGone);
  });
});

describe("decodeBatch: every field checked, count against the lines, 400 with a reason", () => {
  const lines3 = tupleLine("src:1", "src:1", "a") + tupleLine("src:2", "src:2", 'b "quoted", \\ \u00e9 \u2028 \t \n') + tupleLine("src:3", "k", "");
  const task = { job: JOB, stage: 0, index: 0, count: 3, lines: lines3 };
  const notice = { job: JOB, stage: 2, index: 0, from: "s2t0", seq: 1, total: 2, lines: ["k\tv", "k2\tv 2"] };

  test("good batches decode to themselves", () => {
    expect(decodeBatch(encode(task))).toEqual(task);
    expect(decodeBatch(encode({ ...task, count: 0, lines: "" }))).toEqual({ ...task, count: 0, lines: "" });
    expect(decodeBatch(encode({ ...task, stage: 15, index: 63 })).index).toBe(63);
    expect(decodeBatch(encode({ ...task, floor: 41 }))).toEqual({ ...task, floor: 41 });
  });

  test("encodeBatch sends lines as UTF-8 bytes; decodeBatch reads them back, and refuses bytes that are not UTF-8", () => {
    expect(decodeBatch(encodeBatch(task))).toEqual(task);
    expect(decodeBatch(encodeBatch({ ...task, floor: 9 }))).toEqual({ ...task, floor: 9 });
    const line = new TextEncoder().encode(tupleLine("src:1", "k", "v"));
    line[line.length - 4] = 0xff;
    expect(() => decodeBatch(encode({ ...task, count: 1, lines: line }))).toThrow("batch: lines: expected UTF-8 text, got bytes that are not");
  });

  test("good output notices pass as they are", () => {
    expect(checkOutputsNotice(notice)).toEqual(notice);
    expect(checkOutputsNotice({ ...notice, from: "s2t0-4711" })).toEqual({ ...notice, from: "s2t0-4711" });
    expect(checkOutputsNotice({ ...notice, lines: [] }).lines).toEqual([]);
  });

  const tuple = "batch: line 1: expected a tuple line id<TAB>key<TAB>value";
  const badTask: [unknown, string][] = [
    // The batch: count 1, three lines.
    [{ ...task, count: 1 }, "batch: count is 1 but lines holds more than 1 lines"],
    [{ ...task, count: 4 }, "batch: count is 4 but lines holds 3 lines"],
    [{ ...task, count: 0 }, "batch: count is 0 but lines holds more than 0 lines"],
    [{ ...task, count: -1 }, "batch: count: expected an integer from 0 to 1000000, got -1"],
    [{ ...task, count: 1.5 }, "batch: count: expected an integer"],
    [{ ...task, count: MAX_BATCH_TUPLES + 1 }, "batch: count: expected an integer from 0 to 1000000"],
    [{ ...task, count: 2 ** 53 }, "batch: count: expected an integer"],
    [{ ...task, count: "3" }, 'batch: count: expected an integer from 0 to 1000000, got "3"'],
    [{ ...task, job: "../x" }, 'batch: job: expected a job id such as job-m1abc2de-1 (job-<base36>-<number>), got "../x"'],
    [{ ...task, job: 1 }, "batch: job: expected a job id"],
    [{ ...task, stage: -1 }, "batch: stage: expected an integer from 0 to 15, got -1"],
    [{ ...task, stage: 16 }, "batch: stage: expected an integer from 0 to 15"],
    [{ ...task, index: 64 }, "batch: index: expected an integer from 0 to 63"],
    [{ ...task, index: Number.NaN }, "batch: index: expected an integer"],
    [{ ...task, lines: 7 }, "batch: lines: expected a string, got 7"],
    [{ ...task, ids: ["a", "b", "c"] }, 'batch: unknown field "ids"'],
    [{ ...task, extra: 1 }, 'batch: unknown field "extra"'],
    [{ ...task, floor: -1 }, "batch: floor (a source line number): expected an integer from 0 to"],
    [{ ...task, floor: 2 ** 53 }, "batch: floor (a source line number): expected an integer"],
    [{ ...task, floor: "7" }, 'batch: floor (a source line number): expected an integer from 0 to 9007199254740990, got "7"'],
    [{ job: JOB, stage: 0, index: 0, count: 0 }, "batch: lines: expected a string, got nothing"],
    [[1, 2, 3], "batch: expected a msgpack map {job, stage, index, count, lines}, got [1,2,3]"],
    ["just a string", "batch: expected a msgpack map"],
    [null, "batch: expected a msgpack map"],
    // Lines that are not exactly `count` tuple lines.
    [{ ...task, count: 1, lines: tupleLine("a", "k", "v").slice(0, -1) }, `${tuple} (no newline at its end), got "a\\tk\\tv"`],
    [{ ...task, count: 1, lines: "\n" }, `${tuple} (not exactly two tabs), got ""`],
    [{ ...task, count: 1, lines: '{"restore":{"Sign Post":1000000}}\n' }, `${tuple} (not exactly two tabs), got "{\\"restore\\"`],
    [{ ...task, count: 1, lines: '{"snapshot":1}\n' }, `${tuple} (not exactly two tabs)`],
    [{ ...task, count: 1, lines: '{"id":"a","key":"k","value":"v"}\n' }, `${tuple} (not exactly two tabs)`],
    [{ ...task, count: 1, lines: "a\tk\n" }, `${tuple} (not exactly two tabs)`],
    [{ ...task, count: 1, lines: "a\tk\tv\tw\n" }, `${tuple} (not exactly two tabs)`],
    [{ ...task, count: 1, lines: "a\tk\tv\rx\n" }, `${tuple} (a carriage return)`],
    [{ ...task, count: 1, lines: "a\tk\t\\x\n" }, `${tuple} (a backslash not followed by \\\\, t, n or r)`],
    [{ ...task, count: 1, lines: "a\tk\tv\\\n" }, `${tuple} (a backslash not followed by`],
    [{ ...task, count: 2, lines: tupleLine("a", "k", "v") + "\n" }, "batch: line 2: expected a tuple line id<TAB>key<TAB>value (not exactly two tabs)"],
  ];
  for (const [raw, message] of badTask) {
    test(`/data refuses ${JSON.stringify(raw).slice(0, 70)}`, () => {
      expect(() => decodeBatch(encode(raw))).toThrow(BatchError);
      expect(() => decodeBatch(encode(raw))).toThrow(message);
    });
  }

  const badNotice: [unknown, string][] = [
    [{ ...notice, lines: ["k\tv", "no tab"] }, 'lines: line 2: expected a result line key<TAB>value, got "no tab"'],
    [{ ...notice, lines: ["k\tv\nk\tv"] }, "lines: count is 1 but lines holds more than 1 lines"],
    [{ ...notice, lines: ["k\tv\r"] }, "lines: line 1: a result line holds no carriage return"],
    [{ ...notice, job: "../x" }, "job: expected a job id"],
    [{ ...notice, stage: 16 }, "stage: expected an integer from 0 to 15, got 16"],
    [{ ...notice, index: 64 }, "index: expected an integer from 0 to 63, got 64"],
    [{ ...notice, from: "s1t0" }, 'from: expected s2t0 or s2t0-<pid> (the task of stage 2 index 0), got "s1t0"'],
    [{ ...notice, from: "s2t0-" }, "from: expected s2t0 or s2t0-<pid>"],
    [{ ...notice, from: "s2t0-0" }, "from: expected s2t0 or s2t0-<pid>"],
  ];
  for (const [raw, message] of badNotice) {
    test(`/outputs refuses ${JSON.stringify(raw).slice(0, 70)}`, () => {
      expect(() => checkOutputsNotice(raw as typeof notice)).toThrow(RequestError);
      expect(() => checkOutputsNotice(raw as typeof notice)).toThrow(message);
    });
  }

  const notMsgpack: [string, Uint8Array][] = [
    ["empty body", new Uint8Array()],
    ["0xc1 (never used)", new Uint8Array([0xc1])],
    ["truncated map", encode(task).slice(0, 10)],
    ["trailing bytes", new Uint8Array([...encode(task), 0x01])],
    ["JSON text", new TextEncoder().encode(JSON.stringify(task))],
    ["an ext type", new Uint8Array([0xd4, 0x01, 0x00])],
  ];
  for (const [what, bytes] of notMsgpack) {
    test(`refuses ${what} with a 400 BatchError`, () => {
      let err: unknown;
      try {
        decodeBatch(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BatchError);
      expect((err as BatchError).status).toBe(400);
      expect((err as Error).message).toStartWith("batch: ");
    });
  }

  test("tupleLinesProblem and resultLinesProblem count exactly", () => {
    expect(tupleLinesProblem("", 0)).toBeUndefined();
    expect(tupleLinesProblem(lines3, 3)).toBeUndefined();
    expect(tupleLinesProblem(lines3, 2)).toBe("count is 2 but lines holds more than 2 lines");
    expect(resultLinesProblem("a\tb\n\tb\na\t\n", 3)).toBeUndefined();
    expect(resultLinesProblem("a\tb\n", 2)).toBe("count is 2 but lines holds 1 lines");
  });
});

describe("splitBatch keeps receivers' limit", () => {
  test("a batch over the limit goes as consecutive batches", () => {
    const lines = ["a", "b", "c", "d", "e"].map((k) => `${k}\t1\n`).join("");
    const b: Batch = { job: JOB, stage: 1, index: 0, count: 5, lines };
    expect(splitBatch(b, 5)).toEqual([b]);
    expect(splitBatch(b, 2)).toEqual([
      { job: JOB, stage: 1, index: 0, count: 2, lines: "a\t1\nb\t1\n" },
      { job: JOB, stage: 1, index: 0, count: 2, lines: "c\t1\nd\t1\n" },
      { job: JOB, stage: 1, index: 0, count: 1, lines: "e\t1\n" },
    ]);
    for (const part of splitBatch(b, 2)) expect(resultLinesProblem(part.lines, part.count)).toBeUndefined();
  });
});
