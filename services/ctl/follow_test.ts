/**
 * ctl follows a job across a leader failover, against fake nodes (a rainstormd and a memberd
 * each, Bun.serve on testNet(161), loopback only) scripted per test: node 1 leads, accepts the
 * job and streams part of it, then dies (its servers stop, cutting the stream); the others name
 * no leader for a while, then node 2 with a higher term, whose GET /jobs/:job/events answers 503
 * and 404 (rebuilding) before it replays the job's recent events and goes on. ctl runs in this
 * process (runRainstorm, atLeader) with its output captured: every result line is printed
 * exactly once and it exits 0; with no leader before the deadline it exits 1 saying what it
 * asked; a 421 sends it to the leader.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JobEvent, JobSummary } from "../rainstorm/model.ts";
import { tempPath, waitFor } from "../testing/cluster.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";
import { makeCtx } from "./context.ts";
import { type FollowIo, supersedes } from "./follow.ts";
import { atLeader, NoLeaderFound } from "./leader.ts";
import { newJobId, runRainstorm } from "./rainstorm.ts";
import { client, leaderQuery } from "./rainstormd.ts";

const NET = testNet(161);
const HOSTS = [1, 2, 3].map((k) => `${NET}.${k}`);
const JOB = "job-m1abc2de-7";
const SECRET = "ctl-follow-test-secret";

type LeaderAnswer = { leader: string | null; term: number; self: boolean };

/** One fake node: what its rainstormd answers, settable per test. */
interface FakeNode {
  host: string;
  /** GET /leader's answer (a promise: to answer late). */
  leader: () => LeaderAnswer | Promise<LeaderAnswer>;
  /** Any other rainstormd route. */
  route: (req: Request, path: string) => Response | Promise<Response>;
  /** Its servers, stopped to kill the node. */
  servers: ReturnType<typeof Bun.serve>[];
}

const dir = tempPath("ctl-follow-");
let nodes: FakeNode[] = [];
let ports = { rainstorm: 0, http: 0 };

const ndjson = (events: JobEvent[]) => events.map((ev) => `${JSON.stringify(ev)}\n`).join("");
const refusal = (status: number, error: string) => Response.json({ error }, { status });
const notLeader = (to: string) => refusal(421, `this node is not the RainStorm leader; send jobs to ${to}`);

/** A free port on the first host, bound on every host after (ctl reaches every node on the same ports). */
function freePort(): number {
  const probe = Bun.serve({ hostname: HOSTS[0], port: 0, fetch: () => new Response("") });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** Start the fake nodes (every one: no leader, every route 404) and a config naming them. */
function startNodes(): string {
  ports = { rainstorm: freePort(), http: freePort() };
  nodes = HOSTS.map((host) => ({ host, leader: () => ({ leader: null, term: 0, self: false }), route: () => refusal(404, "not scripted"), servers: [] }));
  for (const node of nodes) {
    node.servers.push(
      Bun.serve({
        hostname: node.host,
        port: ports.rainstorm,
        fetch: async (req) => {
          const path = new URL(req.url).pathname;
          return path === "/leader" ? Response.json(await node.leader()) : node.route(req, path);
        },
      }),
      Bun.serve({
        hostname: node.host,
        port: ports.http,
        fetch: (req) => {
          const path = new URL(req.url).pathname;
          if (path === "/health") return Response.json({ ok: true });
          if (path === "/list_mem") return Response.json({ members: HOSTS.map((h, i) => ({ id: `${h}:6000@${i + 1}`, state: "alive" })) });
          return refusal(404, "not scripted");
        },
      }),
    );
  }
  mkdirSync(dir, { recursive: true });
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ nodes: HOSTS, cluster_secret: SECRET, ports }));
  return config;
}

afterEach(() => {
  for (const node of nodes) for (const s of node.servers) s.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

/** Kill a fake node: its servers stop, cutting every connection (a SIGKILL as ctl sees it). */
function kill(node: FakeNode): void {
  for (const s of node.servers) s.stop(true);
}

/** What ctl printed. */
function capture(): FollowIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (line) => stdout.push(line), err: (line) => stderr.push(line) };
}

