/**
 * MemberWatch's readiness, against a fake memberd `/watch` (127.0.0.1, port 0) whose lines the
 * test writes: reported from the first snapshot on, changes only, after the member list of the
 * same line, false on `renewed`, and kept while memberd is away.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ClusterHttp } from "../shared/http.ts";
import { makeLogger } from "../shared/log.ts";
import { MemberWatch, RECENT_CHANGES_MAX } from "./watch.ts";
import { waitFor } from "../testing/cluster.ts";
import { scaled } from "../testing/time.ts";

const PORTS = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: 15000 };
const member = (id: string) => ({ id, state: "alive", ports: PORTS });

/** A fake memberd: each /watch connection gets a stream the test writes lines to. */
function fakeMemberd() {
  const connections: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            connections.push(controller);
          },
        }),
        { headers: { "content-type": "application/x-ndjson" } },
      ),
  });
  return {
    base: `http://127.0.0.1:${server.port}`,
    connections,
    send(line: Record<string, unknown>, conn = connections.length - 1) {
      connections[conn]!.enqueue(new TextEncoder().encode(`${JSON.stringify(line)}\n`));
    },
    stop: () => server.stop(true),
  };
}

const until = (cond: () => boolean, what: string) => waitFor(cond, scaled(3000), what, 5);

