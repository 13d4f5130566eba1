/**
 * The membership protocol core: synchronous and free of I/O.
 *
 * It takes decoded messages and the current time (this node's monotonic clock) and returns the
 * messages to send. The driver (driver.ts) owns the socket and timers; the simulator
 * (testing/sim.ts) owns a virtual network and clock. Randomness comes from the injected Rng.
 *
 * Both protocols share the table, the merge rule, the suspicion timers and dissemination:
 * - every message carries the cluster config, the sender's own entry and up to `maxPiggyback`
 *   recent updates (the broadcast queue); a datagram never holds more than
 *   MAX_ENTRIES_PER_DATAGRAM entries (longer lists go out as several);
 * - news (a state or incarnation change, a config change, a member heard of from another) is
 *   also pushed at once to `gossip_fanout` random peers by whoever first learns it, so it floods
 *   in a few milliseconds instead of waiting for protocol rounds;
 * - a join is spread by the joiner itself: the introducer's table is no news to it, and once
 *   admitted it pings every member with its own entry (again to those that do not ack). Members
 *   that hear of it first-hand only piggyback it SUBJECT_NEWS_SENDS times: queued as full news at
 *   every member, 200 nodes starting at once kept every queue full for ~150 s.
 * gossip: each round, raise the own heartbeat and send the whole table to `gossip_fanout` peers;
 * a member whose heartbeat does not advance for `t_suspect_ms` is suspected (or failed).
 * pingack: each round, probe `ping_fanout` members (shuffled round-robin; a new member joins the
 * current pass at a random place); no ack within
 * `probe_timeout_ms` asks `indirect_probes` others to probe it (ping-req); no ack by the end of
 * the round is a missed probe: suspect (or failed).
 *
 * Limits (limits.ts): nothing the core sends is past a bound its peers enforce. A config change
 * at MAX_CONFIG_VERSION throws; a node whose incarnation or heartbeat would pass its ceiling
 * starts over under a new id. Removed ids stay tombstoned for `tombstoneMs` (longer than twice
 * the datagram freshness window), and an introducer hands its tombstones to each joiner, so no
 * entry, replayed datagram or replayed join can bring a dead id back.
 */
import type { Rng } from "../shared/rng.ts";
import { sample, shuffle } from "../shared/rng.ts";
import { BroadcastQueue } from "./broadcast.ts";
import { type ClusterConfig, configBeats, type Knobs } from "./cluster_config.ts";
import { MAX_CONFIG_VERSION, MAX_ENTRIES_PER_DATAGRAM, MAX_HEARTBEAT, MAX_INCARNATION, MAX_PIGGYBACK, TOMBSTONE_MS } from "./limits.ts";
import { insertIntoPass, ProbeTracker } from "./probe.ts";
import { isTerminal, type MemberEntry, type MemberInfo, type MemberPorts, type MemberState, mergeRule, parseNodeId } from "./state.ts";
import { missedProbeVerdict, retransmitLimit, roundPeriodMs, timerVerdict } from "./suspicion.ts";
import type { Message } from "./wire.ts";

/** A datagram to send: `to` is `host:udpPort`. */
export interface Outgoing {
  to: string;
  msg: Message;
}

export type MemberEvent =
  | { kind: "joined" | "suspect" | "alive" | "failed" | "left" | "removed"; id: string; incarnation: number; atMs: number }
  | { kind: "refuted"; id: string; incarnation: number; atMs: number }
  | { kind: "config"; config: ClusterConfig; atMs: number }
  /**
   * This node must rejoin under a new id: someone declared it failed, or one of its own counters
   * reached its ceiling (limits.ts). `reason` says which, for the log.
   */
  | { kind: "self_failed"; id: string; atMs: number; reason: string };

