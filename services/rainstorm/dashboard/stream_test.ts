/** The dashboard stream: bounded per viewer, snapshot first, updates only on change, one poller for all viewers. */
import { describe, expect, test } from "bun:test";
import { admitUpdate, DashboardHub, hostOfId, type JobsView, type MemberRow } from "./stream.ts";
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
