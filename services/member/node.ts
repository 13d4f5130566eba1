/**
 * A member node: the protocol core plus joining. Still pure (no I/O): the driver and the
 * simulator ask it when to send a join request and hand it the reply.
 *
 * Join rules:
 * - a node that has not been admitted yet asks an introducer (round-robin over the configured
 *   ones, skipping itself) every `joinRetryMs` until one answers;
 * - a node that sees no live member at any introducer address asks again every `joinRetryMs`:
 *   this is how a restarted introducer (a new member with an empty table) and the two sides of
 *   a healed partition find each other again;
 * - a node refused by the introducer, or told by anyone that it was declared failed, starts over
 *   as a new member (`host:port@<now>`), keeping the cluster config it knew; so does a node whose
 *   own incarnation or heartbeat reached its ceiling (limits.ts);
 * - in a secured cluster every join request carries its send time: the introducer answers a
 *   request for an id only when it was sent after the last one it admitted for that id, so a
 *   captured request replayed within the freshness window gets no answer, while a node that
 *   retries (a lost reply, a restarted introducer) sends a new, later request and is answered.
 *
 * Readiness (readiness.ts): whether this node's view is current, the condition hydfsd and
 * rainstormd wait for before they coordinate anything. A joiner is ready once an introducer
 * accepted its current id; a founder (an introducer) once the peers it knew are back or
 * `rejoinWaitMs` has passed. It is latched per id: starting over under a new id ends it.
 */
import type { Rng } from "../shared/rng.ts";
import type { ClusterConfig } from "./cluster_config.ts";
import { MEMBER_SETTINGS } from "./config.ts";
import { addressOf, type JoinRefusal, type MemberEvent, Membership, type Outgoing } from "./membership.ts";
import { type KnownPeers, viewReadiness } from "./readiness.ts";
import { makeNodeId, type MemberPorts } from "./state.ts";
import type { Message } from "./wire.ts";

export type NodeEvent =
  | MemberEvent
  | { kind: "renewed"; from: string; to: string; atMs: number; reason: string }
  /** This node's view became current (`ready`), or stopped being so (it starts over under a new id). */
  | { kind: "view_ready"; ready: boolean; reason: string; members: number; atMs: number };

/** The introducer's answer to a join frame, or why it gives none. */
export type JoinHandling = { reply: Message; out: Outgoing[] } | { refused: "not_join" | JoinRefusal };

export interface MemberNodeOptions {
  host: string;
  ports: MemberPorts;
  bootMs: number;
  config: ClusterConfig;
  rng: Rng;
  nowMs: number;
  /** Introducer addresses `host:tcpPort`, tried in order. */
  introducers: string[];
  /** Pause between join attempts while no introducer answers. Default 1000 ms. */
  joinRetryMs?: number;
  /**
   * This node runs an introducer, so it may found the group and judges its readiness by the
   * peers it knew. A node with no other introducer to ask is a founder anyway. Default false.
   */
  isIntroducer?: boolean;
  /** Founder: the live peers (`host:udpPort`) it knew before this start; [] = a new group. Default []. */
  knownPeers?: KnownPeers;
  /** Founder: how long it waits for `knownPeers` to come back before its view counts as current. Default 5000 ms. */
  rejoinWaitMs?: number;
}

export class MemberNode {
  core: Membership;
  private readonly opts: MemberNodeOptions;
  private readonly introducers: string[];
  private readonly joinRetryMs: number;
  private admitted = false;
  private nextJoinMs: number;
  private joinCursor = 0;
  private readonly events: NodeEvent[] = [];
  private readonly founder: boolean;
  private readonly rejoinWaitMs: number;
  /** An introducer accepted the join of the current id. */
  private joinAccepted = false;
  /** Founder: the peers known when the current id started. */
  private knownPeers: KnownPeers;
  /** When the current id started (this node's monotonic clock). */
  private idSinceMs: number;
  private ready = false;
  private waitingFor = "";

  constructor(opts: MemberNodeOptions) {
    this.opts = opts;
    this.joinRetryMs = opts.joinRetryMs ?? 1000;
    this.core = this.newCore(opts.bootMs, opts.config, opts.nowMs);
    const self = `${opts.host}:${opts.ports.introducer}`;
    this.introducers = opts.introducers.filter((a) => a !== self);
    // An introducer with no other introducer to ask is the group's first member.
    this.admitted = this.introducers.length === 0;
    this.nextJoinMs = opts.nowMs;
    this.founder = opts.isIntroducer === true || this.introducers.length === 0;
    this.rejoinWaitMs = opts.rejoinWaitMs ?? MEMBER_SETTINGS.rejoin_wait_ms.default;
    this.knownPeers = opts.knownPeers ?? [];
    this.idSinceMs = opts.nowMs;
    this.checkReadiness(opts.nowMs);
  }

  private newCore(bootMs: number, config: ClusterConfig, nowMs: number): Membership {
    return new Membership({
      selfId: makeNodeId(this.opts.host, this.opts.ports.udp, bootMs),
      ports: this.opts.ports,
      config,
      rng: this.opts.rng,
      nowMs,
    });
  }

