/**
 * Deterministic simulation of the membership protocol: in-process nodes, virtual clock, seeded
 * loss, delay and partitions, every message through the real wire codec. A failure message
 * names the seed; replay with SIM_SEED=<seed> bun test services/member/membership_sim_test.ts.
 */
import { describe, expect, test } from "bun:test";
import { INTRODUCER_PORT, type Sent, Sim, UDP_PORT } from "../testing/sim.ts";
import type { Knobs } from "./cluster_config.ts";
import { DATAGRAM_MAX_AGE_MS, MAX_CONFIG_VERSION } from "./limits.ts";
import { ConfigCeilingError } from "./membership.ts";
import { encodeMessage } from "./wire.ts";

const BASE_SEED = Number(process.env.SIM_SEED ?? 20261124);

function check(ok: boolean, sim: Sim, what: string): void {
  if (!ok) throw new Error(`${what} (${sim.describe()}; replay with SIM_SEED=${BASE_SEED})`);
}

function cluster(n: number, knobs: Partial<Knobs> = {}, extra: { lossRate?: number; secret?: string } = {}, seedOffset = 0): Sim {
  const sim = new Sim({ seed: BASE_SEED + seedOffset, knobs, ...extra });
  sim.addNodes(n);
  check(sim.runUntil(() => sim.converged(), 15_000) >= 0, sim, `${n} nodes did not converge after joining`);
  return sim;
}

/** Every event of `kind` about `id` seen by any node. */
function eventsAbout(sim: Sim, id: string, kind: string) {
  return sim.nodes.flatMap((sn) => sn.events.filter((e) => e.kind === kind && "id" in e && e.id === id));
}

const MODES: [string, Partial<Knobs>][] = [
  ["pingack+suspicion", { protocol: "pingack", suspicion: true }],
  ["pingack", { protocol: "pingack", suspicion: false }],
  ["gossip+suspicion", { protocol: "gossip", suspicion: true }],
  ["gossip", { protocol: "gossip", suspicion: false }],
];

