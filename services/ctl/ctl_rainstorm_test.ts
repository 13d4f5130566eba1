/**
 * ctl's RainStorm commands end to end against rainstormd's real routes (rainstormApp with a
 * scripted leader, signed, on 127.0.0.1 and 127.0.0.2 of one port): `rainstorm` streams results
 * to stdout and events to stderr (or every event as JSON), exits 0 only after done; list_tasks
 * and kill_task print their table and lines; refusals and unreachable daemons read as they
 * always have; a node that is not the leader (421) is followed to the one it names. The exact
 * bytes are asserted: scripts and people parse them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { rainstormApp } from "../rainstorm/http.ts";
import { type Leader, LeaderError } from "../rainstorm/leader.ts";
import type { JobEvent, ListedTask } from "../rainstorm/model.ts";
import type { JobSpec } from "../rainstorm/plan.ts";
import type { Worker } from "../rainstorm/worker.ts";
import { tempPath } from "../testing/cluster.ts";
import { scaled } from "../testing/time.ts";

const CTL = resolve(import.meta.dir, "../ctl.ts");
const SECRET = "ctl-rainstorm-test-secret";
const JOB = "job-m1abc2de-1";
const LEADER = "127.0.0.2";
const dir = tempPath("ctl-rainstorm-");
mkdirSync(dir, { recursive: true });

/** The job's events, by dest: out.txt succeeds, fail.txt fails after its first event. */
function eventsFor(spec: JobSpec): JobEvent[] {
  const accepted: JobEvent = {
    event: "accepted",
    job: JOB,
    tasks: [
      { stage: 0, index: 0, node: "127.0.0.1", pid: 7 },
      { stage: 0, index: 1, node: LEADER, pid: 9 },
      { stage: 1, index: 0, node: "127.0.0.1", pid: 11 },
    ],
  };
  if (spec.dest === "fail.txt") return [accepted, { event: "failed", job: JOB, error: "source: reading in.txt: 404 no such file" }];
  if (spec.dest === "cancel.txt")
    return [accepted, { event: "output", lines: ["k\tv"] }, { event: "cancelled", job: JOB, tuples_read: 4, tuples_out: 1, dest: "cancel.txt" }];
  return [
    accepted,
    { event: "output", lines: ["k\tv", "k2\tv2"] },
    { event: "task_restarted", stage: 0, index: 1, node: LEADER, pid: 12, reason: "operator exited with code 137" },
    { event: "scaled", stage: 0, from: 2, to: 3, avg_rate_per_task: 500, reason: "average 500 tuples/s per task above HW 300" },
    { event: "output", lines: ["k3\tv3"] },
    { event: "done", job: JOB, tuples_read: 3, tuples_out: 3, duration_ms: 1234, tuples_per_s: 2, dest: "out.txt" },
  ];
}

const TASKS: ListedTask[] = [
  { job: JOB, stage: 0, task: 0, node: "127.0.0.1", pid: 7, op: "grep-wrapper", args: ["Sign Post", "4"], rate: 120, restarts: 0, log: "/var/log/a.log" },
  { job: JOB, stage: 1, task: 0, node: LEADER, pid: 11, op: "aggregate-wrapper", args: [], rate: null, restarts: 2, log: "/var/log/b.log" },
];

/** Submissions of `busy.txt` the leader refuses with 503 before it takes one (a view not yet current); `never.txt` is always refused. */
const BUSY_REFUSALS = 2;
let busySeen = 0;
const NOT_READY = "this node's membership view is not current yet; retry";

const leader = {
  submit: async (spec: JobSpec, push: (ev: JobEvent) => void) => {
    if (spec.dest === "never.txt" || (spec.dest === "busy.txt" && busySeen++ < BUSY_REFUSALS)) throw new LeaderError(NOT_READY, 503);
    setTimeout(() => eventsFor(spec).forEach(push), 5);
    return JOB;
  },
  listTasks: async () => TASKS,
  killTask: async (node: string, pid: number) => {
    if (pid !== 7) throw new LeaderError(`no running task with pid ${pid} on node ${node} (see list_tasks)`, 404);
    return { job: JOB, stage: 0, task: 0, node, pid };
  },
};

const servers: ReturnType<typeof Bun.serve>[] = [];
let port = 0;
let config = "";

beforeAll(() => {
  // One port on both addresses: ctl talks to every node's rainstormd on ports.rainstorm.
  const probe = Bun.serve({ hostname: LEADER, port: 0, fetch: () => new Response("") });
  port = probe.port!;
  probe.stop(true);
  for (const host of ["127.0.0.1", LEADER]) {
    const app = rainstormApp({
      secret: SECRET,
      host,
      worker: {} as Worker,
      leader: host === LEADER ? (leader as unknown as Leader) : undefined,
      leaderHost: LEADER,
    });
    servers.push(Bun.serve({ hostname: host, port, fetch: (req) => app.handle(req) }));
  }
  config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ cluster_secret: SECRET, ports: { rainstorm: port } }));
});
afterAll(() => {
  for (const s of servers) s.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

/** ctl with `args`, asking node 127.0.0.1 (not the leader) with the test's config. */
async function ctl(args: string[], node = "127.0.0.1"): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, CTL, ...args, "--node", node, "--config", config], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, HOME: join(dir, "home"), RAINSTORM_CONFIG: "", RAINSTORM_SECRET: "" },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(20_000));
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out, err };
}

const APP = (dest: string) => [
  "rainstorm",
  "2",
  "2",
  "-stage-config-map",
  "stage0 grep-wrapper x 0 stage1 aggregate-wrapper",
  "in.txt",
  dest,
  "false",
  "false",
  "0",
  "0",
  "0",
];

