/**
 * The one RainStorm client against rainstormd's real routes (rainstormApp, in-process on
 * 127.0.0.1 with a cluster secret, a recording leader and worker behind it): every call's wire
 * and answer, refusals in the daemon's words, batches byte for byte; and against a scripted
 * server on virtual time: which failures are retried under a RetryPolicy and which are final.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ClusterHttp, HttpCallError } from "../shared/http.ts";
import { RetriesExhausted, type RetryDeps, type RetryPolicy } from "../shared/retry.ts";
import { RainstormClient, RainstormHttpError } from "./client.ts";
import { rainstormApp } from "./http.ts";
import { type Leader, LeaderError } from "./leader.ts";
import type { Batch, JobEvent, JobSummary, OutputsNotice, TaskStart, WorkerTask } from "./model.ts";
import { scaled } from "../testing/time.ts";
import { tupleLine } from "./operator_proc.ts";
import type { JobSpec } from "./plan.ts";
import type { Worker } from "./worker.ts";

const SECRET = "client-test-secret";
const JOB = "job-m1abc2de-1";
const ROUTES = { version: 2, stages: [["127.0.0.1:15000"], ["127.0.0.1:15001"]] };
const START: TaskStart = { job: JOB, stage: 1, index: 0, op: "echo", args: ["a b"], routes: ROUTES, exactlyOnce: true };
const APP_ARGS = ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "in.txt", "out.txt", "false", "false", "0", "0", "0"];
const EVENTS: JobEvent[] = [
  { event: "accepted", job: JOB, tasks: [{ stage: 0, index: 0, node: "127.0.0.1", pid: 7 }] },
  { event: "output", lines: ["k\tv", "k2\tv2"] },
  { event: "task_restarted", stage: 0, index: 0, node: "127.0.0.1", pid: 8, reason: "killed" },
  { event: "done", job: JOB, tuples_read: 2, tuples_out: 2, duration_ms: 12, tuples_per_s: 166, dest: "out.txt" },
];
const SUMMARY: JobSummary = {
  job: JOB,
  status: "running",
  stages: ["echo-wrapper"],
  tasks: [1],
  src: "in.txt",
  dest: "out.txt",
  tuples_read: 2,
  tuples_out: 2,
  tuples_per_s: 4,
};
const WORKER_TASK: WorkerTask = {
  job: JOB,
  stage: 0,
  index: 0,
  op: "echo",
  args: [],
  pid: 7,
  ratePerSec: 5,
  inputs: 10,
  outputs: 10,
  batches: 2,
  active: 0,
  waiting: 0,
  logPath: "/l.log",
  alive: true,
};

/** What reached the recording leader and worker. */
const calls: [string, unknown][] = [];
let submitted: JobSpec | undefined;

const worker = {
  startTask: (s: TaskStart) => (calls.push(["startTask", s]), { pid: 7, logPath: "/x.log" }),
  setRoutes: (job: string, routes: unknown) => void calls.push(["setRoutes", { job, routes }]),
  stopJob: async (job: string, eos: boolean) => (calls.push(["stopJob", { job, eos }]), 2),
  retireTask: async (job: string, stage: number, index: number) => (calls.push(["retireTask", { job, stage, index }]), stage === 9 ? false : 40),
  killPid: (pid: number) => (calls.push(["killPid", pid]), pid === 7 ? START : undefined),
  list: () => [WORKER_TASK],
  handleBatch: async (b: Batch) => void calls.push(["data", b]),
  flushOutputs: async (job: string) => (calls.push(["flushOutputs", job]), job === JOB),
};
const leader = {
  submit: async (spec: JobSpec, push: (ev: JobEvent) => void) => {
    submitted = spec;
    setTimeout(() => EVENTS.forEach(push), 5);
    return JOB;
  },
  listTasks: async () => [{ job: JOB, stage: 0, task: 0, node: "127.0.0.1", pid: 7, op: "echo", args: [], rate: null, restarts: 1, log: "/x.log" }],
  jobList: (): JobSummary[] => [SUMMARY],
  killJob: async (job: string) => {
    if (job !== JOB) throw new LeaderError(`job ${JSON.stringify(job)}: no such job on this leader (see ctl list_jobs)`, 404);
    return { job, status: "cancelled", tuples_read: 5, tuples_out: 3, dest: "out.txt" };
  },
  watch: (job: string, listener: (ev: JobEvent) => void) => {
    if (job !== JOB) throw new LeaderError(`job ${JSON.stringify(job)}: no such job on this leader (see ctl list_jobs)`, 404);
    setTimeout(() => EVENTS.slice(2).forEach(listener), 5);
    return { summary: SUMMARY, recent: EVENTS.slice(0, 2), stop: () => void calls.push(["watchStopped", job]) };
  },
  killTask: async (node: string, pid: number) => {
    if (pid !== 7) throw new LeaderError(`no running task with pid ${pid} on node ${node} (see list_tasks)`, 404);
    return { job: JOB, stage: 0, task: 0, node, pid };
  },
  onTaskDied: async (r: unknown) => void calls.push(["taskDied", r]),
  outputs: async (n: OutputsNotice) => {
    if (n.job !== JOB) throw new LeaderError(`outputs: job ${n.job} is not known on this leader`, 404);
    calls.push(["outputs", n]);
  },
};