export interface MembershipOptions {
  selfId: string;
  ports: MemberPorts;
  /** Starting config; version 0 means "from my file": a join adopts the introducer's. */
  config: ClusterConfig;
  rng: Rng;
  nowMs: number;
  /**
   * Updates piggybacked per message, at most MAX_PIGGYBACK (limits.ts). More drains the queue
   * faster after many changes at once (a cluster starting) in bigger datagrams; a quiet cluster's
   * queue is empty, so its messages are as small either way. Default DEFAULT_PIGGYBACK.
   */
  maxPiggyback?: number;
  /** λ in the retransmit limit λ·ceil(log2(n+1)). Default 3. */
  retransmitMult?: number;
  /**
   * A gap between ticks longer than this means this process was stopped (SIGSTOP, a long GC):
   * timers are shifted by the gap so it does not suspect everyone on waking. Default 500 ms.
   */
  stallGuardMs?: number;
  /**
   * How long ids of removed members are remembered so that stale gossip, a replayed datagram or
   * a replayed join cannot revive them; also how long the introducer remembers the send time of
   * each admitted join. Must exceed twice the datagram freshness window. Default TOMBSTONE_MS (90 s).
   */
  tombstoneMs?: number;
}

export interface Counters {
  suspicions: number;
  refutations: number;
  failures_declared: number;
  joins: number;
  leaves_seen: number;
  dropped_injected: number;
  ignored_from_dead: number;
  probes_sent: number;
  probes_missed: number;
  indirect_probes_sent: number;
  /** Entries about removed members (tombstoned ids) ignored. */
  ignored_removed: number;
}

/** A local config change refused because the version is at its ceiling: no peer would accept the next one. */
export class ConfigCeilingError extends Error {
  constructor(readonly version: number) {
    super(
      `cluster config version ${version} is at its ceiling; this change cannot be spread ` +
        `(peers drop versions above ${MAX_CONFIG_VERSION}; only restarting every node starts the cluster over at version 0)`,
    );
  }
}

/** Why the introducer did not answer a join request. */
export type JoinRefusal = "replay";

/**
 * Updates piggybacked per message by default. With 8 (the old default) a queue that many changes
 * filled at once (200 nodes starting) drained slowly, at ~4 messages a second. 20 drain it 2.5x
 * faster, and a message full of them (the own entry, 20 updates, config, tag: ~1.45 KB with
 * 30-character ids) still fits one 1500-byte Ethernet frame; a quiet cluster's queue is empty.
 */
export const DEFAULT_PIGGYBACK = 20;

/**
 * How often a node piggybacks a member it first heard from that member itself. A joiner announces
 * itself to every member it knows, so nearly all hear it first-hand and full retransmission (λ log n
 * each, from every member: 200 x 24 sends of every join at 200 nodes) would only repeat it to
 * members that know it; these few sends per member reach the ones that lost the announcement.
 */
export const SUBJECT_NEWS_SENDS = 2;

/**
 * How often a joiner sends its announcement to a member that does not ack it (each after
 * probe_timeout_ms). At 10% loss each way a round trip fails 19% of the time; 3 attempts leave
 * 0.7%, which the backstop piggybacks (SUBJECT_NEWS_SENDS) then cover.
 */
export const JOIN_ANNOUNCE_ATTEMPTS = 3;

/** Probe round-trip times in ms, cumulative histogram bucket bounds (Prometheus style). */
export const RTT_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] as const;

export class Membership {
  readonly selfId: string;
  readonly selfHost: string;
  readonly selfUdpPort: number;
  private readonly rng: Rng;
  private readonly members = new Map<string, MemberEntry>();
  /** Removed ids -> local time they may be forgotten (pruned every tick). */
  private readonly tombstones = new Map<string, number>();
  /** Member id -> local time a datagram from it last arrived here (the dashboard's "last heard"; kept apart from the entries, which travel). */
  private readonly heard = new Map<string, number>();
  /** Introducer: id -> send time of the last join admitted (sender's clock) and when to forget it. */
  private readonly joinsAdmitted = new Map<string, { sentMs: number; forgetMs: number }>();
  private readonly broadcasts = new BroadcastQueue();
  private readonly probes = new ProbeTracker();
  private readonly events: MemberEvent[] = [];
  private cfg: ClusterConfig;
  private readonly maxPiggyback: number;
  private readonly retransmitMult: number;
  private readonly stallGuardMs: number;
  private readonly tombstoneMs: number;
  private nextRoundMs: number;
  private lastTickMs: number;
  private probeOrder: string[] = [];
  private probeIndex = 0;
  /** Ids learned as news during the current step, flushed eagerly at its end. */
  private fresh = new Set<string>();
  private configFresh = false;
  private leaving = false;
  /** An introducer admitted this id (its first join reply was applied). */
  private joined = false;
  readonly counters: Counters = {
    suspicions: 0,
    refutations: 0,
    failures_declared: 0,
    joins: 0,
    leaves_seen: 0,
    dropped_injected: 0,
    ignored_from_dead: 0,
    probes_sent: 0,
    probes_missed: 0,
    indirect_probes_sent: 0,
    ignored_removed: 0,
  };
  /** Cumulative counts per RTT_BUCKETS_MS bound, plus sum and count. */
  readonly rtt = { buckets: RTT_BUCKETS_MS.map(() => 0), sumMs: 0, count: 0 };