describe("ctl rainstorm", () => {
  test("results to stdout, events to stderr, exit 0 after done (the 421 of node 01 followed to the leader)", async () => {
    const r = await ctl(APP("out.txt"));
    expect(r).toEqual({
      code: 0,
      out: "k\tv\nk2\tv2\nk3\tv3\n",
      err: [
        `job ${JOB} accepted: 3 tasks on 127.0.0.1, ${LEADER}`,
        `task stage0[1] restarted on ${LEADER} as pid 12 (operator exited with code 137)`,
        "autoscale: stage0: average 500 tuples/s per task above HW 300",
        `job ${JOB} done: 3 tuples read, 3 out, 1.2 s, 2 tuples/s; results in HyDFS out.txt`,
        "",
      ].join("\n"),
    });
  });

  test("--json: every event as one JSON line, as the leader sent it", async () => {
    const r = await ctl([...APP("out.txt"), "--json"]);
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toBe(
      eventsFor({ dest: "out.txt" } as JobSpec)
        .map((ev) => `${JSON.stringify(ev)}\n`)
        .join(""),
    );
  });

  test("a failed job: its error on stderr, exit 1", async () => {
    const r = await ctl(APP("fail.txt"));
    expect(r).toEqual({
      code: 1,
      out: "",
      err: `job ${JOB} accepted: 3 tasks on 127.0.0.1, ${LEADER}\nerror: job ${JOB} failed: source: reading in.txt: 404 no such file\n`,
    });
  });

  test("a job cancelled by kill_job: its results so far, then a line that says so and that dest is kept; exit 1", async () => {
    const r = await ctl(APP("cancel.txt"));
    expect(r).toEqual({
      code: 1,
      out: "k\tv\n",
      err: `job ${JOB} accepted: 3 tasks on 127.0.0.1, ${LEADER}\nerror: job ${JOB} cancelled by kill_job after 4 tuples read, 1 out; HyDFS cancel.txt keeps the 1 results written before (not removed)\n`,
    });
  });

  test("a leader that is not ready (503) is asked again, saying so; the job then runs", async () => {
    busySeen = 0;
    const r = await ctl([...APP("busy.txt"), "--timeout", "5000"]);
    expect(r.code).toBe(0);
    expect(busySeen).toBe(BUSY_REFUSALS + 1);
    const lines = r.err.split("\n");
    expect(lines.slice(0, BUSY_REFUSALS)).toEqual(Array(BUSY_REFUSALS).fill(`retrying: ${NOT_READY} (HTTP 503)`));
    expect(lines[BUSY_REFUSALS]).toBe(`job ${JOB} accepted: 3 tasks on 127.0.0.1, ${LEADER}`);
    expect(r.out).toBe("k\tv\nk2\tv2\nk3\tv3\n");
  });

  test("a leader that stays not ready: retries end with --timeout, then its words and the status", async () => {
    const t0 = performance.now();
    const r = await ctl([...APP("never.txt"), "--timeout", "1000"]);
    expect(r.code).toBe(1);
    expect(r.err.split("\n").filter((l) => l.startsWith("retrying: ")).length).toBeGreaterThan(0);
    expect(r.err).toEndWith(`error: ${NOT_READY} (HTTP 503)\n`);
    expect(performance.now() - t0).toBeLessThan(scaled(10_000));
  });

  test("a refused job: the leader's words and the status", async () => {
    const r = await ctl(["rainstorm", "0", "1", "-stage-config-map", "stage0 echo", "a", "b", "false", "false", "0", "0", "0"]);
    expect(r.code).toBe(1);
    expect(r.err).toStartWith("error: Nstages");
    expect(r.err).toEndWith(" (HTTP 400)\n");
  });

  test("no rainstormd at the node: unreachable, naming it", async () => {
    const r = await ctl(APP("out.txt"), "127.0.0.3");
    expect(r.code).toBe(1);
    expect(r.err).toStartWith(`error: RainStorm leader at 127.0.0.3:${port} unreachable: `);
  });
});

describe("ctl list_tasks and kill_task", () => {
  test("list_tasks: the table; --json: the leader's answer", async () => {
    const r = await ctl(["list_tasks"]);
    expect(r).toEqual({
      code: 0,
      err: "",
      out: [
        "JOB             STAGE  TASK  NODE       PID  OP                 ARGS         TUPLES/S  RESTARTS  LOG",
        `${JOB}  0      0     127.0.0.1  7    grep-wrapper       Sign Post 4  120       0         /var/log/a.log`,
        `${JOB}  1      0     ${LEADER}  11   aggregate-wrapper               ?         2         /var/log/b.log`,
        "",
      ].join("\n"),
    });
    expect(await ctl(["list_tasks", "--json"])).toEqual({ code: 0, err: "", out: `${JSON.stringify({ tasks: TASKS }, null, 2)}\n` });
  });

  test("kill_task: the task killed; an unknown pid in the leader's words; no daemon: unreachable", async () => {
    expect(await ctl(["kill_task", "127.0.0.1", "7"])).toEqual({
      code: 0,
      err: "",
      out: `killed pid 7 on 127.0.0.1 (job ${JOB} stage0[0]); the leader restarts it\n`,
    });
    expect(await ctl(["kill_task", "127.0.0.1", "99"])).toEqual({
      code: 1,
      out: "",
      err: `error: ${LEADER}: no running task with pid 99 on node 127.0.0.1 (see list_tasks) (HTTP 404)\n`,
    });
    const gone = await ctl(["kill_task", "127.0.0.1", "7"], "127.0.0.3");
    expect(gone.code).toBe(1);
    expect(gone.err).toStartWith(`error: rainstormd at 127.0.0.3:${port} unreachable: `);
  });
});
