/**
 * Readiness ("this node's membership view is current"): the pure rule as a table, MemberNode
 * driven by hand (time passed in) through joins, an introducer's restart into an existing group,
 * dead peers, renewals and the latch, and the peers file's format and its atomic, private write.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import { seededRng } from "../shared/rng.ts";
import { tempPath } from "../testing/cluster.ts";
import { type ClusterConfig, DEFAULT_KNOBS } from "./cluster_config.ts";
import { loadKnownPeers, peersFilePath, writePeersFile } from "./driver.ts";
import { MemberNode, type NodeEvent } from "./node.ts";
import { decodePeersFile, encodePeersFile, type ReadinessFacts, viewReadiness } from "./readiness.ts";
import type { MemberInfo } from "./state.ts";
import type { Message } from "./wire.ts";

const PORTS = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: 15000 };
const CFG: ClusterConfig = { version: 0, origin: "", knobs: DEFAULT_KNOBS };
const INTRODUCER = "10.0.0.1:6000";
const P2 = "10.0.0.2:5000";
const P3 = "10.0.0.3:5000";
const WAIT = 5000;

describe("viewReadiness: the rule", () => {
  const base: ReadinessFacts = { joinAccepted: false, founder: true, knownPeers: [], livePeers: new Set(), elapsedMs: 0, rejoinWaitMs: WAIT };
  /** [name, facts, ready, reason or waitingFor (substring)] */
  const ROWS: [string, Partial<ReadinessFacts>, boolean, string][] = [
    ["joiner, not accepted yet", { founder: false }, false, "an introducer to accept this node's join"],
    [
      "joiner, not accepted, long after start: time alone never makes a joiner ready",
      { founder: false, elapsedMs: 10 * WAIT },
      false,
      "an introducer to accept",
    ],
    ["joiner, accepted", { founder: false, joinAccepted: true }, true, "an introducer accepted this node's join"],
    ["founder of a new group (no peers known)", {}, true, "a new group"],
    ["founder restarting, no peer back yet", { knownPeers: [P2, P3] }, false, `2 of 2 peers known from before to come back (${P2}, ${P3})`],
    [
      "founder restarting, one of two back",
      { knownPeers: [P2, P3], livePeers: new Set([P2]), elapsedMs: 1000 },
      false,
      `1 of 2 peers known from before to come back (${P3})`,
    ],
    [
      "founder restarting, all back (under any id)",
      { knownPeers: [P2, P3], livePeers: new Set([P2, P3]), elapsedMs: 1000 },
      true,
      "all 2 peers known from before are back",
    ],
    ["founder restarting, more back than known", { knownPeers: [P2], livePeers: new Set([P2, P3]) }, true, "all 1 peers"],
    [
      "founder restarting, one dead, just before rejoin_wait_ms",
      { knownPeers: [P2, P3], livePeers: new Set([P2]), elapsedMs: WAIT - 1 },
      false,
      "for at most rejoin_wait_ms (5000 ms)",
    ],
    [
      "founder restarting, one dead, at rejoin_wait_ms",
      { knownPeers: [P2, P3], livePeers: new Set([P2]), elapsedMs: WAIT },
      true,
      `1 of 2 peers known from before did not come back and are presumed dead (${P3})`,
    ],
    ["whole cluster restarted, nobody back, at rejoin_wait_ms", { knownPeers: [P2, P3], elapsedMs: WAIT }, true, "2 of 2 peers"],
    ["rejoin_wait_ms 0: ready at once", { knownPeers: [P2], rejoinWaitMs: 0 }, true, "presumed dead"],
    ["unreadable peers file, before rejoin_wait_ms", { knownPeers: "unknown", livePeers: new Set([P2]), elapsedMs: WAIT - 1 }, false, "unreadable peers file"],
    ["unreadable peers file, at rejoin_wait_ms", { knownPeers: "unknown", elapsedMs: WAIT }, true, "unreadable peers file"],
    ["founder with other introducers, accepted by one", { knownPeers: [P2, P3], joinAccepted: true }, true, "an introducer accepted"],
    [
      "many missing peers are listed briefly",
      { knownPeers: Array.from({ length: 8 }, (_, i) => `10.0.1.${i}:5000`) },
      false,
      "10.0.1.0:5000, 10.0.1.1:5000, 10.0.1.2:5000, 10.0.1.3:5000, 10.0.1.4:5000 and 3 more",
    ],
  ];
  test.each(ROWS)("%s", (_name, facts, ready, text) => {
    const r = viewReadiness({ ...base, ...facts });
    expect(r.ready).toBe(ready);
    expect(r.ready ? r.reason : r.waitingFor).toContain(text);
  });
});

// ---- MemberNode, driven by hand --------------------------------------------------------------

function node(
  host: string,
  opts: { introducers?: string[]; isIntroducer?: boolean; knownPeers?: string[] | "unknown"; bootMs?: number; nowMs?: number } = {},
): MemberNode {
  return new MemberNode({
    host,
    ports: PORTS,
    bootMs: opts.bootMs ?? 1000,
    config: CFG,
    rng: seededRng(3),
    nowMs: opts.nowMs ?? 0,
    introducers: opts.introducers ?? [INTRODUCER],
    isIntroducer: opts.isIntroducer,
    knownPeers: opts.knownPeers,
    rejoinWaitMs: WAIT,
  });
}

