/**
 * The protocol core at its limits, driven by hand (time passed in, seeded random): the config
 * version, incarnation and heartbeat ceilings, join replays, and the tombstones of removed ids.
 */
import { describe, expect, test } from "bun:test";
import { seededRng } from "../shared/rng.ts";
import { type ClusterConfig, DEFAULT_KNOBS } from "./cluster_config.ts";
import { MAX_CONFIG_VERSION, MAX_ENTRIES_PER_DATAGRAM, MAX_HEARTBEAT, MAX_INCARNATION, TOMBSTONE_MS } from "./limits.ts";
import { ConfigCeilingError, datagramParts, Membership, type Outgoing, SUBJECT_NEWS_SENDS } from "./membership.ts";
import { MemberNode } from "./node.ts";
import type { MemberInfo, MemberState } from "./state.ts";
import { decodeMessage, encodeMessage, type Message } from "./wire.ts";

const PORTS = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: 15000 };
const SELF = "10.0.0.1:5000@1000";
const PEER = "10.0.0.2:5000@1000";
const OTHER = "10.0.0.3:5000@1000";

function core(config: Partial<ClusterConfig> = {}, selfId = SELF): Membership {
  return new Membership({ selfId, ports: PORTS, config: { version: 0, origin: "", knobs: DEFAULT_KNOBS, ...config }, rng: seededRng(7), nowMs: 0 });
}

const info = (id: string, state: MemberState = "alive", incarnation = 0, heartbeat = 1): MemberInfo => ({ id, incarnation, state, heartbeat, ports: PORTS });

function gossip(from: string, entries: MemberInfo[], cfg: ClusterConfig = { version: 0, origin: "", knobs: DEFAULT_KNOBS }): Message {
  return { type: "gossip", from, cfg, entries };
}

/** Every outgoing message must survive the real decoder: the core never sends what peers drop. */
function decodable(out: Outgoing[]): boolean {
  for (const o of out) decodeMessage(encodeMessage(o.msg));
  return true;
}

describe("config version ceiling", () => {
  test("a change at MAX_CONFIG_VERSION - 1 gives MAX_CONFIG_VERSION and spreads", () => {
    const c = core({ version: MAX_CONFIG_VERSION - 1, origin: PEER });
    c.receive(gossip(PEER, [info(PEER)], c.config), 0);
    const out = c.changeConfig({ ...DEFAULT_KNOBS, t_fail_ms: 2000 }, 10);
    expect(c.config.version).toBe(MAX_CONFIG_VERSION);
    expect(out.length).toBeGreaterThan(0);
    expect(decodable(out)).toBe(true);
  });

  test("a change at MAX_CONFIG_VERSION throws ConfigCeilingError and changes nothing", () => {
    const c = core({ version: MAX_CONFIG_VERSION, origin: PEER });
    c.drainEvents();
    let caught: unknown;
    try {
      c.changeConfig({ ...DEFAULT_KNOBS, t_fail_ms: 2000 }, 10);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigCeilingError);
    expect((caught as Error).message).toStartWith(`cluster config version ${MAX_CONFIG_VERSION} is at its ceiling; this change cannot be spread`);
    expect(c.config).toEqual({ version: MAX_CONFIG_VERSION, origin: PEER, knobs: DEFAULT_KNOBS });
    expect(c.drainEvents()).toEqual([]);
  });
});

describe("incarnation ceiling", () => {
  test("a suspicion below the ceiling is refuted with incarnation + 1", () => {
    const c = core();
    c.receive(gossip(PEER, [info(PEER), info(SELF, "suspect", MAX_INCARNATION - 1)]), 0);
    expect(c.self.incarnation).toBe(MAX_INCARNATION);
    expect(c.drainEvents().map((e) => e.kind)).toEqual(["joined", "refuted"]);
  });

  test("a suspicion at the ceiling cannot be refuted: the node starts over under a new id", () => {
    const c = core();
    c.receive(gossip(PEER, [info(PEER), info(SELF, "suspect", MAX_INCARNATION)]), 0);
    expect(c.self.incarnation).toBe(0);
    const failed = c.drainEvents().find((e) => e.kind === "self_failed");
    expect(failed && "reason" in failed && failed.reason).toBe(`was suspected at incarnation ${MAX_INCARNATION}, the ceiling, and cannot refute`);

    const node = new MemberNode({ host: "10.0.0.1", ports: PORTS, bootMs: 1000, config: c.config, rng: seededRng(1), nowMs: 0, introducers: [] });
    const old = node.id;
    node.receive(gossip(PEER, [info(PEER), info(old, "suspect", MAX_INCARNATION)]), 5, 2000);
    expect(node.id).toBe("10.0.0.1:5000@2000");
    expect(node.core.self.incarnation).toBe(0);
    expect(node.drainEvents().find((e) => e.kind === "renewed")).toMatchObject({ from: old, to: node.id });
  });
});

