/** The dashboard stream: bounded per viewer, snapshot first, updates only on change, one poller for all viewers. */
import { describe, expect, test } from "bun:test";
import { admitUpdate, DashboardHub, HYDFS_POLL_MS, hostOfId, type HydfsView, type JobsView, MEMBERD_POLL_MS, type MemberRow } from "./stream.ts";
import type { JobEvent, JobSummary } from "../model.ts";
import { readLines } from "../../shared/lines.ts";
import { waitFor } from "../../testing/cluster.ts";
import { scaled } from "../../testing/time.ts";

describe("admitUpdate", () => {
  const u = { event: "members" };
  const table: [room: number, dropped: number, queued: string[], droppedAfter: number][] = [
    [5, 0, ["members"], 0],
    [0, 0, [], 1],
    [0, 3, [], 4],
    [1, 3, [], 4],
    [2, 3, ["dropped", "members"], 0],
  ];
  test.each(table)("room %d after %d dropped", (room, dropped, queued, after) => {
    const got = admitUpdate(u, room, dropped);
    expect([got.queue.map((x) => x.event), got.dropped]).toEqual([queued, after]);
  });
});

test("hostOfId", () => {
  expect(["127.0.0.1:5000@1700000000000", "node-a"].map(hostOfId)).toEqual(["127.0.0.1", "node-a"]);
});

describe("DashboardHub", () => {
  test("snapshot, then a members update when a member fails, jobs polled once for two viewers", async () => {
    let members: MemberRow[] = [{ id: "a:1:1", host: "a", state: "alive" }];
    let polls = 0;
    const jobs = async (): Promise<JobsView> => (polls++, { jobs: [], tasks: [] });
    const hub = new DashboardHub({ node: "a", leader: "a", members: () => members, jobs });
    const one = readLines(hub.open())[Symbol.asyncIterator]();
    const two = readLines(hub.open())[Symbol.asyncIterator]();
    const next = async (it: AsyncIterator<string>) => JSON.parse((await it.next()).value);
    expect(await next(one)).toMatchObject({ event: "snapshot", node: "a", leader: "a", members, jobs: [], tasks: [] });
    expect((await next(two)).event).toBe("snapshot");
    members = [{ id: "a:1:1", host: "a", state: "failed" }];
    expect(await next(one)).toEqual({ event: "members", members });
    expect(await next(two)).toEqual({ event: "members", members });
    // Both viewers opened within one poll period: the leader was asked once.
    expect(polls).toBe(1);
    await one.return?.(undefined);
    await two.return?.(undefined);
    await waitFor(() => hub.viewerCount === 0, scaled(2000), "viewers gone");
    hub.stop();
  });

  test("a change seen when a second viewer opens reaches the first viewer too", async () => {
    let members: MemberRow[] = [{ id: "a:1@1", host: "a", state: "alive" }];
    const hub = new DashboardHub({ node: "a", leader: "a", members: () => members, jobs: async () => ({ jobs: [], tasks: [] }) });
    const one = readLines(hub.open())[Symbol.asyncIterator]();
    expect(JSON.parse((await one.next()).value).members).toEqual(members);
    members = [{ id: "a:1@1", host: "a", state: "suspect" }];
    const two = readLines(hub.open())[Symbol.asyncIterator]();
    expect(JSON.parse((await two.next()).value).members).toEqual(members);
    expect(JSON.parse((await one.next()).value)).toEqual({ event: "members", members });
    await one.return?.(undefined);
    await two.return?.(undefined);
    hub.stop();
  });

  test("a leader that cannot be asked: the last jobs stay, with the reason", async () => {
    const hub = new DashboardHub({ node: "b", leader: "a", members: () => [], jobs: () => Promise.reject(new Error("connection refused")) });
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    expect((JSON.parse((await it.next()).value) as { event: string }).event).toBe("snapshot");
    expect(JSON.parse((await it.next()).value)).toEqual({ event: "jobs", jobs: [], tasks: [], jobs_error: "leader: connection refused" });
    await it.return?.(undefined);
    hub.stop();
  });
});