  constructor(opts: MembershipOptions) {
    this.selfId = opts.selfId;
    const { host, port } = parseNodeId(opts.selfId);
    this.selfHost = host;
    this.selfUdpPort = port;
    this.rng = opts.rng;
    this.cfg = opts.config;
    this.maxPiggyback = Math.min(opts.maxPiggyback ?? DEFAULT_PIGGYBACK, MAX_PIGGYBACK);
    this.retransmitMult = opts.retransmitMult ?? 3;
    this.stallGuardMs = opts.stallGuardMs ?? 500;
    this.tombstoneMs = opts.tombstoneMs ?? TOMBSTONE_MS;
    this.nextRoundMs = opts.nowMs;
    this.lastTickMs = opts.nowMs;
    this.members.set(this.selfId, {
      id: this.selfId,
      incarnation: 0,
      state: "alive",
      heartbeat: 0,
      ports: opts.ports,
      updatedMs: opts.nowMs,
      heartbeatMs: opts.nowMs,
      stateSinceMs: opts.nowMs,
    });
  }

  // ---- queries -------------------------------------------------------------------------------

  get config(): ClusterConfig {
    return this.cfg;
  }
  get knobs(): Knobs {
    return this.cfg.knobs;
  }
  get self(): MemberEntry {
    return this.members.get(this.selfId)!;
  }
  get isLeaving(): boolean {
    return this.leaving;
  }

  /** All listed members (including self), sorted by id. */
  list(): MemberEntry[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: string): MemberEntry | undefined {
    return this.members.get(id);
  }

  /** When a datagram from this member last arrived here (undefined: none since it was listed, or it is this node). */
  heardAt(id: string): number | undefined {
    return this.heard.get(id);
  }

  /** True when some other live member advertises this host and introducer port. */
  knowsLiveMemberAt(host: string, introducerPort: number): boolean {
    for (const m of this.members.values()) {
      if (m.id === this.selfId || isTerminal(m.state)) continue;
      if (m.ports.introducer === introducerPort && parseNodeId(m.id).host === host) return true;
    }
    return false;
  }

  /** Updates waiting in the broadcast queue (to be piggybacked). */
  get queuedUpdates(): number {
    return this.broadcasts.size;
  }

  /** Events since the last call (joins, suspicions, failures, config changes...). */
  drainEvents(): MemberEvent[] {
    return this.events.splice(0, this.events.length);
  }

  // ---- periodic work -------------------------------------------------------------------------

  /** Call often (every 10-25 ms); does whatever is due at `nowMs`. */
  tick(nowMs: number): Outgoing[] {
    const out: Outgoing[] = [];
    if (this.leaving) return out;
    const gap = nowMs - this.lastTickMs;
    if (gap > this.stallGuardMs) this.shiftTimers(gap);
    this.lastTickMs = nowMs;

    if (nowMs >= this.nextRoundMs) {
      const period = roundPeriodMs(this.knobs);
      this.nextRoundMs = Math.max(this.nextRoundMs + period, nowMs + 1);
      if (!this.bumpHeartbeat(nowMs)) return out;
      if (this.knobs.protocol === "gossip") this.gossipRound(out);
      else this.probeRound(nowMs, out);
    }
    this.expireProbes(nowMs, out);
    this.reannounce(nowMs, out);
    this.runTimers(nowMs, out);
    this.flushFresh(out, undefined);
    return out;
  }