let servers: ReturnType<typeof Bun.serve>[] = [];
let leaderAddr = "";
let workerAddr = "";
const rs = new RainstormClient(new ClusterHttp(SECRET));

beforeAll(() => {
  const serve = (withLeader: boolean) => {
    const app = rainstormApp({
      secret: SECRET,
      host: "127.0.0.1",
      worker: worker as unknown as Worker,
      leader: withLeader ? (leader as unknown as Leader) : undefined,
      leaderHost: "127.0.0.9",
    });
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => app.handle(req) });
    servers.push(server);
    return `127.0.0.1:${server.port}`;
  };
  leaderAddr = serve(true);
  workerAddr = serve(false);
});
afterAll(() => {
  for (const s of servers) s.stop(true);
  servers = [];
});

describe("leader API", () => {
  test("submitJob: the args arrive, the job id comes back, the events stream in order to the end", async () => {
    const job = await rs.submitJob(leaderAddr, APP_ARGS, { acceptWithinMs: scaled(5000) });
    expect(job.jobId).toBe(JOB);
    const got: JobEvent[] = [];
    for await (const ev of job.events) got.push(ev);
    expect(got).toEqual(EVENTS);
    expect(submitted?.src).toBe("in.txt");
    expect(submitted?.dest).toBe("out.txt");
  });

  test("submitJob refused: the plan's own words, the status and the body", async () => {
    const err = await rs.submitJob(leaderAddr, ["0", "1"], { totalMs: scaled(5000) }).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect(err.status).toBe(400);
    expect(err.error).toStartWith("Nstages");
    expect(err.body).toEqual({ error: err.error });
    expect(err.message).toBe(`${leaderAddr}/jobs: 400 ${err.error}`);
  });

  test("a node that is not the leader answers 421 naming the leader", async () => {
    const err = await rs.submitJob(workerAddr, APP_ARGS, { totalMs: scaled(5000) }).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect(err.status).toBe(421);
    expect(err.error).toBe("this node is not the RainStorm leader; send jobs to 127.0.0.9");
  });

  test("listTasks, jobs, killTask", async () => {
    expect(await rs.listTasks(leaderAddr)).toEqual(await leader.listTasks());
    expect(await rs.jobs(leaderAddr)).toEqual(leader.jobList());
    expect(await rs.killTask(leaderAddr, "127.0.0.1", 7)).toEqual({ job: JOB, stage: 0, task: 0, node: "127.0.0.1", pid: 7 });
    const err = await rs.killTask(leaderAddr, "127.0.0.1", 99).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect([err.status, err.error]).toEqual([404, "no running task with pid 99 on node 127.0.0.1 (see list_tasks)"]);
  });

  test("killJob: the leader's answer; an unknown job is a 404 naming it", async () => {
    expect(await rs.killJob(leaderAddr, JOB)).toEqual({ job: JOB, status: "cancelled", tuples_read: 5, tuples_out: 3, dest: "out.txt" });
    const err = await rs.killJob(leaderAddr, "job-zz-9").catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect([err.status, err.error]).toEqual([404, 'job "job-zz-9": no such job on this leader (see ctl list_jobs)']);
    const empty = await rs.killJob(leaderAddr, "").catch((e) => e);
    expect(empty.status).toBe(400);
  });

  test("watchJob: watching (summary, how many replayed), the recent past, then the live events until the end; the leader's listener is let go", async () => {
    calls.length = 0;
    const w = await rs.watchJob(leaderAddr, JOB, { acceptWithinMs: scaled(5000) });
    const got: JobEvent[] = [];
    for await (const ev of w.events) got.push(ev);
    expect(got).toEqual([{ event: "watching", summary: SUMMARY, replayed: 2 }, ...EVENTS]);
    expect(calls).toEqual([["watchStopped", JOB]]);
    const err = await rs.watchJob(leaderAddr, "job-zz-9", { totalMs: scaled(5000) }).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect([err.status, err.error]).toEqual([404, 'job "job-zz-9": no such job on this leader (see ctl list_jobs)']);
  });

  test("reportTaskDied", async () => {
    calls.length = 0;
    const death = { job: JOB, stage: 0, index: 1, pid: 7, reason: "operator exited with code 1" };
    await rs.reportTaskDied(leaderAddr, death);
    expect(calls).toEqual([["taskDied", death]]);
  });

  test("an unsigned client is refused (401): every call above was signed", async () => {
    const err = await new RainstormClient(new ClusterHttp("")).listTasks(leaderAddr).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect(err.status).toBe(401);
  });
});