describe("DashboardHub with every source (as start.ts wires it)", () => {
  const A = "127.0.0.1:5000@1";
  function fixture() {
    const state = {
      members: [{ id: A, host: "127.0.0.1", state: "alive", incarnation: 0 }] as MemberRow[],
      leader: "127.0.0.1",
      term: 1,
      notify: undefined as (() => void) | undefined,
      memberdAsks: 0,
      hydfsAsks: 0,
      hydfsDown: false,
      /** Whether the watch exists yet (rainstormd makes it once its memberd agrees). */
      watching: true,
    };
    const hub = new DashboardHub({
      node: "127.0.0.1",
      get leader() {
        return state.leader;
      },
      term: () => state.term,
      members: () => state.members,
      listen: (f) => (state.watching ? ((state.notify = f), () => (state.notify = undefined)) : undefined),
      timeline: () => [{ at: 7, id: A, host: "127.0.0.1", kind: "joined", incarnation: 0 }],
      memberd: async () => (state.memberdAsks++, { heard: { [A]: null }, protocol: { protocol: "pingack" } }),
      jobs: async () => ({ jobs: [], tasks: [] }),
      hydfs: async () => {
        state.hydfsAsks++;
        if (state.hydfsDown) throw new Error("refused");
        return { ring: [{ id: A, host: "127.0.0.1", token: "00000000000000ff" }], files: [], files_total: 0 };
      },
    });
    return { state, hub };
  }
  const next = async (it: AsyncIterator<string>) => JSON.parse((await it.next()).value);

  test("members are pushed by the watch's callback (the tick does not compare them once subscribed); the leader and term by the tick", async () => {
    const { state, hub } = fixture();
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    expect(await next(it)).toMatchObject({ event: "snapshot", leader: "127.0.0.1", term: 1, timeline: [{ kind: "joined" }] });
    // The polls answer first (memberd's protocol joins the members update; the ring its own).
    const first = [await next(it), await next(it)];
    expect(first.map((u) => u.event).sort()).toEqual(["hydfs", "members"]);
    expect(first.find((u) => u.event === "members")).toMatchObject({ protocol: { protocol: "pingack" } });
    // A member change the callback is not told of stays unseen; a new term arrives on a tick.
    state.members = [{ ...state.members[0]!, state: "suspect" }];
    state.term = 2;
    expect(await next(it)).toEqual({ event: "leader", leader: "127.0.0.1", term: 2 });
    state.notify!();
    expect(await next(it)).toMatchObject({ event: "members", members: [{ id: A, state: "suspect" }] });
    // A failover: the callback carries the membership change and the new leader with it.
    state.members = [{ ...state.members[0]!, state: "failed" }];
    state.leader = "127.0.0.2";
    state.notify!();
    expect([(await next(it)).event, await next(it)]).toEqual(["members", { event: "leader", leader: "127.0.0.2", term: 2 }]);
    await it.return?.(undefined);
    await waitFor(() => hub.viewerCount === 0 && state.notify === undefined, scaled(2000), "the hub to unsubscribe with its last viewer");
    hub.stop();
  });

  test("until the watch exists, members are compared on each tick; once it does, the hub subscribes", async () => {
    const { state, hub } = fixture();
    state.watching = false;
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    await next(it);
    state.members = [{ ...state.members[0]!, state: "suspect" }];
    let u: Record<string, any>;
    do u = await next(it);
    while (!(u.event === "members" && u.members[0].state === "suspect"));
    state.watching = true;
    await waitFor(() => state.notify !== undefined, scaled(2000), "the hub to subscribe on a tick");
    await it.return?.(undefined);
    hub.stop();
  });

  test("a HyDFS survey that fails keeps the last ring, with the reason; memberd and HyDFS asked once per period", async () => {
    const { state, hub } = fixture();
    const startedMs = Date.now();
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    await next(it);
    const seen: Record<string, any>[] = [];
    while (!seen.some((u) => u.event === "hydfs")) seen.push(await next(it));
    state.hydfsDown = true;
    let failed: Record<string, any>;
    do failed = await next(it);
    while (failed.event !== "hydfs");
    expect(failed.hydfs).toEqual({ ring: [{ id: A, host: "127.0.0.1", token: "00000000000000ff" }], files: [], files_total: 0, error: "hydfs: refused" });
    // Each source asked at most once per its period (and once at the start).
    const elapsedMs = Date.now() - startedMs;
    expect(state.hydfsAsks).toBe(2);
    expect(elapsedMs).toBeGreaterThanOrEqual(HYDFS_POLL_MS);
    expect(state.memberdAsks).toBeLessThanOrEqual(1 + Math.floor(elapsedMs / MEMBERD_POLL_MS));
    await it.return?.(undefined);
    hub.stop();
  });
});