describe("heartbeat ceiling", () => {
  test("a node whose heartbeat reached MAX_HEARTBEAT starts over instead of passing it", () => {
    const node = new MemberNode({
      host: "10.0.0.1",
      ports: PORTS,
      bootMs: 1000,
      config: { version: 0, origin: "", knobs: { ...DEFAULT_KNOBS, protocol: "gossip" } },
      rng: seededRng(1),
      nowMs: 0,
      introducers: [],
    });
    node.receive(gossip(PEER, [info(PEER)]), 0, 1000);
    node.core.self.heartbeat = MAX_HEARTBEAT - 1;
    const first = node.tick(1, 1001);
    expect(node.core.self.heartbeat).toBe(MAX_HEARTBEAT);
    expect(decodable(first)).toBe(true);
    const old = node.id;
    const second = node.tick(1000, 2000);
    expect(decodable(second)).toBe(true);
    expect(node.id).not.toBe(old);
    expect(node.core.self.heartbeat).toBe(0);
    expect(node.drainEvents().find((e) => e.kind === "renewed")).toMatchObject({ from: old, reason: `its heartbeat reached the ceiling ${MAX_HEARTBEAT}` });
  });
});

describe("join replays (introducer side)", () => {
  /** [name, send times of the requests in order, answered?] */
  const ROWS: [string, (number | undefined)[], boolean[]][] = [
    ["a first request is answered", [1000], [true]],
    ["the same request again (a replay) is not", [1000, 1000], [true, false]],
    ["an older request of the same id (a replay of an earlier capture) is not", [1000, 999], [true, false]],
    ["a retry, sent later, is answered", [1000, 2000], [true, true]],
    ["a retry after a refused replay is answered", [1000, 1000, 3000], [true, false, true]],
    ["an open cluster (no send time) answers every request", [undefined, undefined], [true, true]],
  ];
  test.each(ROWS)("%s", (_name, sentTimes, want) => {
    const c = core();
    const answered = sentTimes.map((sentMs, i) => typeof c.handleJoin(info(PEER), 10 * i, sentMs) !== "string");
    expect(answered).toEqual(want);
  });

  test("the replay record is per id", () => {
    const c = core();
    expect(typeof c.handleJoin(info(PEER), 0, 1000)).toBe("object");
    expect(typeof c.handleJoin(info(OTHER), 0, 1000)).toBe("object");
  });

  test("a removed id is refused even with a fresh request, and the reply lists it as removed", () => {
    const c = core({ knobs: { ...DEFAULT_KNOBS, t_cleanup_ms: 100 } });
    c.handleJoin(info(PEER), 0, 1000);
    c.receive(gossip(OTHER, [info(OTHER), info(PEER, "failed")]), 10);
    c.tick(200);
    expect(c.get(PEER)).toBeUndefined();
    const again = c.handleJoin(info(PEER), 300, 5000);
    expect(typeof again === "object" && again.reply).toMatchObject({ type: "join_reply", accepted: false });
    const joiner = c.handleJoin(info("10.0.0.4:5000@1000"), 300, 5000);
    expect(typeof joiner === "object" && joiner.reply).toMatchObject({ type: "join_reply", accepted: true, removed: [PEER] });
  });

  test("admitted joins are forgotten after TOMBSTONE_MS (memory stays bounded)", () => {
    const c = core();
    c.handleJoin(info(PEER), 0, 1000);
    c.tick(TOMBSTONE_MS + 1);
    // Long forgotten: the request is judged by the freshness window only, which it would fail.
    expect(typeof c.handleJoin(info(PEER), TOMBSTONE_MS + 2, 1000)).toBe("object");
  });
});