/** A response that sends `events` and stays open (the job goes on) until the node dies. */
function openStream(events: JobEvent[], headers: Record<string, string> = {}): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(ndjson(events)));
    },
  });
  return new Response(body, { headers: { "content-type": "application/x-ndjson", ...headers } });
}

const rs = (host: string) => `${host}:${ports.rainstorm}`;
const out = (from: string, seq: number, lines: string[]) => ({ event: "output", lines, from, seq }) as unknown as JobEvent;
const ACCEPTED: JobEvent = { event: "accepted", job: JOB, tasks: [{ stage: 0, index: 0, node: HOSTS[1]!, pid: 7 }] };
const RESTARTED: JobEvent = { event: "task_restarted", stage: 0, index: 0, node: HOSTS[2]!, pid: 8, reason: "operator exited with code 137" };
const DONE: JobEvent = { event: "done", job: JOB, tuples_read: 5, tuples_out: 5, duration_ms: 2000, tuples_per_s: 2, dest: "out.txt" };
const SUMMARY: JobSummary = {
  job: JOB,
  status: "running",
  stages: ["op"],
  tasks: [1],
  src: "in.txt",
  dest: "out.txt",
  tuples_read: 3,
  tuples_out: 3,
  tuples_per_s: 1,
};
const APP = ["2", "1", "-stage-config-map", "stage0 op stage1 op", "in.txt", "out.txt", "true", "false", "0", "0", "0"];

/** Node 1 leads (term 1), takes the job and streams its start; the test kills it once ctl has printed `c`. */
function node1LeadsAndStreams(): void {
  const [n1] = nodes;
  for (const n of nodes) n.leader = () => ({ leader: rs(n1!.host), term: 1, self: n === n1 });
  n1!.route = (req, path) =>
    req.method === "POST" && path === "/jobs"
      ? openStream([ACCEPTED, out("s0t0", 1, ["a", "b"]), RESTARTED, out("s0t0", 2, ["c"])], { "x-job-id": JOB })
      : refusal(404, "not scripted");
}