  /** Raise the own heartbeat. At MAX_HEARTBEAT the node must start over under a new id instead: false. */
  private bumpHeartbeat(nowMs: number): boolean {
    const self = this.self;
    if (self.heartbeat >= MAX_HEARTBEAT) {
      this.events.push({ kind: "self_failed", id: this.selfId, atMs: nowMs, reason: `its heartbeat reached the ceiling ${MAX_HEARTBEAT}` });
      return false;
    }
    self.heartbeat++;
    self.heartbeatMs = nowMs;
    return true;
  }

  /** After a stall, move every local deadline forward by the stall so nothing expires for it. */
  private shiftTimers(gapMs: number): void {
    for (const m of this.members.values()) {
      m.heartbeatMs += gapMs;
      m.stateSinceMs += gapMs;
    }
    this.probes.clear();
  }

  private gossipRound(out: Outgoing[]): void {
    const peers = sample(this.rng, this.livePeers(), this.knobs.gossip_fanout);
    if (peers.length === 0) return;
    const parts = datagramParts([...this.members.values()].map(toInfo));
    for (const peer of peers)
      for (const entries of parts) out.push({ to: addressOf(peer), msg: { type: "gossip", from: this.selfId, cfg: this.cfg, entries } });
  }

  private probeRound(nowMs: number, out: Outgoing[]): void {
    for (let i = 0; i < this.knobs.ping_fanout; i++) {
      const target = this.nextProbeTarget();
      if (!target || this.probes.isProbing(target)) break;
      const seq = this.probes.start(target, nowMs, nowMs + this.knobs.probe_timeout_ms, nowMs + this.knobs.ping_every_ms);
      this.counters.probes_sent++;
      out.push({ to: addressOf(target), msg: { type: "ping", from: this.selfId, cfg: this.cfg, entries: this.piggyback(), seq } });
    }
  }