describe("worker API", () => {
  test("start, routes, stop, retire, kill, tasks: each arrives as sent and answers", async () => {
    calls.length = 0;
    expect(await rs.startTask(workerAddr, START)).toEqual({ pid: 7, logPath: "/x.log" });
    await rs.setRoutes(workerAddr, JOB, ROUTES);
    expect(await rs.stopJob(workerAddr, JOB, true)).toBe(2);
    expect(await rs.retireTask(workerAddr, JOB, 1, 0)).toEqual({ retired: true, inputs: 40 });
    expect(await rs.killPid(workerAddr, 7)).toEqual({ killed: 7, job: JOB, stage: 1, index: 0 });
    expect(await rs.workerTasks(workerAddr)).toEqual([WORKER_TASK]);
    expect(calls).toEqual([
      ["startTask", START],
      ["setRoutes", { job: JOB, routes: ROUTES }],
      ["stopJob", { job: JOB, eos: true }],
      ["retireTask", { job: JOB, stage: 1, index: 0 }],
      ["killPid", 7],
    ]);
  });

  test("refusals carry the worker's words", async () => {
    const retire = await rs.retireTask(workerAddr, JOB, 9, 0).catch((e) => e);
    expect([retire.status, retire.error]).toEqual([404, `task ${JOB}/9/0 is not running on this worker`]);
    const kill = await rs.killPid(workerAddr, 8).catch((e) => e);
    expect([kill.status, kill.error]).toEqual([404, "pid 8 is not an operator process of this worker"]);
  });

  test("sendBatch: a task batch to /data arrives as sent; an output notice to /outputs, checked, as sent", async () => {
    calls.length = 0;
    const data: Batch = { job: JOB, stage: 0, index: 0, count: 2, lines: tupleLine("s:1", "k", "v") + tupleLine("s:2", "k", "w") };
    const notice: OutputsNotice = { job: JOB, stage: 1, index: 0, from: "s1t0", seq: 3, total: 7, lines: ["k\tv"] };
    await rs.sendBatch(workerAddr, data, scaled(5000));
    await rs.sendOutputs(leaderAddr, notice);
    expect(calls).toEqual([
      ["data", data],
      ["outputs", notice],
    ]);
    const bad = await rs.sendOutputs(leaderAddr, { ...notice, lines: ["no tab"] }).catch((e) => e);
    expect([bad.status, bad.error]).toEqual([400, 'lines: line 1: expected a result line key<TAB>value, got "no tab"']);
    const unknown = await rs.sendOutputs(leaderAddr, { ...notice, job: "job-other-1" }).catch((e) => e);
    expect([unknown.status, unknown.error]).toEqual([404, "outputs: job job-other-1 is not known on this leader"]);
    const notLeader = await rs.sendOutputs(workerAddr, notice).catch((e) => e);
    expect(notLeader.status).toBe(421);
  });

  test("flushOutputs: the worker's answer", async () => {
    calls.length = 0;
    expect(await rs.flushOutputs(workerAddr, JOB)).toBe(true);
    expect(await rs.flushOutputs(workerAddr, "job-other-1")).toBe(false);
    expect(calls).toEqual([
      ["flushOutputs", JOB],
      ["flushOutputs", "job-other-1"],
    ]);
  });

  test("sendBatch refused: the receiver's check, in its words", async () => {
    const err = await rs.sendBatch(workerAddr, { job: JOB, stage: 0, index: 0, count: 3, lines: tupleLine("s:1", "k", "v") }, scaled(5000)).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect([err.status, err.error]).toEqual([400, "batch: count is 3 but lines holds 1 lines"]);
  });
});

/** A server answering from a script (one entry per request; the last repeats), recording each request. */
function scripted(answers: (number | "hang")[]) {
  const seen: { method: string; path: string; body: Uint8Array }[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      seen.push({ method: req.method, path: new URL(req.url).pathname, body: new Uint8Array(await req.arrayBuffer()) });
      const a = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      if (a === "hang") return new Promise<Response>(() => {});
      return a === 200 ? Response.json({ tasks: [], ok: true, stopped: 0 }) : Response.json({ error: `scripted ${a}` }, { status: a });
    },
  });
  servers.push(server);
  return { addr: `127.0.0.1:${server.port}`, seen };
}