describe("last heard (heardAt)", () => {
  test("a datagram from a member sets it; hearing of a member through another, or from a failed one, does not; removal forgets it", () => {
    const c = core({ knobs: { ...DEFAULT_KNOBS, t_cleanup_ms: 100 } });
    c.receive(gossip(PEER, [info(PEER), info(OTHER)]), 5);
    expect([c.heardAt(PEER), c.heardAt(OTHER), c.heardAt(SELF)]).toEqual([5, undefined, undefined]);
    c.receive(gossip(PEER, [info(PEER, "alive", 0, 2)]), 9);
    c.receive(gossip(OTHER, [info(OTHER), info(PEER, "failed")]), 10);
    expect([c.heardAt(PEER), c.heardAt(OTHER)]).toEqual([9, 10]);
    c.receive(gossip(PEER, [info(PEER, "alive", 0, 3)]), 20);
    expect(c.heardAt(PEER)).toBe(9);
    c.tick(200);
    expect([c.get(PEER), c.heardAt(PEER)]).toEqual([undefined, undefined]);
  });
});

describe("tombstones of removed ids", () => {
  function removedAt(): { c: Membership; removedMs: number } {
    const c = core({ knobs: { ...DEFAULT_KNOBS, t_cleanup_ms: 100 } });
    c.receive(gossip(PEER, [info(PEER)]), 0);
    c.receive(gossip(OTHER, [info(OTHER), info(PEER, "failed")]), 10);
    c.tick(200);
    expect(c.get(PEER)).toBeUndefined();
    return { c, removedMs: 200 };
  }

  test("neither a datagram from the removed id nor an entry about it brings it back within TOMBSTONE_MS", () => {
    const { c, removedMs } = removedAt();
    for (const at of [removedMs + 1, removedMs + 30_000, removedMs + TOMBSTONE_MS - 1]) {
      c.tick(at);
      c.receive(gossip(PEER, [info(PEER, "alive", 5, 999)]), at);
      c.receive(gossip(OTHER, [info(OTHER), info(PEER, "alive", 9, 1000)]), at);
      expect(`${at}: ${c.get(PEER)?.state}`).toBe(`${at}: undefined`);
    }
    expect(c.counters.ignored_removed).toBeGreaterThanOrEqual(3);
  });

  test("a joiner takes the introducer's removed ids as tombstones", () => {
    const joiner = core({}, "10.0.0.4:5000@1000");
    const reply: Extract<Message, { type: "join_reply" }> = {
      type: "join_reply",
      accepted: true,
      reason: "",
      cfg: joiner.config,
      entries: [info(OTHER)],
      removed: [PEER],
    };
    joiner.applyJoinReply(reply, 0);
    joiner.receive(gossip(PEER, [info(PEER)]), 10);
    joiner.receive(gossip(OTHER, [info(OTHER), info(PEER)]), 10);
    expect(joiner.get(PEER)).toBeUndefined();
    expect(joiner.get(OTHER)?.state).toBe("alive");
  });
});

describe("former incarnations of this node", () => {
  test("another id at this node's own address is declared failed at once, and the news spreads", () => {
    const c = core();
    const former = "10.0.0.1:5000@500";
    c.receive(gossip(OTHER, [info(OTHER)]), 5);
    c.drainEvents();
    const out = c.receive(gossip(PEER, [info(PEER), info(former)]), 10);
    expect(c.get(former)?.state).toBe("failed");
    expect(c.livePeers().sort()).toEqual([PEER, OTHER]);
    expect(c.counters.failures_declared).toBe(1);
    expect(
      c
        .drainEvents()
        .filter((e) => "id" in e && e.id === former)
        .map((e) => e.kind),
    ).toEqual(["failed"]);
    // The failure goes out with the news pushed to the other peers.
    const sent = out
      .filter((o) => o.to === "10.0.0.3:5000")
      .flatMap((o) => ("entries" in o.msg ? o.msg.entries : []))
      .filter((e) => e.id === former);
    expect(sent.map((e) => e.state)).toContain("failed");
    // Hearing of it alive again changes nothing and counts nothing.
    c.receive(gossip(PEER, [info(PEER), info(former, "alive", 3)]), 20);
    expect(c.get(former)?.state).toBe("failed");
    expect(c.counters.failures_declared).toBe(1);
  });

  test("the same host with another port is another node", () => {
    const c = core();
    c.receive(gossip(PEER, [info(PEER), info("10.0.0.1:5001@500")]), 10);
    expect(c.get("10.0.0.1:5001@500")?.state).toBe("alive");
  });
});