  /** Shuffled round-robin over live peers, reshuffled after each full pass (SWIM). */
  private nextProbeTarget(): string | undefined {
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.probeIndex < this.probeOrder.length) {
        const id = this.probeOrder[this.probeIndex++]!;
        const m = this.members.get(id);
        if (m && !isTerminal(m.state)) return id;
      }
      this.probeOrder = shuffle(this.rng, this.livePeers());
      this.probeIndex = 0;
    }
    return undefined;
  }

  private expireProbes(nowMs: number, out: Outgoing[]): void {
    const { needIndirect, missed } = this.probes.due(nowMs, this.knobs.indirect_probes > 0);
    for (const probe of needIndirect) {
      const helpers = sample(
        this.rng,
        this.livePeers().filter((id) => id !== probe.target),
        this.knobs.indirect_probes,
      );
      for (const helper of helpers) {
        this.counters.indirect_probes_sent++;
        out.push({
          to: addressOf(helper),
          msg: { type: "ping_req", from: this.selfId, cfg: this.cfg, entries: this.piggyback(), seq: probe.seq, target: probe.target },
        });
      }
    }
    for (const probe of missed) {
      const m = this.members.get(probe.target);
      if (!m) continue;
      this.counters.probes_missed++;
      const verdict = missedProbeVerdict(m.state, this.knobs);
      if (verdict === "suspect") this.markSuspect(m, nowMs, out);
      else if (verdict === "fail") this.markFailed(m, nowMs);
    }
  }

  private runTimers(nowMs: number, out: Outgoing[]): void {
    for (const m of [...this.members.values()]) {
      if (m.id === this.selfId) continue;
      const verdict = timerVerdict(m, this.knobs, nowMs);
      if (verdict === "suspect") this.markSuspect(m, nowMs, out);
      else if (verdict === "fail") this.markFailed(m, nowMs);
      else if (verdict === "remove") {
        this.members.delete(m.id);
        this.heard.delete(m.id);
        this.broadcasts.delete(m.id);
        this.tombstones.set(m.id, nowMs + this.tombstoneMs);
        this.events.push({ kind: "removed", id: m.id, incarnation: m.incarnation, atMs: nowMs });
      }
    }
    for (const [id, untilMs] of this.tombstones) if (nowMs > untilMs) this.tombstones.delete(id);
    for (const [id, seen] of this.joinsAdmitted) if (nowMs > seen.forgetMs) this.joinsAdmitted.delete(id);
  }

  private markSuspect(m: MemberEntry, nowMs: number, out: Outgoing[]): void {
    this.setState(m, "suspect", m.incarnation, nowMs);
    this.counters.suspicions++;
    // Tell the suspect itself at once so it can refute well within t_fail.
    out.push({ to: addressOf(m.id), msg: { type: "gossip", from: this.selfId, cfg: this.cfg, entries: [toInfo(this.self), toInfo(m)] } });
  }

  private markFailed(m: MemberEntry, nowMs: number): void {
    this.setState(m, "failed", m.incarnation, nowMs);
    this.counters.failures_declared++;
  }

  private setState(m: MemberEntry, state: MemberState, incarnation: number, nowMs: number): void {
    m.state = state;
    m.incarnation = incarnation;
    m.stateSinceMs = nowMs;
    m.updatedMs = nowMs;
    this.news(m.id);
    this.events.push({ kind: state, id: m.id, incarnation, atMs: nowMs });
  }

  private news(id: string): void {
    // The own entry leads every message anyway: queueing it would only waste piggyback slots.
    if (id !== this.selfId) this.broadcasts.enqueue(id);
    this.fresh.add(id);
  }

  // ---- incoming ------------------------------------------------------------------------------

  receive(msg: Message, nowMs: number): Outgoing[] {
    const out: Outgoing[] = [];
    if (this.leaving || msg.type === "join" || msg.type === "join_reply") return out;
    if (this.knobs.drop_rate_recv > 0 && this.rng.next() < this.knobs.drop_rate_recv) {
      this.counters.dropped_injected++;
      return out;
    }
    const sender = this.members.get(msg.from);
    if (msg.from !== this.selfId && (this.tombstones.has(msg.from) || (sender && sender.state === "failed"))) {
      // A member we declared failed is still talking: tell it, so it rejoins under a new id.
      this.counters.ignored_from_dead++;
      const dead: MemberInfo = sender ? toInfo(sender) : { id: msg.from, incarnation: 0, state: "failed", heartbeat: 0, ports: this.self.ports };
      out.push({ to: addressOf(msg.from), msg: { type: "gossip", from: this.selfId, cfg: this.cfg, entries: [toInfo(this.self), dead] } });
      return out;
    }
    if (msg.from !== this.selfId) this.heard.set(msg.from, nowMs);
    this.mergeConfig(msg.cfg, nowMs);
    // A member first heard from itself (its join announcement, its own probe) told every member
    // it knows itself: this node only backs that up (see SUBJECT_NEWS_SENDS).
    for (const info of msg.entries) this.mergeEntry(info, nowMs, info.id === msg.from ? "backstop" : "news");
    if (this.leaving) return out;

    switch (msg.type) {
      case "ping":
        out.push({
          to: addressOf(msg.from),
          msg: { type: "ack", from: this.selfId, cfg: this.cfg, entries: this.piggyback(), seq: msg.seq, about: this.selfId },
        });
        break;
      case "ack": {
        if (this.probes.ackAnnounce(msg.seq, msg.about)) break;
        const probe = this.probes.resolve(msg.seq, msg.about);
        if (probe) this.recordRtt(nowMs - probe.sentMs);
        const relay = this.probes.takeRelay(msg.seq, msg.about);
        if (relay) {
          out.push({
            to: addressOf(relay.origin),
            msg: { type: "ack", from: this.selfId, cfg: this.cfg, entries: this.piggyback(), seq: relay.originSeq, about: relay.target },
          });
        }
        break;
      }
      case "ping_req": {
        const target = this.members.get(msg.target);
        if (!target || isTerminal(target.state)) break;
        const seq = this.probes.relay(msg.from, msg.seq, msg.target, nowMs + this.knobs.ping_every_ms);
        out.push({ to: addressOf(msg.target), msg: { type: "ping", from: this.selfId, cfg: this.cfg, entries: this.piggyback(), seq } });
        break;
      }
      case "gossip":
        break;
    }
    this.flushFresh(out, msg.from);
    return out;
  }

  private recordRtt(ms: number): void {
    this.rtt.count++;
    this.rtt.sumMs += ms;
    RTT_BUCKETS_MS.forEach((bound, i) => {
      if (ms <= bound) this.rtt.buckets[i]!++;
    });
  }

  private mergeConfig(remote: ClusterConfig, nowMs: number): void {
    if (configBeats(remote, this.cfg)) this.adoptConfig(remote, nowMs);
  }

  private adoptConfig(next: ClusterConfig, nowMs: number): void {
    const protocolChanged = next.knobs.protocol !== this.cfg.knobs.protocol;
    this.cfg = next;
    this.configFresh = true;
    this.events.push({ kind: "config", config: next, atMs: nowMs });
    if (protocolChanged) {
      // Heartbeat silence under the old protocol means nothing under the new one.
      for (const m of this.members.values()) m.heartbeatMs = nowMs;
      this.probes.clear();
      this.nextRoundMs = nowMs;
    }
  }

  /**
   * Merge one entry. `spreadNew` says how a member listed for the first time spreads on:
   * - "news": pushed at once to gossip_fanout peers and piggybacked up to the retransmit limit;
   * - "backstop": heard from the member itself, which announces itself to everyone: only
   *   piggybacked SUBJECT_NEWS_SENDS times, for the members that lost its announcement;
   * - "none": from a table the rest of the group already holds (a join reply, the introducer's
   *   own admission): no news to pass on.
   * Changes to a known entry (and a former incarnation of this node declared failed) are news.
   */
  private mergeEntry(infoIn: MemberInfo, nowMs: number, spreadNew: "news" | "backstop" | "none" = "news"): void {
    if (infoIn.id === this.selfId) return this.mergeSelf(infoIn, nowMs);
    if (this.tombstones.has(infoIn.id)) {
      this.counters.ignored_removed++;
      return;
    }
    let info = infoIn;
    if (!isTerminal(info.state) && addressOf(info.id) === addressOf(this.selfId)) {
      // Another id at this node's own address is a former incarnation of this node (a process
      // that restarted, or started over under a new id): this process holds the address, so
      // that one is gone. Declare it failed at once, so no view (and no HyDFS ring) counts this
      // node twice while the others' failure detectors catch up.
      info = { ...info, state: "failed" };
      const known = this.members.get(info.id);
      if (!known || !isTerminal(known.state)) this.counters.failures_declared++;
      spreadNew = "news";
    }
    const local = this.members.get(info.id);
    if (!local) {
      this.members.set(info.id, { ...info, ports: { ...info.ports }, updatedMs: nowMs, heartbeatMs: nowMs, stateSinceMs: nowMs });
      if (!isTerminal(info.state)) this.probeIndex = insertIntoPass(this.probeOrder, this.probeIndex, info.id, this.rng);
      if (spreadNew === "news") this.news(info.id);
      else if (spreadNew === "backstop") this.broadcasts.enqueue(info.id, Math.max(0, this.retransmitLimit() - SUBJECT_NEWS_SENDS));
      if (info.state === "alive" || info.state === "suspect") this.counters.joins++;
      this.events.push({ kind: info.state === "alive" ? "joined" : info.state, id: info.id, incarnation: info.incarnation, atMs: nowMs });
      return;
    }
    const merged = mergeRule(local, info);
    if (merged.outcome === "keep") return;
    local.heartbeat = merged.heartbeat;
    local.heartbeatMs = nowMs;
    local.updatedMs = nowMs;
    if (merged.outcome === "news") {
      const refuted = merged.state === "alive" && local.state === "suspect";
      if (merged.state === "left") this.counters.leaves_seen++;
      this.setState(local, merged.state, merged.incarnation, nowMs);
      if (refuted) this.counters.refutations++;
    }
  }

  /** Somebody talks about me: refute a suspicion, or learn that I was declared failed. */
  private mergeSelf(info: MemberInfo, nowMs: number): void {
    const self = this.self;
    if (info.state === "failed") {
      if (!this.leaving) this.events.push({ kind: "self_failed", id: this.selfId, atMs: nowMs, reason: "was declared failed" });
      return;
    }
    if (info.state === "suspect" && info.incarnation >= self.incarnation && !this.leaving) {
      if (info.incarnation >= MAX_INCARNATION) {
        // A refutation would be past the ceiling, which no peer accepts: start over instead.
        this.events.push({
          kind: "self_failed",
          id: this.selfId,
          atMs: nowMs,
          reason: `was suspected at incarnation ${info.incarnation}, the ceiling, and cannot refute`,
        });
        return;
      }
      self.incarnation = info.incarnation + 1;
      self.updatedMs = nowMs;
      this.news(this.selfId);
      this.events.push({ kind: "refuted", id: this.selfId, incarnation: self.incarnation, atMs: nowMs });
    }
  }

  // ---- dissemination -------------------------------------------------------------------------

  /** Own entry first, then the least-sent queued updates. */
  private piggyback(): MemberInfo[] {
    const entries = [toInfo(this.self)];
    for (const id of this.broadcasts.take(this.maxPiggyback, this.retransmitLimit())) {
      const m = this.members.get(id);
      if (m && id !== this.selfId) entries.push(toInfo(m));
    }
    return entries;
  }

  private retransmitLimit(): number {
    return retransmitLimit(this.members.size, this.retransmitMult);
  }

  /** Push what this step learned to gossip_fanout random peers (not back to its source). */
  private flushFresh(out: Outgoing[], sourceId: string | undefined): void {
    if (this.fresh.size === 0 && !this.configFresh) return;
    const entries = [toInfo(this.self)];
    for (const id of this.fresh) {
      const m = this.members.get(id);
      if (m && id !== this.selfId) entries.push(toInfo(m));
    }
    this.fresh.clear();
    this.configFresh = false;
    const peers = sample(
      this.rng,
      this.livePeers().filter((id) => id !== sourceId),
      this.knobs.gossip_fanout,
    );
    const parts = datagramParts(entries);
    for (const peer of peers)
      for (const part of parts) out.push({ to: addressOf(peer), msg: { type: "gossip", from: this.selfId, cfg: this.cfg, entries: part } });
  }

  /** Alive and suspect members other than self: the ones we probe and gossip to. */
  livePeers(): string[] {
    const ids: string[] = [];
    for (const m of this.members.values()) if (m.id !== this.selfId && !isTerminal(m.state)) ids.push(m.id);
    return ids;
  }

  // ---- admin ---------------------------------------------------------------------------------

  /**
   * A local change of the cluster config (`/set`, `/switch`): a new version that spreads. Throws
   * ConfigCeilingError, changing nothing, when the version is at MAX_CONFIG_VERSION.
   */
  changeConfig(knobs: Knobs, nowMs: number): Outgoing[] {
    if (this.cfg.version >= MAX_CONFIG_VERSION) throw new ConfigCeilingError(this.cfg.version);
    this.adoptConfig({ version: this.cfg.version + 1, origin: this.selfId, knobs }, nowMs);
    const out: Outgoing[] = [];
    this.flushFresh(out, undefined);
    return out;
  }

  /**
   * A join announcement: a ping carrying only the own entry, so the member's ack confirms it heard
   * of this node; an unanswered one is sent again (reannounce), up to JOIN_ANNOUNCE_ATTEMPTS.
   */
  private joinAnnouncement(peer: string, nowMs: number, attempt: number): Outgoing {
    this.fresh.delete(this.selfId);
    const seq = this.probes.announce(peer, nowMs + this.knobs.probe_timeout_ms, attempt);
    return { to: addressOf(peer), msg: { type: "ping", from: this.selfId, cfg: this.cfg, entries: [toInfo(this.self)], seq } };
  }

  /** Send again the join announcements no ack answered in time, to members still listed alive. */
  private reannounce(nowMs: number, out: Outgoing[]): void {
    for (const a of this.probes.unansweredAnnounces(nowMs)) {
      const m = this.members.get(a.target);
      if (a.attempt < JOIN_ANNOUNCE_ATTEMPTS && m && !isTerminal(m.state)) out.push(this.joinAnnouncement(a.target, nowMs, a.attempt + 1));
    }
  }

  /** Announce leaving to every live member; afterwards the node stays silent. */
  leave(nowMs: number): Outgoing[] {
    const self = this.self;
    self.state = "left";
    self.updatedMs = nowMs;
    self.stateSinceMs = nowMs;
    this.events.push({ kind: "left", id: this.selfId, incarnation: self.incarnation, atMs: nowMs });
    this.leaving = true;
    const entries = [toInfo(self)];
    return this.livePeers().map((peer) => ({ to: addressOf(peer), msg: { type: "gossip", from: this.selfId, cfg: this.cfg, entries } }));
  }

  // ---- join ----------------------------------------------------------------------------------

  /**
   * Introducer side: admit a joiner and answer with the table, the config and the ids it must not
   * take back. `sentMs` is the request's send time (secured clusters): a request not sent after
   * the last one admitted for the same id is a replay and gets no answer ("replay"). A node
   * retrying its join sends a new request with a later send time, so retries are answered.
   */
  handleJoin(entry: MemberInfo, nowMs: number, sentMs?: number): { reply: Message; out: Outgoing[] } | JoinRefusal {
    if (sentMs !== undefined) {
      const last = this.joinsAdmitted.get(entry.id);
      if (last && sentMs <= last.sentMs) return "replay";
    }
    const known = this.members.get(entry.id);
    if (this.tombstones.has(entry.id) || (known && isTerminal(known.state))) {
      return {
        reply: {
          type: "join_reply",
          accepted: false,
          reason: `id ${entry.id} was declared ${known?.state ?? "failed"}: rejoin under a new id`,
          cfg: this.cfg,
          entries: [],
          removed: [],
        },
        out: [],
      };
    }
    if (sentMs !== undefined) this.joinsAdmitted.set(entry.id, { sentMs, forgetMs: nowMs + this.tombstoneMs });
    // The joiner announces itself to every member once admitted; the introducer only keeps
    // piggybacking it, for the members that lose that announcement.
    this.mergeEntry({ ...entry, state: "alive" }, nowMs, "none");
    const out: Outgoing[] = [];
    this.flushFresh(out, entry.id);
    const reply: Message = {
      type: "join_reply",
      accepted: true,
      reason: "",
      cfg: this.cfg,
      entries: [...this.members.values()].map(toInfo),
      removed: [...this.tombstones.keys()],
    };
    return { reply, out };
  }

  /** Joiner side. Returns false when the introducer refused this id (rejoin under a new one). */
  applyJoinReply(reply: Extract<Message, { type: "join_reply" }>, nowMs: number): { accepted: boolean; out: Outgoing[] } {
    const out: Outgoing[] = [];
    if (!reply.accepted) return { accepted: false, out };
    // Every node starts at version 0 with its own file's knobs: a joiner takes the group's
    // config unless its own is strictly newer.
    if (!configBeats(this.cfg, reply.cfg) && JSON.stringify(reply.cfg) !== JSON.stringify(this.cfg)) this.adoptConfig(reply.cfg, nowMs);
    // The introducer's tombstones first: no entry (nor any later datagram) brings those ids back.
    for (const id of reply.removed) if (id !== this.selfId && !this.members.has(id)) this.tombstones.set(id, nowMs + this.tombstoneMs);
    // A first join brings the group's table, which the group already holds: no news to spread
    // but the joiner itself, which it announces to every member at once (as leave() does), so the
    // members that joined before it know it within one network delay instead of waiting for
    // piggybacks. A rejoin (a healed partition, a restarted introducer) may bring news to the
    // side this node was on: that spreads as usual.
    const firstJoin = !this.joined;
    this.joined = true;
    for (const info of reply.entries) this.mergeEntry(info, nowMs, firstJoin ? "none" : "news");
    this.news(this.selfId);
    if (firstJoin) for (const peer of this.livePeers()) out.push(this.joinAnnouncement(peer, nowMs, 1));
    else this.flushFresh(out, undefined);
    return { accepted: true, out };
  }

  /** The entry this node sends in a join request. */
  joinEntry(): MemberInfo {
    return toInfo(this.self);
  }
}

/** Entries cut into lists of at most MAX_ENTRIES_PER_DATAGRAM, one per datagram (never none). */
export function datagramParts(entries: MemberInfo[], max = MAX_ENTRIES_PER_DATAGRAM): MemberInfo[][] {
  const parts: MemberInfo[][] = [];
  for (let i = 0; i < entries.length; i += max) parts.push(entries.slice(i, i + max));
  return parts.length > 0 ? parts : [[]];
}

function toInfo(m: MemberInfo): MemberInfo {
  return { id: m.id, incarnation: m.incarnation, state: m.state, heartbeat: m.heartbeat, ports: m.ports };
}

/** `host:udpPort` of a member id. */
export function addressOf(id: string): string {
  const at = id.lastIndexOf("@");
  return at < 0 ? id : id.slice(0, at);
}