describe("ctl follows a job across a leader failover", () => {
  test("stream cut mid-job; the new leader answers 503, then 404, then replays: each result line once, each event once, exit 0", async () => {
    const config = startNodes();
    node1LeadsAndStreams();
    const [n1, n2, n3] = nodes as [FakeNode, FakeNode, FakeNode];
    const io = capture();
    const running = runRainstorm([...APP, "--config", config, "--timeout", "2000"], { io, failoverTimeoutMs: scaled(20_000) });
    await waitFor(() => io.stdout.includes("c"), scaled(5000), "ctl printing the first results");

    // Node 1 dies. The others know no leader for a few rounds, then node 2 leads with term 2.
    let asked = 0;
    const afterFailover = () => (++asked <= 4 ? { leader: null, term: 1, self: false } : { leader: rs(n2.host), term: 2, self: false });
    n2.leader = afterFailover;
    n3.leader = afterFailover;
    const watches: number[] = [];
    n2.route = (req, path) => {
      if (path !== `/jobs/${JOB}/events`) return notLeader(n2.host);
      watches.push(watches.length);
      if (watches.length === 1) return refusal(503, "rebuilding the jobs of the previous leader; retry");
      if (watches.length === 2) return refusal(404, `job "${JOB}": no such job on this leader (see ctl list_jobs)`);
      // The replay repeats what ctl printed (batches 1 and 2, the restart), then goes on.
      return new Response(
        ndjson([
          { event: "watching", summary: SUMMARY, replayed: 4 },
          ACCEPTED,
          out("s0t0", 1, ["a", "b"]),
          RESTARTED,
          out("s0t0", 2, ["c"]),
          out("s0t0", 3, ["d"]),
          out("s1t0", 1, ["e"]),
          DONE,
        ]),
      );
    };
    kill(n1);

    expect(await running).toBe(0);
    expect(io.stdout).toEqual(["a\nb", "c", "d", "e"]);
    expect(io.stderr).toEqual([
      `job ${JOB} accepted: 1 tasks on ${HOSTS[1]}`,
      `task stage0[0] restarted on ${HOSTS[2]} as pid 8 (operator exited with code 137)`,
      `leader ${rs(n1.host)} lost; following job ${JOB} on ${rs(n2.host)} (term 2)`,
      `job ${JOB} done: 5 tuples read, 5 out, 2.0 s, 2 tuples/s; results in HyDFS out.txt`,
    ]);
    expect(watches.length).toBe(3);
  });

  test("--json: the same, each event printed once as the leader sent it", async () => {
    const config = startNodes();
    node1LeadsAndStreams();
    const [n1, n2] = nodes as [FakeNode, FakeNode];
    const io = capture();
    const running = runRainstorm([...APP, "--config", config, "--timeout", "2000", "--json"], { io, failoverTimeoutMs: scaled(20_000) });
    await waitFor(() => io.stdout.length === 4, scaled(5000), "ctl printing the first events");
    for (const n of nodes) n.leader = () => ({ leader: rs(n2.host), term: 2, self: n === n2 });
    n2.route = () =>
      new Response(ndjson([{ event: "watching", summary: SUMMARY, replayed: 2 }, RESTARTED, out("s0t0", 2, ["c"]), out("s0t0", 3, ["d"]), DONE]));
    kill(n1);
    expect(await running).toBe(0);
    expect(io.stdout.map((l) => JSON.parse(l))).toEqual([ACCEPTED, out("s0t0", 1, ["a", "b"]), RESTARTED, out("s0t0", 2, ["c"]), out("s0t0", 3, ["d"]), DONE]);
    expect(io.stderr).toEqual([`leader ${rs(n1.host)} lost; following job ${JOB} on ${rs(n2.host)} (term 2)`]);
  });

  test("no leader within the failover deadline: exit 1, naming the lost leader and every node asked", async () => {
    const config = startNodes();
    node1LeadsAndStreams();
    const [n1, n2, n3] = nodes as [FakeNode, FakeNode, FakeNode];
    const io = capture();
    const failoverTimeoutMs = 1500;
    const running = runRainstorm([...APP, "--config", config, "--timeout", "2000"], { io, failoverTimeoutMs });
    await waitFor(() => io.stdout.includes("c"), scaled(5000), "ctl printing the first results");
    n2.leader = () => ({ leader: null, term: 1, self: false });
    n3.leader = () => ({ leader: null, term: 1, self: false });
    const t0 = performance.now();
    kill(n1);
    expect(await running).toBe(1);
    const tookMs = performance.now() - t0;
    expect(tookMs).toBeGreaterThanOrEqual(failoverTimeoutMs);
    expect(tookMs).toBeLessThan(failoverTimeoutMs + scaled(3000));
    const error = io.stderr.at(-1)!;
    expect(error).toStartWith(`error: job ${JOB}: leader ${rs(n1.host)} lost (`);
    expect(error).toContain(`and no leader took the job within 1.5 s; last: no RainStorm leader found: asked GET /leader of ${HOSTS.join(", ")}; `);
    expect(error).toContain(`rainstormd at ${rs(n1.host)} unreachable: `);
    expect(error).toEndWith(`${n2.host}: no leader (term 1); ${n3.host}: no leader (term 1)`);
    expect(io.stdout).toEqual(["a\nb", "c"]);
  });
});