describe("membership simulation", () => {
  test("20 nodes join through the introducer and agree", () => {
    const sim = cluster(20);
    for (const sn of sim.nodes) expect(sn.node.core.list().filter((m) => m.state === "alive").length).toBe(20);
  });

  test("200 nodes started at once agree within 5 s and their broadcast queues drain within 30 s", () => {
    const sim = new Sim({ seed: BASE_SEED + 3 });
    sim.addNodes(200);
    const converged = sim.runUntil(() => sim.converged(), 5_000);
    check(converged >= 0, sim, "200 nodes did not agree within 5 s");
    const drained = sim.runUntil(() => sim.live().every((sn) => sn.node.core.queuedUpdates === 0), 30_000);
    check(drained >= 0, sim, `broadcast queues not empty 30 s after convergence (largest ${Math.max(...sim.live().map((sn) => sn.node.core.queuedUpdates))})`);
    check(sim.converged(), sim, "200 nodes disagree after the queues drained");
    // 2-3 s of wall time alone, more on a loaded box: past bun's default 5 s per-test timeout.
  }, 60_000);

  test("a node that crashes right after joining is failed at every member within 4 s (it joins the probe passes at once)", () => {
    for (let i = 0; i < 5; i++) {
      const sim = cluster(20, {}, {}, 30 + i);
      sim.run(3000);
      const joiner = sim.addNode();
      check(sim.runUntil(() => sim.converged(), 5_000) >= 0, sim, "the joiner was not listed by all");
      const id = joiner.node.id;
      sim.crash(joiner.index);
      const took = sim.runUntil(() => sim.live().every((sn) => sn.node.core.get(id)?.state === "failed"), 4_000);
      check(took >= 0, sim, `a node crashed right after joining was not failed at every member within 4 s (seed offset ${30 + i})`);
    }
  });

  test("20 nodes joining at 10% loss agree within 5 s", () => {
    const sim = new Sim({ seed: BASE_SEED + 4, lossRate: 0.1 });
    sim.addNodes(20);
    check(sim.runUntil(() => sim.converged(), 5_000) >= 0, sim, "20 nodes at 10% loss did not agree within 5 s");
  });

  test("with two introducers, nodes join through whichever answers", () => {
    const sim = new Sim({ seed: BASE_SEED + 2, introducers: [1, 2] });
    sim.addNodes(2);
    sim.crash(1);
    sim.addNodes(5);
    const took = sim.runUntil(() => sim.converged() && sim.node(3).node.core.livePeers().length === 5, 10_000);
    check(took >= 0, sim, "nodes did not join through the second introducer");
  });

  test("joins work with a cluster secret (HMAC on every datagram)", () => {
    const sim = cluster(8, {}, { secret: "s3cret" }, 1);
    expect(sim.converged()).toBe(true);
  });

  MODES.forEach(([name, knobs], i) => {
    test(`crash is detected by every member in ${name}`, () => {
      const sim = cluster(20, { ...knobs, t_cleanup_ms: 3000 }, {}, 10 + i);
      const victim = sim.node(7).node.id;
      sim.crash(7);
      const k = sim.node(1).node.core.knobs;
      const budget = k.t_suspect_ms + k.t_fail_ms + 1000;
      const took = sim.runUntil(() => sim.live().every((sn) => sn.node.core.get(victim)?.state === "failed"), budget);
      check(took >= 0, sim, `${name}: not every survivor marked ${victim} failed within ${budget} ms`);
      const removed = sim.runUntil(() => sim.live().every((sn) => !sn.node.core.get(victim)), k.t_cleanup_ms + 1000);
      check(removed >= 0, sim, `${name}: ${victim} not removed after t_cleanup`);
      check(sim.converged(), sim, `${name}: survivors disagree`);
    });
  });

  for (const [name, knobs] of MODES.filter(([, k]) => k.suspicion)) {
    test(`a node paused for half its suspicion timeout refutes and stays (${name})`, () => {
      const sim = cluster(10, knobs, {}, 20);
      const paused = sim.node(4).node.id;
      const k = sim.node(1).node.core.knobs;
      sim.pause(4);
      // Stay stopped until someone suspects it, then for half of its window to refute.
      const noticed = sim.runUntil(() => eventsAbout(sim, paused, "suspect").length > 0, k.t_suspect_ms + 3 * k.ping_every_ms);
      check(noticed >= 0, sim, `${name}: paused node was never suspected`);
      sim.run(k.t_fail_ms / 2);
      sim.resume(4);
      sim.run(5000);
      check(eventsAbout(sim, paused, "failed").length === 0, sim, `${name}: paused node ${paused} was declared failed`);
      check(sim.node(4).node.id === paused, sim, `${name}: paused node had to rejoin`);
      check(
        sim.node(4).events.some((e) => e.kind === "refuted"),
        sim,
        `${name}: paused node did not refute`,
      );
      check(sim.converged(), sim, `${name}: not converged after resume`);
    });
  }

  test("a switch at one node reaches all within 2 s", () => {
    const sim = cluster(20, {}, {}, 30);
    const at3 = sim.node(3).node.core;
    sim.node(3).node.core.changeConfig({ ...at3.knobs, protocol: "gossip", suspicion: false }, sim.nowMs);
    const took = sim.runUntil(() => sim.nodes.every((sn) => sn.node.core.knobs.protocol === "gossip" && !sn.node.core.knobs.suspicion), 2000);
    check(took >= 0, sim, "switch did not reach every node within 2 s");
    sim.run(20_000);
    check(sim.converged(), sim, "a false failure after the switch");
    check(
      sim.nodes.every((sn) => sn.events.every((e) => e.kind !== "failed")),
      sim,
      "a false failure after the switch",
    );
  });

  test("two concurrent switches converge on one deterministic winner", () => {
    const sim = cluster(20, {}, {}, 31);
    const a = sim.node(2).node.core;
    const b = sim.node(15).node.core;
    a.changeConfig({ ...a.knobs, protocol: "gossip" }, sim.nowMs);
    b.changeConfig({ ...b.knobs, suspicion: false, t_fail_ms: 1500 }, sim.nowMs);
    const winner = a.selfId > b.selfId ? a.config : b.config;
    expect(a.config.version).toBe(b.config.version);
    const took = sim.runUntil(() => sim.nodes.every((sn) => JSON.stringify(sn.node.core.config) === JSON.stringify(winner)), 3000);
    check(took >= 0, sim, "concurrent switches did not converge on the larger origin's config");
  });

  test("leave is announced as left and never counted as a failure", () => {
    const sim = cluster(10, { t_cleanup_ms: 2000 }, {}, 40);
    const leaver = sim.node(6).node.id;
    sim.leave(6);
    const took = sim.runUntil(() => sim.live().every((sn) => sn.node.core.get(leaver)?.state === "left"), 1000);
    check(took >= 0, sim, "not every member saw the leave within 1 s");
    const gone = sim.runUntil(() => sim.live().every((sn) => !sn.node.core.get(leaver)), 4000);
    check(gone >= 0, sim, "left member not removed after t_cleanup");
    check(eventsAbout(sim, leaver, "failed").length === 0, sim, "a left member was declared failed");
  });

  for (const [name, knobs] of MODES.filter(([, k]) => k.suspicion)) {
    test(`10 minutes at 0% loss give no false failure (${name})`, () => {
      const sim = cluster(10, knobs, {}, 50);
      sim.run(600_000);
      check(
        sim.nodes.every((sn) => sn.events.every((e) => e.kind !== "failed" && e.kind !== "renewed")),
        sim,
        `${name}: false failure`,
      );
      check(sim.converged(), sim, `${name}: not converged`);
    });
  }

  test("10% loss for 3 minutes gives no false failure with the defaults", () => {
    const sim = cluster(10, {}, { lossRate: 0.1 }, 60);
    sim.run(180_000);
    check(
      sim.nodes.every((sn) => sn.events.every((e) => e.kind !== "failed")),
      sim,
      "false failure at 10% loss",
    );
  });

  test("drop_rate_recv drops that fraction of received datagrams, counted, without false failures", () => {
    const sim = cluster(10, { drop_rate_recv: 0.1 }, {}, 65);
    const received = () => sim.nodes.reduce((n, sn) => n + sn.node.core.counters.dropped_injected, 0);
    const before = received();
    sim.run(60_000);
    const dropped = received() - before;
    // About 10 nodes x (ping + ack + gossip) per 500 ms for 60 s, 10% of them: well over 100.
    check(dropped > 100, sim, `only ${dropped} datagrams dropped on purpose`);
    check(
      sim.nodes.every((sn) => sn.events.every((e) => e.kind !== "failed")),
      sim,
      "false failure at drop_rate_recv 0.1",
    );
  });

  test("a partition heals and the views re-merge", () => {
    const sim = cluster(12, { t_cleanup_ms: 2000 }, {}, 70);
    sim.partition((k) => (k <= 6 ? 0 : 1));
    sim.run(8000);
    // Each side has given up on the other.
    check(sim.node(1).node.core.livePeers().length === 5, sim, "introducer side still lists the other side");
    sim.heal();
    const took = sim.runUntil(() => sim.converged() && sim.live().every((sn) => sn.node.core.livePeers().length === 11), 20_000);
    check(took >= 0, sim, "views did not re-merge within 20 s of the heal");
  });
});