describe("DashboardHub following jobs at the leader (a fake leader)", () => {
  const summary = (job: string, status: JobSummary["status"]): JobSummary => ({
    job,
    status,
    stages: ["op"],
    tasks: [1],
    src: "in",
    dest: "out",
    tuples_read: 0,
    tuples_out: 0,
    tuples_per_s: 0,
  });
  function fixture() {
    const state = {
      leader: "a",
      jobs: [summary("j1", "running")],
      /** Each watch opened: its job, its listener, its end (as when the leader's stream ends), and whether it is closed (stopped or ended). */
      watches: [] as { job: string; tell(ev: JobEvent): void; end(): void; closed: boolean }[],
    };
    const hub = new DashboardHub({
      node: "a",
      get leader() {
        return state.leader;
      },
      members: () => [],
      jobs: async () => ({ jobs: state.jobs, tasks: [] }),
      watchJob: (job, onEvent, onEnd) => {
        const w = { job, tell: onEvent, end: () => ((w.closed = true), onEnd()), closed: false };
        state.watches.push(w);
        // A leader replays the job's recent events first.
        onEvent({ event: "output", lines: ["replayed"] });
        return () => (w.closed = true);
      },
    });
    return { state, hub };
  }
  const next = async (it: AsyncIterator<string>) => JSON.parse((await it.next()).value);
  async function nextOf(it: AsyncIterator<string>, event: string): Promise<Record<string, any>> {
    for (;;) {
      const u = await next(it);
      if (u.event === event) return u;
    }
  }
  const open = (ws: { closed: boolean }[]) => ws.filter((w) => !w.closed).length;

  test("a running job's scaling decisions, output tail and restarts are pushed; the watch stops when the job ends", async () => {
    const { state, hub } = fixture();
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    expect((await next(it)).event).toBe("snapshot");
    expect(await nextOf(it, "job_details")).toEqual({ event: "job_details", job: "j1", output: ["replayed"], output_lines: 1, scaling: [], restarts: [] });
    expect(state.watches.map((w) => w.job)).toEqual(["j1"]);
    const w = state.watches[0]!;
    w.tell({ event: "scaled", stage: 1, from: 1, to: 2, avg_rate_per_task: 450, reason: "average rate above HW" });
    w.tell({ event: "output", lines: ["x1", "x2"] });
    w.tell({ event: "task_restarted", stage: 0, index: 0, node: "b", pid: 9, reason: "killed" });
    // Three events in one tick: one update.
    const u = await nextOf(it, "job_details");
    expect(u).toMatchObject({
      job: "j1",
      output: ["replayed", "x1", "x2"],
      scaling: [{ stage: 1, from: 1, to: 2, avg_rate_per_task: 450, reason: "average rate above HW" }],
      restarts: [{ stage: 0, index: 0, node: "b", pid: 9, reason: "killed" }],
    });
    // A second page gets the details in its snapshot.
    const two = readLines(hub.open())[Symbol.asyncIterator]();
    expect((await next(two)).job_details.j1.scaling[0].to).toBe(2);
    await two.return?.(undefined);
    // The job ends: its watch is stopped (and no new one is opened).
    state.jobs = [summary("j1", "done")];
    await waitFor(() => w.closed, scaled(3000), "the watch of an ended job to stop");
    expect(state.watches.length).toBe(1);
    await it.return?.(undefined);
    hub.stop();
  });

  test("a watch that ends by itself is opened again while the job runs (a late event of the old one ignored); a new leader gets new watches; no page, no watch", async () => {
    const { state, hub } = fixture();
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    await nextOf(it, "job_details");
    state.watches[0]!.end();
    await waitFor(() => state.watches.length === 2, scaled(3000), "the watch opened again");
    // Opened again: the replay starts the details afresh (nothing counted twice).
    expect((await nextOf(it, "job_details")).output).toEqual(["replayed"]);
    // An event still in flight on the ended watch does not count; the current watch's does.
    state.watches[0]!.tell({ event: "output", lines: ["stale"] });
    state.watches[1]!.tell({ event: "output", lines: ["live"] });
    expect((await nextOf(it, "job_details")).output).toEqual(["replayed", "live"]);
    state.leader = "b";
    await waitFor(() => state.watches.length === 3 && state.watches[1]!.closed, scaled(3000), "the watch moved to the new leader");
    expect(open(state.watches)).toBe(1);
    await it.return?.(undefined);
    await waitFor(() => hub.viewerCount === 0, scaled(2000), "viewers gone");
    expect(open(state.watches)).toBe(0);
    hub.stop();
  });
});

describe("DashboardHub HyDFS activity", () => {
  test("a file whose replicas changed between two complete surveys is an activity line; a survey a node missed is not compared", async () => {
    const file = (replicas: string[]) => ({ name: "f", token: "0000000000000001", size: 1, ops: 1, replicas });
    const surveys: HydfsView[] = [
      { ring: [], files: [file(["h1", "h2", "h5"])], files_total: 1 },
      // h2 did not answer: not a lost copy.
      { ring: [], files: [file(["h1", "h5"])], files_total: 1, error: "hydfs: no liststore from h2" },
      { ring: [], files: [file(["h1", "h2", "h4"])], files_total: 1 },
    ];
    let asked = 0;
    let nowMs = 1000;
    const hub = new DashboardHub(
      {
        node: "a",
        leader: "a",
        members: () => [],
        jobs: async () => ({ jobs: [], tasks: [] }),
        hydfs: async () => surveys[Math.min(asked++, surveys.length - 1)]!,
      },
      () => (nowMs += HYDFS_POLL_MS),
    );
    const it = readLines(hub.open())[Symbol.asyncIterator]();
    const hydfs: HydfsView[] = [];
    while (hydfs.length < 3) {
      const u = JSON.parse((await it.next()).value);
      if (u.event === "hydfs") hydfs.push(u.hydfs);
    }
    expect(hydfs.map((h) => h.activity)).toEqual([
      undefined,
      undefined,
      [{ at: expect.any(Number), name: "f", from: ["h1", "h2", "h5"], to: ["h1", "h2", "h4"] }],
    ]);
    await it.return?.(undefined);
    hub.stop();
  });
});