/** Virtual time: sleeps advance the clock at once and are recorded. */
function virtualTime(): RetryDeps & { pauses: number[] } {
  let now = 0;
  const pauses: number[] = [];
  return {
    pauses,
    nowMs: () => now,
    sleep: async (ms) => {
      pauses.push(ms);
      now += ms;
    },
  };
}

const POLICY: RetryPolicy = { deadlineMs: 10_000, maxAttempts: 4, firstBackoffMs: 100, maxBackoffMs: 250 };

describe("retries: only under a policy, only 5xx and network failures", () => {
  test("503, 503, then 200: three attempts, the policy's pauses", async () => {
    const s = scripted([503, 503, 200]);
    const time = virtualTime();
    expect(await new RainstormClient(new ClusterHttp(""), time).listTasks(s.addr, { retry: POLICY })).toEqual([]);
    expect(s.seen.length).toBe(3);
    expect(time.pauses).toEqual([100, 200]);
  });

  test("a 4xx is final at once, even under a policy", async () => {
    const s = scripted([404]);
    const time = virtualTime();
    const err = await new RainstormClient(new ClusterHttp(""), time).stopJob(s.addr, JOB, false, { retry: POLICY }).catch((e) => e);
    expect(err).toBeInstanceOf(RainstormHttpError);
    expect([err.status, err.error]).toEqual([404, "scripted 404"]);
    expect(s.seen.length).toBe(1);
  });

  test("without a policy a 503 is not repeated", async () => {
    const s = scripted([503, 200]);
    const err = await new RainstormClient(new ClusterHttp(""), virtualTime()).listTasks(s.addr).catch((e) => e);
    expect([err.status, s.seen.length]).toEqual([503, 1]);
  });

  test("always 503: RetriesExhausted after maxAttempts, with the last status and words", async () => {
    const s = scripted([503]);
    const time = virtualTime();
    const err = await new RainstormClient(new ClusterHttp(""), time).setRoutes(s.addr, JOB, ROUTES, { retry: POLICY }).catch((e) => e);
    expect(err).toBeInstanceOf(RetriesExhausted);
    expect([err.attempts, err.status, err.last]).toEqual([4, 503, "503 scripted 503"]);
    expect(time.pauses).toEqual([100, 200, 250]);
    expect(s.seen.map((r) => `${r.method} ${r.path}`)).toEqual(Array(4).fill("POST /worker/routes"));
  });

  test("a refused connection is retried too", async () => {
    const gone = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const addr = `127.0.0.1:${gone.port}`;
    gone.stop(true);
    const err = await new RainstormClient(new ClusterHttp(""), virtualTime()).workerTasks(addr, { retry: { ...POLICY, maxAttempts: 2 } }).catch((e) => e);
    expect(err).toBeInstanceOf(RetriesExhausted);
    expect(err.attempts).toBe(2);
    expect(err.status).toBeUndefined();
  });

  test("submitJob is never retried; the leader must start answering within acceptWithinMs", async () => {
    const s = scripted(["hang"]);
    const err = await rs.submitJob(s.addr, APP_ARGS, { acceptWithinMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(HttpCallError);
    expect(err.why).toBe("no answer within 100 ms");
    expect(s.seen.length).toBe(1);
  });
});

describe("batches on the wire", () => {
  /** msgpack by hand: a fixmap of fixstr keys, small ints, bin8 for the lines (UTF-8 bytes). */
  function handEncoded(b: { job: string; stage: number; index: number; count: number; lines: string }): Uint8Array {
    const str = (s: string) => {
      const bytes = new TextEncoder().encode(s);
      return bytes.length < 32 ? [0xa0 | bytes.length, ...bytes] : [0xd9, bytes.length, ...bytes];
    };
    const bin = (s: string) => {
      const bytes = new TextEncoder().encode(s);
      return [0xc4, bytes.length, ...bytes];
    };
    return new Uint8Array([
      0x85,
      ...str("job"),
      ...str(b.job),
      ...str("stage"),
      b.stage,
      ...str("index"),
      b.index,
      ...str("count"),
      b.count,
      ...str("lines"),
      ...bin(b.lines),
    ]);
  }

  test("sendBatch writes the msgpack map job, stage, index, count, lines (as UTF-8 bytes) in that order", async () => {
    const s = scripted([200]);
    const batch = { job: JOB, stage: 1, index: 2, count: 1, lines: tupleLine("s:1", "k", "v") };
    await rs.sendBatch(s.addr, batch, scaled(5000));
    expect(s.seen[0]!.path).toBe("/data");
    expect(s.seen[0]!.body).toEqual(handEncoded(batch));
  });
});