const info = (id: string, state: MemberInfo["state"] = "alive"): MemberInfo => ({ id, incarnation: 0, state, heartbeat: 1, ports: PORTS });
const ping = (from: string): Message => ({ type: "ping", from, cfg: CFG, entries: [info(from)], seq: 1 });
const readyEvents = (evs: NodeEvent[]) => evs.filter((e) => e.kind === "view_ready").map((e) => (e as { ready: boolean }).ready);

/** `joiner` asks `introducer` to admit it, and takes the answer. */
function joinThrough(joiner: MemberNode, introducer: MemberNode, nowMs: number): void {
  const due = joiner.joinDue(nowMs);
  if (!due) throw new Error("no join due");
  const handled = introducer.handleJoin(due.msg, nowMs);
  if ("refused" in handled) throw new Error(`join refused: ${handled.refused}`);
  joiner.onJoinReply(handled.reply, nowMs, 1000 + nowMs);
}

describe("MemberNode readiness", () => {
  test("an introducer that founds a new group is ready at once, and says so once", () => {
    const n = node("10.0.0.1", { isIntroducer: true, introducers: [INTRODUCER] });
    expect(n.isViewReady).toBe(true);
    const evs = n.drainEvents();
    expect(evs).toEqual([{ kind: "view_ready", ready: true, reason: "a new group: no peers known from before", members: 1, atMs: 0 }]);
    n.tick(20, 1020);
    expect(readyEvents(n.drainEvents())).toEqual([]);
  });

  test("a joiner is ready once an introducer accepted it, not before (however long it waits)", () => {
    const intro = node("10.0.0.1", { isIntroducer: true });
    const j = node("10.0.0.2");
    j.tick(10 * WAIT, 1000 + 10 * WAIT);
    expect(j.isViewReady).toBe(false);
    expect(j.viewWaitingFor).toBe("an introducer to accept this node's join");
    joinThrough(j, intro, 10 * WAIT);
    expect(j.isViewReady).toBe(true);
    expect(j.viewWaitingFor).toBe("");
    expect(j.drainEvents().find((e) => e.kind === "view_ready")).toMatchObject({ ready: true, reason: "an introducer accepted this node's join", members: 2 });
  });

  test("a restarted introducer waits for the peers it knew; they count under new ids too", () => {
    const n = node("10.0.0.1", { isIntroducer: true, knownPeers: [P2, P3] });
    expect(n.isViewReady).toBe(false);
    expect(n.viewWaitingFor).toContain(`2 of 2 peers known from before to come back (${P2}, ${P3})`);
    // P2 still runs under its old id: its probe of the introducer's address reaches the new process.
    n.receive(ping(`${P2}@1000`), 100, 1100);
    expect(n.isViewReady).toBe(false);
    // P3 restarted too and comes back under a new id.
    n.receive(ping(`${P3}@9999`), 200, 1200);
    expect(n.isViewReady).toBe(true);
    expect(n.drainEvents().find((e) => e.kind === "view_ready")).toMatchObject({
      ready: true,
      reason: "all 2 peers known from before are back",
      members: 3,
      atMs: 200,
    });
  });

  test("a peer that is dead delays a restarted introducer by rejoin_wait_ms, no longer", () => {
    const n = node("10.0.0.1", { isIntroducer: true, knownPeers: [P2, P3], nowMs: 500 });
    n.receive(ping(`${P2}@1000`), 600, 1600);
    n.tick(500 + WAIT - 1, 1500 + WAIT);
    expect(n.isViewReady).toBe(false);
    n.tick(500 + WAIT, 1500 + WAIT);
    expect(n.isViewReady).toBe(true);
    expect(n.drainEvents().find((e) => e.kind === "view_ready")).toMatchObject({ ready: true, reason: expect.stringContaining(`presumed dead (${P3})`) });
  });

  test("once ready, a failing peer does not take readiness away (it is latched for the id)", () => {
    const n = node("10.0.0.1", { isIntroducer: true, knownPeers: [P2] });
    n.receive(ping(`${P2}@1000`), 100, 1100);
    expect(n.isViewReady).toBe(true);
    n.receive({ type: "gossip", from: `${P3}@1000`, cfg: CFG, entries: [info(`${P3}@1000`), info(`${P2}@1000`, "failed")] }, 200, 1200);
    expect(n.core.get(`${P2}@1000`)?.state).toBe("failed");
    n.tick(300, 1300);
    expect(n.isViewReady).toBe(true);
  });

  test("a joiner declared failed is not ready from its renewal until its new id is accepted", () => {
    const intro = node("10.0.0.1", { isIntroducer: true });
    const j = node("10.0.0.2");
    joinThrough(j, intro, 0);
    j.drainEvents();
    const old = j.id;
    j.receive({ type: "gossip", from: intro.id, cfg: CFG, entries: [info(intro.id), info(old, "failed")] }, 100, 5000);
    expect(j.id).not.toBe(old);
    expect(j.isViewReady).toBe(false);
    const evs = j.drainEvents().filter((e) => e.kind === "view_ready" || e.kind === "renewed");
    // "not ready" comes before "renewed", so a follower that stops reading at "renewed" has it.
    expect(evs.map((e) => e.kind)).toEqual(["view_ready", "renewed"]);
    expect(evs[0]).toMatchObject({ ready: false, reason: "starting over as a new member (was declared failed)" });
    j.tick(WAIT * 3, 5000 + WAIT * 3);
    expect(j.isViewReady).toBe(false);
    joinThrough(j, intro, WAIT * 3);
    expect(j.isViewReady).toBe(true);
  });

  test("an introducer declared failed waits, under its new id, for the peers its old id knew", () => {
    const n = node("10.0.0.1", { isIntroducer: true });
    n.receive(ping(`${P2}@1000`), 10, 1010);
    n.receive(ping(`${P3}@1000`), 20, 1020);
    expect(n.isViewReady).toBe(true);
    n.drainEvents();
    n.receive({ type: "gossip", from: `${P2}@1000`, cfg: CFG, entries: [info(`${P2}@1000`), info(n.id, "failed")] }, 1000, 2000);
    expect(n.isViewReady).toBe(false);
    expect(n.viewWaitingFor).toContain(`2 of 2 peers known from before to come back (${P2}, ${P3})`);
    n.receive(ping(`${P2}@1000`), 1100, 2100);
    n.receive(ping(`${P3}@1000`), 1200, 2200);
    expect(n.isViewReady).toBe(true);
    expect(readyEvents(n.drainEvents())).toEqual([false, true]);
  });

  test("an introducer with other introducers is ready once one of them accepts it", () => {
    const other = node("10.0.0.9", { isIntroducer: true, introducers: ["10.0.0.9:6000"] });
    const n = node("10.0.0.1", { isIntroducer: true, introducers: [INTRODUCER, "10.0.0.9:6000"], knownPeers: [P2, P3] });
    expect(n.isViewReady).toBe(false);
    joinThrough(n, other, 100);
    expect(n.isViewReady).toBe(true);
  });

  test("a node with no other introducer to ask is a founder even without is_introducer", () => {
    expect(node("10.0.0.1", { introducers: [INTRODUCER] }).isViewReady).toBe(true);
  });
});