describe("a leader lost before it answered the submission", () => {
  test("ctl named the job itself: it finds it at the next leader by that id and follows it: each line once, exit 0", async () => {
    const config = startNodes();
    const [n1, n2, n3] = nodes as [FakeNode, FakeNode, FakeNode];
    for (const n of nodes) n.leader = () => ({ leader: rs(n1.host), term: 1, self: n === n1 });
    let proposed = "";
    // Node 1 reads the submission (the job is journaled, say), then dies before it answers.
    n1.route = async (req, path) => {
      if (req.method !== "POST" || path !== "/jobs") return refusal(404, "not scripted");
      proposed = ((await req.json()) as { job: string }).job;
      for (const n of [n2, n3]) n.leader = () => ({ leader: rs(n2.host), term: 2, self: n === n2 });
      setTimeout(() => kill(n1), 10);
      return new Promise<Response>(() => {});
    };
    n2.route = (_req, path) => {
      if (path !== `/jobs/${proposed}/events`) return refusal(404, `no such job ${path}`);
      const accepted = { ...ACCEPTED, job: proposed };
      const done = { ...DONE, job: proposed };
      return new Response(ndjson([{ event: "watching", summary: { ...SUMMARY, job: proposed }, replayed: 1 }, accepted, out("s0t0", 1, ["a"]), done]));
    };
    const io = capture();
    expect(await runRainstorm([...APP, "--config", config, "--timeout", "2000"], { io, failoverTimeoutMs: scaled(20_000) })).toBe(0);
    expect(proposed).toMatch(/^job-[0-9a-z]{1,16}-[1-9][0-9]{0,15}$/);
    expect(io.stdout).toEqual(["a"]);
    expect(io.stderr[0]).toStartWith(`RainStorm leader at ${rs(n1.host)} unreachable: `);
    expect(io.stderr[0]).toEndWith(`; the job may still run: looking for ${proposed} at the leader`);
    expect(io.stderr.slice(1)).toEqual([
      `leader ${rs(n1.host)} lost; following job ${proposed} on ${rs(n2.host)} (term 2)`,
      `job ${proposed} accepted: 1 tasks on ${HOSTS[1]}`,
      `job ${proposed} done: 5 tuples read, 5 out, 2.0 s, 2 tuples/s; results in HyDFS out.txt`,
    ]);
  });

  test("newJobId: the pattern of job ids, whatever the clock and the random draw", () => {
    for (const [nowMs, r] of [
      [0, 0],
      [1_795_000_000_000, 0.999999999999],
      [Number.MAX_SAFE_INTEGER, 0.5],
    ] as const)
      expect(newJobId(nowMs, () => r)).toMatch(/^job-[0-9a-z]{1,16}-[1-9][0-9]{0,15}$/);
  });
});

describe("a leader paused past failure detection (its stream open, silent)", () => {
  test("after a quiet period ctl asks who leads, drops the silent stream and follows the job on the new leader: each line once, exit 0", async () => {
    const config = startNodes();
    node1LeadsAndStreams();
    const [n1, n2] = nodes as [FakeNode, FakeNode];
    const io = capture();
    const quietCheckMs = 300;
    const running = runRainstorm([...APP, "--config", config, "--timeout", "2000"], { io, failoverTimeoutMs: scaled(20_000), quietCheckMs });
    await waitFor(() => io.stdout.includes("c"), scaled(5000), "ctl printing the first results");
    // Node 1 is paused: it answers nothing, its stream stays open. Node 2 leads in term 2.
    n1.leader = () => new Promise<never>(() => {});
    for (const n of nodes.slice(1)) n.leader = () => ({ leader: rs(n2.host), term: 2, self: n === n2 });
    n2.route = () => new Response(ndjson([{ event: "watching", summary: SUMMARY, replayed: 1 }, out("s0t0", 2, ["c"]), out("s0t0", 3, ["d"]), DONE]));
    const stream = n1.servers[0]!;
    expect(stream.pendingRequests).toBe(1);
    expect(await running).toBe(0);
    // ctl closed the paused leader's stream (else its process could not exit).
    await waitFor(() => stream.pendingRequests === 0, scaled(2000), "the silent stream closed");
    expect(io.stdout).toEqual(["a\nb", "c", "d"]);
    expect(io.stderr.slice(-2)).toEqual([
      `leader ${rs(n1.host)} lost; following job ${JOB} on ${rs(n2.host)} (term 2)`,
      `job ${JOB} done: 5 tuples read, 5 out, 2.0 s, 2 tuples/s; results in HyDFS out.txt`,
    ]);
  });

  test.each([
    [{ host: "b", term: 2 }, { host: "a", term: 1 }, true],
    [{ host: "b", term: 1 }, { host: "a", term: 1 }, false],
    [{ host: "b", term: 1 }, { host: "a", term: 2 }, false],
    [{ host: "a", term: 3 }, { host: "a", term: 2 }, false],
    [{ host: "b" }, { host: "a", term: 2 }, true],
    [{ host: "b", term: 1 }, { host: "a" }, true],
  ])("named %j, attached %j: supersedes = %p", (named, attached, expected) => {
    expect(supersedes(named, attached)).toBe(expected);
  });
});