describe("join dissemination", () => {
  const reply = (entries: MemberInfo[]): Extract<Message, { type: "join_reply" }> => ({
    type: "join_reply",
    accepted: true,
    reason: "",
    cfg: { version: 0, origin: "", knobs: DEFAULT_KNOBS },
    entries,
    removed: [],
  });
  const table = (n: number) => Array.from({ length: n }, (_, i) => info(`10.0.1.${i + 1}:5000@1000`));
  const entriesTo = (out: Outgoing[]) => out.map((o) => ("entries" in o.msg ? o.msg.entries.map((e) => e.id) : []));

  test("a first join announces the joiner's own entry to every member of the table, and nothing else", () => {
    const joiner = core({}, "10.0.0.9:5000@1000");
    const members = table(40);
    const { out } = joiner.applyJoinReply(reply(members), 0);
    expect(out.map((o) => o.to).sort()).toEqual(members.map((m) => m.id.replace("@1000", "")).sort());
    expect(new Set(entriesTo(out).map((ids) => ids.join()))).toEqual(new Set(["10.0.0.9:5000@1000"]));
    // The table is no news to pass on: the next ping piggybacks only the own entry.
    const ping = joiner.tick(500).find((o) => o.msg.type === "ping");
    expect(ping && "entries" in ping.msg && ping.msg.entries.map((e) => e.id)).toEqual(["10.0.0.9:5000@1000"]);
  });

  test("a later join reply (a rejoin: a healed partition) spreads what it brings as news", () => {
    const joiner = core({}, "10.0.0.9:5000@1000");
    joiner.applyJoinReply(reply([info(PEER)]), 0);
    const { out } = joiner.applyJoinReply(reply([info(PEER), info(OTHER)]), 10);
    expect(entriesTo(out).flat()).toContain(OTHER);
  });

  test("a member first heard from itself is piggybacked SUBJECT_NEWS_SENDS times and not pushed at once; heard from another, it is news", () => {
    const c = core();
    const firstHand = c.receive(gossip(PEER, [info(PEER)]), 0);
    expect(firstHand).toEqual([]);
    const secondHand = c.receive(gossip(PEER, [info(PEER), info(OTHER)]), 1);
    expect(entriesTo(secondHand).flat()).toContain(OTHER);
    let peerSends = 0;
    for (let t = 500; t <= 30_000; t += 500) {
      for (const o of c.tick(t)) {
        if (o.msg.type !== "ping") continue;
        peerSends += o.msg.entries.filter((e) => e.id === PEER).length;
        // Both peers answer, so nothing else becomes news.
        const target = [PEER, OTHER].find((id) => id.startsWith(o.to))!;
        c.receive({ type: "ack", from: target, cfg: c.config, entries: [info(target)], seq: o.msg.seq, about: target }, t + 1);
      }
    }
    expect(peerSends).toBe(SUBJECT_NEWS_SENDS);
    expect(c.get(PEER)?.state).toBe("alive");
  });

  test("the introducer does not push a joiner at once (the joiner announces itself)", () => {
    const c = core();
    c.receive(gossip(PEER, [info(PEER)]), 0);
    const handled = c.handleJoin(info(OTHER), 10);
    expect(typeof handled === "object" && handled.out).toEqual([]);
  });
});

describe("datagramParts", () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => info(`10.0.1.${i + 1}:5000@1000`));
  test.each([
    [0, 4, [0]],
    [1, 4, [1]],
    [4, 4, [4]],
    [5, 4, [4, 1]],
    [9, 4, [4, 4, 1]],
    [200, MAX_ENTRIES_PER_DATAGRAM, [64, 64, 64, 8]],
  ])("%p entries by at most %p: parts of %p", (n, max, sizes) => {
    const entries = ids(n);
    const parts = datagramParts(entries, max);
    expect(parts.map((p) => p.length)).toEqual(sizes);
    expect(parts.flat()).toEqual(entries);
  });

  test("a gossip round at 200 members sends datagrams the decoder accepts", () => {
    const c = core({ knobs: { ...DEFAULT_KNOBS, protocol: "gossip" } });
    c.receive(gossip(PEER, ids(199)), 0);
    const out = c.tick(1000);
    expect(out.length).toBeGreaterThan(3);
    expect(decodable(out)).toBe(true);
  });
});