// ---- the peers file ----------------------------------------------------------------------------

describe("peers file", () => {
  const log = makeLogger("readiness-test", "silent");

  test("encode sorts and dedupes; decode gives the list back", () => {
    const text = encodePeersFile([P3, P2, P3]);
    expect(text).toBe(`{"version":1,"peers":["${P2}","${P3}"]}\n`);
    expect(decodePeersFile(text)).toEqual([P2, P3]);
    expect(decodePeersFile(encodePeersFile([]))).toEqual([]);
  });

  const BAD: [string, string, string][] = [
    ["not JSON", "{", "invalid JSON"],
    ["another version", '{"version":2,"peers":[]}', 'expected {"version":1,"peers":[...]}'],
    ["peers not a list", '{"version":1,"peers":"x"}', "peers: expected a list"],
    ["an id instead of an address", `{"version":1,"peers":["${P2}@1000"]}`, 'peers: expected "host:port" strings'],
    ["a number", '{"version":1,"peers":[5000]}', 'peers: expected "host:port" strings'],
  ];
  test.each(BAD)("decode refuses %s", (_name, text, message) => {
    expect(() => decodePeersFile(text)).toThrow(message);
  });

  test("written atomically, mode 0600, and read back; missing = a new group, unreadable = unknown", () => {
    const dir = tempPath("peers-file-");
    try {
      const path = peersFilePath(dir);
      expect(path).toBe(join(dir, "memberd", "peers.json"));
      expect(loadKnownPeers(path, log)).toEqual([]);
      writePeersFile(path, [P3, P2]);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(loadKnownPeers(path, log)).toEqual([P2, P3]);
      writePeersFile(path, [P2]);
      expect(JSON.parse(readFileSync(path, "utf8")).peers).toEqual([P2]);
      writeFileSync(path, "{torn");
      expect(loadKnownPeers(path, log)).toBe("unknown");
      mkdirSync(join(dir, "memberd", "dir.json"), { recursive: true });
      expect(loadKnownPeers(join(dir, "memberd", "dir.json"), log)).toBe("unknown");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("rejoin_wait_ms node setting", () => {
  test("default 5000; 0 and 600000 accepted", () => {
    expect(buildNodeConfig({}).rejoin_wait_ms).toBe(5000);
    expect(buildNodeConfig({ rejoin_wait_ms: 0 }).rejoin_wait_ms).toBe(0);
    expect(buildNodeConfig({ rejoin_wait_ms: 600_000 }).rejoin_wait_ms).toBe(600_000);
  });
  test.each([-1, 1.5, "5000", 600_001, null])("refuses %p with a message that names it", (v) => {
    expect(() => buildNodeConfig({ rejoin_wait_ms: v })).toThrow(`rejoin_wait_ms: expected an integer in [0, 600000] ms, got ${JSON.stringify(v)}`);
  });
});