describe("MemberWatch readiness", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0)) f();
  });

  function follow(base: string) {
    const calls: string[] = [];
    const w = new MemberWatch({
      baseUrl: base,
      log: makeLogger("watch-test", "silent"),
      http: new ClusterHttp(""),
      onChange: (live) => calls.push(`members ${live.map((m) => m.id).join(",")}`),
      onReady: (ready) => calls.push(`ready ${ready}`),
      onLeft: () => calls.push("left"),
      maxBackoffMs: 50,
    });
    cleanup.push(() => w.stop());
    w.start();
    return { w, calls };
  }

  test("false until the first snapshot; then its value, changes only, after the member list", async () => {
    const m = fakeMemberd();
    cleanup.push(m.stop);
    const { w, calls } = follow(m.base);
    expect(w.ready).toBe(false);
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", ready: false, count: 1, members: [member("a")] });
    await until(() => calls.length === 2, "the snapshot");
    expect(calls).toEqual(["members a", "ready false"]);
    m.send({ event: "change", kind: "joined", id: "b", incarnation: 0, ports: PORTS });
    m.send({ event: "ready", ready: true });
    m.send({ event: "ready", ready: true });
    await until(() => calls.length === 4, "the ready event");
    expect(calls.slice(2)).toEqual(["members a,b", "ready true"]);
    expect(w.ready).toBe(true);
  });

  test("renewed: not ready at once, and the next snapshot is authoritative", async () => {
    const m = fakeMemberd();
    cleanup.push(m.stop);
    const { w, calls } = follow(m.base);
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", ready: true, count: 1, members: [member("a")] });
    await until(() => w.ready, "ready");
    m.send({ event: "renewed", from: "a", to: "a2" });
    await until(() => !w.ready, "not ready after renewed");
    await until(() => m.connections.length === 2, "the watch to reconnect");
    m.send({ event: "snapshot", self: "a2", ready: true, count: 1, members: [member("a2")] }, 1);
    await until(() => w.ready, "ready again");
    expect(calls).toEqual(["members a", "ready true", "ready false", "members a2", "ready true"]);
  });

  test("a snapshot without the flag (a memberd from before readiness) counts as ready", async () => {
    const m = fakeMemberd();
    cleanup.push(m.stop);
    const { w } = follow(m.base);
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", count: 1, members: [member("a")] });
    await until(() => w.ready, "ready");
  });

  test("memberd going away keeps the last readiness", async () => {
    const m = fakeMemberd();
    const { w, calls } = follow(m.base);
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", ready: true, count: 1, members: [member("a")] });
    await until(() => w.ready, "ready");
    m.connections[0]!.close();
    m.stop();
    await until(() => !w.connected, "the watch to notice");
    await Bun.sleep(100);
    expect(w.ready).toBe(true);
    expect(calls).toEqual(["members a", "ready true"]);
  });

  test("this node's own left (or a closed stream after a leave) calls onLeft once; another member's left does not", async () => {
    const m = fakeMemberd();
    cleanup.push(m.stop);
    const { w, calls } = follow(m.base);
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", ready: true, count: 2, members: [member("a"), member("b")] });
    m.send({ event: "change", kind: "left", id: "b", incarnation: 0 });
    await until(() => calls.includes("members a"), "b to leave the live list");
    expect(w.left).toBe(false);
    m.send({ event: "change", kind: "left", id: "a", incarnation: 0 });
    m.send({ event: "closed", reason: "left" });
    await until(() => w.left, "onLeft");
    await Bun.sleep(20);
    expect(calls.filter((c) => c === "left")).toEqual(["left"]);
  });

  test("closed with reason left (the change missed), or a snapshot listing this node left, calls onLeft; closed by a plain stop does not", async () => {
    const m = fakeMemberd();
    cleanup.push(m.stop);
    const first = follow(m.base);
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", ready: true, count: 1, members: [member("a")] });
    m.send({ event: "closed", reason: "stopped" });
    await Bun.sleep(50);
    expect(first.w.left).toBe(false);
    m.send({ event: "closed", reason: "left" });
    await until(() => first.w.left, "onLeft after closed/left");

    const second = follow(m.base);
    await until(() => m.connections.length === 2, "the second watch to connect");
    m.send({ event: "snapshot", self: "a", ready: false, count: 1, members: [{ ...member("a"), state: "left" }] });
    await until(() => second.w.left, "onLeft from the snapshot");
  });

  test("recentChanges: every change stamped in arrival order, refutations included, the last RECENT_CHANGES_MAX; listen is called after each update", async () => {
    const m = fakeMemberd();
    cleanup.push(m.stop);
    let clock = 1000;
    let updates = 0;
    const w = new MemberWatch({
      baseUrl: m.base,
      log: makeLogger("watch-test", "silent"),
      http: new ClusterHttp(""),
      onChange: () => {},
      nowMs: () => clock++,
    });
    cleanup.push(() => w.stop());
    const off = w.listen(() => updates++);
    w.start();
    await until(() => m.connections.length === 1, "the watch to connect");
    m.send({ event: "snapshot", self: "a", ready: true, count: 2, members: [member("a"), member("b")] });
    m.send({ event: "change", kind: "suspect", id: "b", incarnation: 0 });
    m.send({ event: "change", kind: "refuted", id: "b", incarnation: 1 });
    m.send({ event: "change", kind: "alive", id: "b", incarnation: 1 });
    await until(() => updates === 4, "a snapshot and three changes");
    expect(w.recentChanges()).toEqual([
      { atMs: 1000, id: "b", kind: "suspect", incarnation: 0 },
      { atMs: 1001, id: "b", kind: "refuted", incarnation: 1 },
      { atMs: 1002, id: "b", kind: "alive", incarnation: 1 },
    ]);
    expect(w.all().find((x) => x.id === "b")).toMatchObject({ state: "alive", incarnation: 1 });
    for (let i = 0; i < RECENT_CHANGES_MAX; i++) m.send({ event: "change", kind: "joined", id: `n${i}`, incarnation: 0, ports: PORTS });
    await until(() => updates === 4 + RECENT_CHANGES_MAX, "the joins");
    const kept = w.recentChanges();
    expect([kept.length, kept[0]!.id, kept.at(-1)!.id]).toEqual([RECENT_CHANGES_MAX, "n0", `n${RECENT_CHANGES_MAX - 1}`]);
    off();
    m.send({ event: "change", kind: "failed", id: "b", incarnation: 1 });
    await until(() => w.recentChanges().at(-1)!.kind === "failed", "the failure");
    expect(updates).toBe(4 + RECENT_CHANGES_MAX);
  });
});