describe("finding the leader", () => {
  /**
   * list_jobs' call as ctl makes it (atLeader) while `stale` answers 421 naming `named` (and
   * does `then`) and `leader` lists the jobs: [the host that answered, its answer, 421s given].
   */
  async function listJobsVia(config: string, stale: FakeNode, named: string, leader: FakeNode, then = () => {}): Promise<unknown[]> {
    let refused = 0;
    stale.route = () => {
      refused++;
      then();
      return notLeader(named);
    };
    leader.route = (_req, path) => (path === "/jobs" ? Response.json([SUMMARY]) : refusal(404, "not scripted"));
    const ctx = await makeCtx({ config, json: false, timeout: "2000" });
    const r = await atLeader(ctx, (host) => leaderQuery(ctx, host, (addr) => client(ctx).jobs(addr, { timeoutMs: ctx.timeoutMs })));
    return [r.host, r.value, refused];
  }

  test("GET /leader of the nodes ctl knows; a 421 from a stale leader: asked again, the new leader answers", async () => {
    const config = startNodes();
    const [n1, n2, n3] = nodes as [FakeNode, FakeNode, FakeNode];
    // Node 1 still thinks it leads (term 3) and answers first; nodes 2 and 3 know better (term 4)
    // but answer late. Node 1 learns it when asked for jobs: it answers 421 naming itself (no
    // use), so ctl asks again, and this time node 1 names node 3 too.
    const late = async (answer: LeaderAnswer) => (await Bun.sleep(300), answer);
    n1.leader = () => ({ leader: rs(n1.host), term: 3, self: true });
    n2.leader = () => late({ leader: rs(n3.host), term: 4, self: false });
    n3.leader = () => late({ leader: rs(n3.host), term: 4, self: true });
    const learns = () => (n1.leader = () => ({ leader: rs(n3.host), term: 4, self: false }));
    expect(await listJobsVia(config, n1, n1.host, n3, learns)).toEqual([n3.host, [SUMMARY], 1]);
  });

  test("a 421 naming the leader is followed there", async () => {
    const config = startNodes();
    const [n1, n2] = nodes as [FakeNode, FakeNode];
    for (const n of nodes) n.leader = () => ({ leader: rs(n1.host), term: 1, self: n === n1 });
    expect(await listJobsVia(config, n1, n2.host, n2)).toEqual([n2.host, [SUMMARY], 1]);
  });

  test("no node names a leader within --timeout: an error naming every node asked and its answer", async () => {
    const config = startNodes();
    const [, n2] = nodes as [FakeNode, FakeNode];
    kill(n2);
    const ctx = await makeCtx({ config, json: false, timeout: "1200" });
    const t0 = performance.now();
    const err = await atLeader(ctx, async () => "never called").catch((e: Error) => e);
    expect(err).toBeInstanceOf(NoLeaderFound);
    const message = (err as Error).message;
    expect(message).toStartWith(
      `no RainStorm leader found: asked GET /leader of ${HOSTS.join(", ")}; ${HOSTS[0]}: no leader (term 0); rainstormd at ${HOSTS[1]}:${ports.rainstorm} unreachable: `,
    );
    expect(message).toEndWith(`; ${HOSTS[2]}: no leader (term 0)`);
    const tookMs = performance.now() - t0;
    expect(tookMs).toBeGreaterThanOrEqual(1200);
    expect(tookMs).toBeLessThan(1200 + scaled(3000));
  });
});
