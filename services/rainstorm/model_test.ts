/**
 * rainstormd's routes validate their JSON bodies with the schemas of model.ts: a bad body is a
 * 400 naming the field and never reaches the leader or the worker; a good one reaches them as it
 * was sent. In-process (app.handle), no sockets.
 */
import { describe, expect, test } from "bun:test";
import { rainstormApp } from "./http.ts";
import type { Leader } from "./leader.ts";
import type { TaskStart } from "./model.ts";
import type { Worker } from "./worker.ts";

const JOB = "job-m1abc2de-1";
const ROUTES = { version: 1, stages: [["127.0.0.1:15000"]] };
const START: TaskStart = { job: JOB, stage: 0, index: 0, op: "echo", args: [], routes: ROUTES };

/** A leader and a worker that record every call that reaches them. */
function recordingApp() {
  const calls: [string, unknown[]][] = [];
  const record =
    (name: string, answer: unknown = { ok: true }) =>
    (...args: unknown[]) => {
      calls.push([name, args]);
      return answer;
    };
  const worker = {
    startTask: record("startTask", { pid: 7, logPath: "/x.log" }),
    setRoutes: record("setRoutes"),
    stopJob: record("stopJob", 1),
    retireTask: record("retireTask", 3),
    killPid: record("killPid", START),
    list: record("list", []),
  };
  const leader = {
    killTask: record("killTask", { job: JOB, stage: 0, task: 0, node: "127.0.0.1", pid: 7 }),
    onTaskDied: record("onTaskDied", Promise.resolve()),
    listTasks: record("listTasks", []),
    jobList: record("jobList", []),
    killJob: record("killJob", { job: JOB, status: "cancelled", tuples_read: 4, tuples_out: 2, dest: "out.txt" }),
  };
  const app = rainstormApp({
    secret: "",
    host: "127.0.0.1",
    worker: worker as unknown as Worker,
    leader: leader as unknown as Leader,
    leaderHost: "127.0.0.1",
  });
  const post = async (path: string, body: unknown) => {
    const res = await app.handle(
      new Request(`http://127.0.0.1${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    );
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { calls, post };
}

describe("a bad body is a 400 naming the field; nothing reaches the leader or the worker", () => {
  /** [route, body, the error's start] */
  const BAD: [string, unknown, string][] = [
    ["/jobs", { args: "2 1 echo" }, "args: Expected array"],
    ["/jobs", {}, "args: Expected array"],
    ["/jobs", { args: Array(201).fill("x") }, "args: Expected array length to be less or equal to 200"],
    ["/jobs", { args: [1] }, "args.0: "],
    ["/kill_task", { node: "127.0.0.1", pid: 0 }, "pid: "],
    ["/kill_task", { node: 1, pid: 3 }, "node: Expected property 'node' to be string"],
    ["/kill_job", {}, "job: "],
    ["/kill_job", { job: "" }, "job: "],
    ["/kill_job", { job: 7 }, "job: "],
    ["/leader/task_died", { job: JOB, stage: 0, index: 0, pid: 1 }, "reason: "],
    ["/worker/start", { ...START, stage: -1 }, "stage: "],
    ["/worker/start", { ...START, args: "x" }, "args: Expected array"],
    ["/worker/start", { ...START, routes: { ...ROUTES, version: 1.5 } }, "routes.version: "],
    ["/worker/start", { ...START, routes: { version: 1 } }, "routes.stages: "],
    ["/worker/start", { ...START, dest: 7 }, "dest: "],
    ["/outputs", { job: JOB, stage: 0, index: 0, from: "s0t0", seq: 0, total: 0, lines: [] }, "seq: "],
    ["/outputs", { job: JOB, stage: 0, index: 0, from: "s0t0", seq: 1, total: 0, lines: [1] }, "lines.0: "],
    ["/worker/flush_outputs", {}, "job: "],
    ["/worker/start", { ...START, exactlyOnce: "yes" }, "exactlyOnce: Expected boolean"],
    ["/worker/start", "not json", "body: expected a JSON object"],
    ["/worker/routes", { job: JOB }, "routes: Property 'routes' is missing"],
    ["/worker/stop_job", { job: JOB, end_of_stream: "yes" }, "end_of_stream: Expected boolean"],
    ["/worker/retire", { job: JOB, stage: 0, index: 1.5 }, "index: "],
    ["/worker/kill", { pid: -3 }, "pid: "],
  ];
  test.each(BAD)("%s %j", async (path, body, error) => {
    const { calls, post } = recordingApp();
    const res = await post(path, body);
    expect(res.status).toBe(400);
    expect(String(res.body.error)).toStartWith(error);
    expect(calls).toEqual([]);
  });
});

describe("a good body reaches the leader or the worker as it was sent", () => {
  const GOOD: [string, unknown, string, unknown[], unknown][] = [
    ["/worker/start", START, "startTask", [START], { pid: 7, logPath: "/x.log" }],
    ["/worker/start", { ...START, exactlyOnce: true }, "startTask", [{ ...START, exactlyOnce: true }], { pid: 7, logPath: "/x.log" }],
    ["/worker/routes", { job: JOB, routes: ROUTES }, "setRoutes", [JOB, ROUTES], { ok: true }],
    ["/worker/stop_job", { job: JOB }, "stopJob", [JOB, false], { stopped: 1 }],
    ["/worker/stop_job", { job: JOB, end_of_stream: true }, "stopJob", [JOB, true], { stopped: 1 }],
    ["/worker/retire", { job: JOB, stage: 1, index: 2 }, "retireTask", [JOB, 1, 2], { retired: true, inputs: 3 }],
    ["/worker/kill", { pid: 7 }, "killPid", [7], { killed: 7, job: JOB, stage: 0, index: 0 }],
    ["/kill_task", { node: "127.0.0.1", pid: 7 }, "killTask", ["127.0.0.1", 7], { job: JOB, stage: 0, task: 0, node: "127.0.0.1", pid: 7 }],
    ["/kill_job", { job: JOB }, "killJob", [JOB], { job: JOB, status: "cancelled", tuples_read: 4, tuples_out: 2, dest: "out.txt" }],
    [
      "/leader/task_died",
      { job: JOB, stage: 0, index: 1, pid: 7, reason: "exit 1" },
      "onTaskDied",
      [{ job: JOB, stage: 0, index: 1, pid: 7, reason: "exit 1" }],
      { ok: true },
    ],
  ];
  test.each(GOOD)("%s %j", async (path, body, method, args, answer) => {
    const { calls, post } = recordingApp();
    const res = await post(path, body);
    expect(res).toEqual({ status: 200, body: answer as Record<string, unknown> });
    expect(calls).toEqual([[method, args]]);
  });
});