describe("replays, freshness, sender binding and ceilings (simulated, with a secret)", () => {
  const SECRET = "sim-secret";
  const KNOBS = { t_cleanup_ms: 2000 };

  /** Every node that lists `id`, in any state. */
  const listing = (sim: Sim, id: string) =>
    sim
      .live()
      .filter((sn) => sn.node.core.get(id))
      .map((sn) => sn.index);

  test("a dead node's captured datagram, replayed after its removal, never brings it back", () => {
    const sim = cluster(8, KNOBS, { secret: SECRET }, 80);
    const victim = sim.node(5);
    const victimId = victim.node.id;
    const captured: Sent[] = [];
    sim.tap = (sent) => {
      if (sent.from === victim && !sent.tcp) captured.push(sent);
    };
    sim.run(600);
    sim.tap = undefined;
    check(captured.length > 0, sim, "captured no datagram of the victim");
    const capturedAt = sim.nowMs;
    const recent = captured.slice(-3);
    const replay = () => {
      for (const k of [1, 2, 3, 4, 6, 7, 8]) for (const c of recent) sim.inject(k, c.bytes, `${victim.host}:${UDP_PORT}`);
    };
    sim.crash(5);
    const removed = sim.runUntil(() => listing(sim, victimId).length === 0, 10_000);
    check(removed >= 0, sim, `${victimId} was not removed`);

    // Within the freshness window: the tombstones keep it out.
    replay();
    sim.run(500);
    check(listing(sim, victimId).length === 0, sim, `replay ${sim.nowMs - capturedAt} ms after capture revived ${victimId} at ${listing(sim, victimId)}`);

    // A node that joined after the removal learns the tombstone from the introducer's reply.
    const late = sim.addNode();
    check(sim.runUntil(() => late.node.isAdmitted && late.node.core.livePeers().length === 7, 5000) >= 0, sim, "the late node did not join");
    check(sim.nowMs - capturedAt < DATAGRAM_MAX_AGE_MS, sim, "test too slow: the next replay must be within the window");
    for (const c of recent) sim.inject(late.index, c.bytes, `${victim.host}:${UDP_PORT}`);
    sim.run(500);
    check(!late.node.core.get(victimId), sim, `replay to a node that joined after the removal revived ${victimId}`);

    // 80 s after the capture (the replay): stale, dropped and counted everywhere.
    sim.run(capturedAt + 80_000 - sim.nowMs);
    const staleBefore = sim.droppedTotal("stale");
    replay();
    sim.run(500);
    check(listing(sim, victimId).length === 0, sim, `replay 80 s after capture revived ${victimId} at ${listing(sim, victimId)}`);
    check(
      sim.droppedTotal("stale") - staleBefore === 7 * recent.length,
      sim,
      `stale drops: ${sim.droppedTotal("stale") - staleBefore}, expected ${7 * recent.length}`,
    );
    check(
      sim.nodes.every((sn) => sn.events.filter((e) => "id" in e && e.id === victimId && e.kind === "joined").length <= 1),
      sim,
      `${victimId} joined twice somewhere`,
    );
    check(sim.converged(), sim, "survivors disagree after the replays");
  });

  test("a captured join request replayed at the introducer is refused and counted, before and after the node's death", () => {
    const sim = new Sim({ seed: BASE_SEED + 81, secret: SECRET, knobs: KNOBS });
    sim.addNodes(3);
    const joins: Sent[] = [];
    sim.tap = (sent) => {
      if (sent.tcp?.kind === "join" && sent.from.index === 3) joins.push(sent);
    };
    check(sim.runUntil(() => sim.converged(), 10_000) >= 0, sim, "3 nodes did not converge");
    sim.tap = undefined;
    check(joins.length >= 1, sim, "captured no join request");
    const joinerId = sim.node(3).node.id;
    for (const j of joins) sim.inject(1, j.bytes, `${sim.node(3).host}:${INTRODUCER_PORT}`, { kind: "join" });
    sim.run(100);
    check(sim.node(1).dropped.replay === joins.length, sim, `replayed joins refused: ${sim.node(1).dropped.replay} of ${joins.length}`);
    check(sim.converged(), sim, "the replay disturbed the group");

    // Once the node is dead and removed, a replay within the window does not bring it back either.
    sim.crash(3);
    check(sim.runUntil(() => listing(sim, joinerId).length === 0, 10_000) >= 0, sim, "the joiner was not removed");
    for (const j of joins) sim.inject(1, j.bytes, `${sim.node(3).host}:${INTRODUCER_PORT}`, { kind: "join" });
    sim.run(1000);
    check(listing(sim, joinerId).length === 0, sim, `a replayed join revived ${joinerId}`);
  });

  test("a datagram whose from does not name its source is dropped as sender", () => {
    const sim = cluster(4, KNOBS, { secret: SECRET }, 82);
    let captured: Sent | undefined;
    sim.tap = (sent) => {
      if (sent.from.index === 2 && !sent.tcp) captured = sent;
    };
    sim.run(600);
    sim.tap = undefined;
    check(captured !== undefined, sim, "captured nothing");
    const before = sim.node(3).dropped.sender;
    sim.inject(3, captured!.bytes, `${sim.node(4).host}:${UDP_PORT}`);
    sim.inject(3, captured!.bytes, `${sim.node(2).host}:${UDP_PORT + 1}`);
    sim.run(50);
    check(sim.node(3).dropped.sender - before === 2, sim, `sender drops: ${sim.node(3).dropped.sender - before}`);
  });

  test("clocks: 10 s apart the group works; a node 40 s ahead is never admitted and its datagrams count as stale", () => {
    const sim = new Sim({ seed: BASE_SEED + 83, secret: SECRET, knobs: KNOBS });
    sim.addNodes(4);
    sim.setClockOffset(2, 10_000);
    sim.setClockOffset(3, -10_000);
    check(sim.runUntil(() => sim.converged(), 10_000) >= 0, sim, "nodes 10 s apart did not converge");
    const fast = sim.addNode();
    sim.setClockOffset(fast.index, 40_000);
    sim.run(5000);
    check(!fast.node.isAdmitted, sim, "a node 40 s ahead was admitted");
    check(
      sim.live().every((sn) => sn === fast || !sn.node.core.get(fast.node.id)),
      sim,
      "a node 40 s ahead is listed",
    );
    check(sim.node(1).dropped.stale > 0, sim, "the introducer counted no stale join");
    check(sim.droppedTotal("auth") === 0 && sim.droppedTotal("format") === 0, sim, "unexpected auth or format drops");
    sim.setClockOffset(fast.index, 0);
    check(sim.runUntil(() => sim.converged(), 10_000) >= 0, sim, "the node did not join once its clock was set right");
  });

  test("config version ceiling: the last version spreads, the next change fails loudly and nothing flaps", () => {
    const sim = cluster(6, KNOBS, { secret: SECRET }, 84);
    // A key holder's datagram (say, a buggy node) pushes the version to just below the ceiling.
    const one = sim.node(1);
    const high = { ...one.node.core.config, version: MAX_CONFIG_VERSION - 1, origin: one.node.id };
    sim.inject(2, encodeMessage({ type: "gossip", from: one.node.id, cfg: high, entries: [] }, one.auth), `${one.host}:${UDP_PORT}`);
    check(
      sim.runUntil(() => sim.nodes.every((sn) => sn.node.core.config.version === MAX_CONFIG_VERSION - 1), 2000) >= 0,
      sim,
      "the high version did not spread",
    );
    const at3 = sim.node(3).node.core;
    at3.changeConfig({ ...at3.knobs, t_fail_ms: 1500 }, sim.nowMs);
    check(
      sim.runUntil(() => sim.nodes.every((sn) => sn.node.core.config.version === MAX_CONFIG_VERSION && sn.node.core.knobs.t_fail_ms === 1500), 2000) >= 0,
      sim,
      "the last version did not spread",
    );
    let refused: unknown;
    try {
      sim.node(4).node.core.changeConfig({ ...at3.knobs, t_fail_ms: 3000 }, sim.nowMs);
    } catch (err) {
      refused = err;
    }
    check(refused instanceof ConfigCeilingError, sim, `a change past the ceiling did not throw (${String(refused)})`);
    sim.run(10_000);
    check(
      sim.nodes.every((sn) => sn.node.core.config.version === MAX_CONFIG_VERSION && sn.node.core.knobs.t_fail_ms === 1500),
      sim,
      "configs diverged after the refused change",
    );
    check(sim.droppedTotal("format") === 0, sim, `peers dropped ${sim.droppedTotal("format")} malformed datagrams`);
    check(
      sim.nodes.every((sn) => sn.events.every((e) => e.kind !== "failed" && e.kind !== "renewed")),
      sim,
      "a node failed or flapped",
    );
  });
});