  get id(): string {
    return this.core.selfId;
  }
  get isAdmitted(): boolean {
    return this.admitted;
  }
  /** This node's membership view is current (readiness.ts): the other daemons may coordinate. */
  get isViewReady(): boolean {
    return this.ready;
  }
  /** While not ready: what readiness still waits for (for logs); "" once ready. */
  get viewWaitingFor(): string {
    return this.ready ? "" : this.waitingFor;
  }

  tick(nowMs: number, wallMs: number): Outgoing[] {
    const out = this.core.tick(nowMs);
    this.collect(nowMs, wallMs);
    return out;
  }

  receive(msg: Message, nowMs: number, wallMs: number): Outgoing[] {
    const out = this.core.receive(msg, nowMs);
    this.collect(nowMs, wallMs);
    return out;
  }

  /** Leave the group: announce left to every live member (the core's leave), with its event. */
  leave(nowMs: number, wallMs: number): Outgoing[] {
    const out = this.core.leave(nowMs);
    this.collect(nowMs, wallMs);
    return out;
  }

  /** The introducer to ask now (and the request), or undefined when no join is due. */
  joinDue(nowMs: number): { to: string; msg: Message } | undefined {
    if (this.introducers.length === 0 || this.core.isLeaving || nowMs < this.nextJoinMs) return undefined;
    if (this.admitted && this.introducers.some((a) => this.knowsIntroducer(a))) return undefined;
    this.nextJoinMs = nowMs + this.joinRetryMs;
    const to = this.introducers[this.joinCursor++ % this.introducers.length]!;
    return { to, msg: { type: "join", entry: this.core.joinEntry() } };
  }

  private knowsIntroducer(address: string): boolean {
    const colon = address.lastIndexOf(":");
    return this.core.knowsLiveMemberAt(address.slice(0, colon), Number(address.slice(colon + 1)));
  }

  /** The reply of an introducer (the request's answer). */
  onJoinReply(reply: Message, nowMs: number, wallMs: number): Outgoing[] {
    if (reply.type !== "join_reply") return [];
    const { accepted, out } = this.core.applyJoinReply(reply, nowMs);
    if (!accepted) {
      this.renew(nowMs, wallMs, `was refused by the introducer (${reply.reason})`);
      return [];
    }
    this.admitted = true;
    this.joinAccepted = true;
    this.collect(nowMs, wallMs);
    return out;
  }

  /** Introducer side of a join; `sentMs` is the request's send time (secured clusters only). */
  handleJoin(req: Message, nowMs: number, sentMs?: number): JoinHandling {
    if (req.type !== "join") return { refused: "not_join" };
    const handled = this.core.handleJoin(req.entry, nowMs, sentMs);
    return typeof handled === "string" ? { refused: handled } : handled;
  }

  drainEvents(): NodeEvent[] {
    return this.events.splice(0, this.events.length);
  }

  private collect(nowMs: number, wallMs: number): void {
    const evs = this.core.drainEvents();
    this.events.push(...evs);
    const failed = evs.find((e): e is Extract<MemberEvent, { kind: "self_failed" }> => e.kind === "self_failed");
    if (failed) this.renew(nowMs, wallMs, failed.reason);
    this.checkReadiness(nowMs);
  }

  /** Latch readiness once the rules of readiness.ts hold for the current id. */
  private checkReadiness(nowMs: number): void {
    if (this.ready) return;
    const live = this.core.livePeers();
    const r = viewReadiness({
      joinAccepted: this.joinAccepted,
      founder: this.founder,
      knownPeers: this.knownPeers,
      livePeers: new Set(live.map(addressOf)),
      elapsedMs: nowMs - this.idSinceMs,
      rejoinWaitMs: this.rejoinWaitMs,
    });
    if (!r.ready) {
      this.waitingFor = r.waitingFor;
      return;
    }
    this.ready = true;
    this.waitingFor = "";
    this.events.push({ kind: "view_ready", ready: true, reason: r.reason, members: live.length + 1, atMs: nowMs });
  }

  /** Start over as a new member under a fresh id, then rejoin. */
  private renew(nowMs: number, wallMs: number, reason: string): void {
    const from = this.core.selfId;
    // A founder's new id waits for the peers its old one knew (they rejoin through it).
    if (this.founder) this.knownPeers = [...new Set(this.core.livePeers().map(addressOf))].sort();
    const bootMs = Math.max(wallMs, this.opts.bootMs + 1);
    this.opts.bootMs = bootMs;
    this.core = this.newCore(bootMs, this.core.config, nowMs);
    this.admitted = this.introducers.length === 0;
    this.nextJoinMs = nowMs;
    this.joinAccepted = false;
    this.idSinceMs = nowMs;
    if (this.ready) {
      this.ready = false;
      this.events.push({ kind: "view_ready", ready: false, reason: `starting over as a new member (${reason})`, members: 1, atMs: nowMs });
    }
    this.events.push({ kind: "renewed", from, to: this.core.selfId, atMs: nowMs, reason });
  }
}
