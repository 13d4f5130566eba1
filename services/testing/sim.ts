/**
 * In-process simulator for the membership protocol: many MemberNodes, a virtual clock, and a
 * seeded lossy network that carries every message through the real wire codec. With a secret,
 * each node stamps what it sends with its own (virtual, optionally skewed) wall clock and tags it
 * with the derived datagram key, and receivers apply the same checks as memberd: tag, freshness
 * window, sender binding (the `from` id must name the source address) and join replays. Tests
 * can tap what is sent and inject captured bytes later (replays). Minutes of protocol time run in
 * milliseconds and replay exactly from the seed.
 */
import { datagramTagger, type Tagger } from "../shared/auth.ts";
import { type Rng, seededRng } from "../shared/rng.ts";
import { applyKnobs, DEFAULT_KNOBS, type Knobs } from "../member/cluster_config.ts";
import { DATAGRAM_MAX_AGE_MS } from "../member/limits.ts";
import { MemberNode, type NodeEvent } from "../member/node.ts";
import type { Outgoing } from "../member/membership.ts";
import type { MemberEntry } from "../member/state.ts";
import { type Decoded, decodeDatagram, encodeMessage, type Message, senderMatches, type WireAuth, WireError } from "../member/wire.ts";

export interface SimOptions {
  seed: number;
  knobs?: Partial<Knobs>;
  /** Probability that the network loses a datagram (on top of the nodes' drop_rate_recv). */
  lossRate?: number;
  /** One-way delay, uniform in [min, max] ms. */
  delayMs?: [number, number];
  /** Granularity of node ticks. */
  tickMs?: number;
  secret?: string;
  /** Bytes counted per node (in + out) when true. */
  countBytes?: boolean;
  /** Node numbers that run an introducer, asked in this order. Default [1]. */
  introducers?: number[];
  /** Freshness window of secured messages (with a secret). Default DATAGRAM_MAX_AGE_MS. */
  maxAgeMs?: number;
}

/**
 * Join requests and replies travel as "tcp" (no random loss, but partitions cut them). A join
 * without `replyTo` has its reply discarded (an injected replay).
 */
export type TcpKind = { kind: "join"; replyTo?: number } | { kind: "join_reply" };

interface Flight {
  atMs: number;
  order: number;
  to: string;
  /** Source address `host:port` (a datagram's, for sender binding). */
  from: string;
  bytes: Uint8Array;
  tcp?: TcpKind;
}

/** Why a node dropped a message before its protocol core saw it. */
export type DropReason = "auth" | "stale" | "format" | "sender" | "replay";

export interface SimNode {
  index: number;
  host: string;
  node: MemberNode;
  crashed: boolean;
  paused: boolean;
  /** Datagrams buffered by the kernel while paused. */
  backlog: Flight[];
  events: NodeEvent[];
  bytesIn: number;
  bytesOut: number;
  /** This node's wall clock minus the simulation's (clock skew); set with Sim.setClockOffset. */
  clockOffsetMs: number;
  /** Its stamping and checking of secured messages (undefined without a secret). */
  auth?: WireAuth;
  dropped: Record<DropReason, number>;
}

/** What a tap sees: every message a node sends, encoded, before the network decides its fate. */
export interface Sent {
  from: SimNode;
  to: string;
  bytes: Uint8Array;
  tcp?: TcpKind;
}

export const UDP_PORT = 5000;
export const INTRODUCER_PORT = 6000;
/** Wall-clock time at simulated time 0. */
export const WALL_EPOCH_MS = 1_700_000_000_000;

export class Sim {
  nowMs = 0;
  readonly seed: number;
  readonly nodes: SimNode[] = [];
  private readonly rng: Rng;
  private readonly knobs: Knobs;
  private readonly lossRate: number;
  private readonly delayMs: [number, number];
  private readonly tickMs: number;
  private readonly tagger?: Tagger;
  private readonly maxAgeMs: number;
  private readonly countBytes: boolean;
  private readonly introducers: string[];
  private flights: Flight[] = [];
  private order = 0;
  private groups: Map<number, number> | undefined;
  private readonly byAddress = new Map<string, SimNode>();
  /** Called with every message a node sends (tests capture datagrams to replay them). */
  tap?: (sent: Sent) => void;

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    this.rng = seededRng(opts.seed);
    this.knobs = applyKnobs(DEFAULT_KNOBS, opts.knobs ?? {});
    this.lossRate = opts.lossRate ?? 0;
    this.delayMs = opts.delayMs ?? [1, 3];
    this.tickMs = opts.tickMs ?? 10;
    this.tagger = opts.secret ? datagramTagger(opts.secret) : undefined;
    this.maxAgeMs = opts.maxAgeMs ?? DATAGRAM_MAX_AGE_MS;
    this.countBytes = opts.countBytes ?? false;
    this.introducers = (opts.introducers ?? [1]).map((k) => `10.0.${k >> 8}.${k & 255}:${INTRODUCER_PORT}`);
  }

  /** Node k (1-based) lives at host `10.0.0.k`; node 1 is the introducer. */
  addNode(): SimNode {
    const index = this.nodes.length + 1;
    const host = `10.0.${index >> 8}.${index & 255}`;
    const node = new MemberNode({
      host,
      ports: { udp: UDP_PORT, introducer: INTRODUCER_PORT, http: 8080, hydfs: 10010, rainstorm: 15000 },
      bootMs: WALL_EPOCH_MS + this.nowMs,
      config: { version: 0, origin: "", knobs: this.knobs },
      rng: seededRng((this.seed * 7919 + index) >>> 0),
      nowMs: this.nowMs,
      introducers: this.introducers,
    });
    const sn: SimNode = {
      index,
      host,
      node,
      crashed: false,
      paused: false,
      backlog: [],
      events: [],
      bytesIn: 0,
      bytesOut: 0,
      clockOffsetMs: 0,
      dropped: { auth: 0, stale: 0, format: 0, sender: 0, replay: 0 },
    };
    if (this.tagger) sn.auth = { tagger: this.tagger, wallMs: () => this.wallOf(sn), maxAgeMs: this.maxAgeMs };
    this.nodes.push(sn);
    this.byAddress.set(`${host}:${UDP_PORT}`, sn);
    this.byAddress.set(`${host}:${INTRODUCER_PORT}`, sn);
    return sn;
  }

  addNodes(n: number): SimNode[] {
    return Array.from({ length: n }, () => this.addNode());
  }

  node(k: number): SimNode {
    const sn = this.nodes[k - 1];
    if (!sn) throw new Error(`no sim node ${k}`);
    return sn;
  }

  /** A node's wall clock: the simulation's plus its offset. */
  wallOf(sn: SimNode): number {
    return WALL_EPOCH_MS + this.nowMs + sn.clockOffsetMs;
  }

  /** Skew node k's wall clock by `ms` (positive = ahead). Its monotonic clock is unaffected. */
  setClockOffset(k: number, ms: number): void {
    this.node(k).clockOffsetMs = ms;
  }

  /** Total drops for `reason` over every node. */
  droppedTotal(reason: DropReason): number {
    return this.nodes.reduce((n, sn) => n + sn.dropped[reason], 0);
  }

  /**
   * Put bytes on the wire as if sent from `from` (`host:port`, possibly spoofed) to node k: a
   * replay of captured bytes, or a forgery. A join (`tcp`) gets its reply discarded.
   */
  inject(k: number, bytes: Uint8Array, from: string, tcp?: TcpKind): void {
    const dest = this.node(k);
    const port = tcp ? INTRODUCER_PORT : UDP_PORT;
    this.flights.push({ atMs: this.nowMs, order: this.order++, to: `${dest.host}:${port}`, from, bytes, tcp });
  }

  crash(k: number): void {
    const sn = this.node(k);
    sn.crashed = true;
    sn.backlog = [];
  }
  /** Node k announces it leaves, then its process exits. */
  leave(k: number): void {
    const sn = this.node(k);
    this.send(sn, sn.node.core.leave(this.nowMs));
    sn.events.push(...sn.node.drainEvents());
    sn.crashed = true;
  }

  pause(k: number): void {
    this.node(k).paused = true;
  }
  resume(k: number): void {
    const sn = this.node(k);
    sn.paused = false;
    const backlog = sn.backlog.splice(0);
    for (const f of backlog) this.deliver(sn, f);
  }

  /** Cut the network between groups: node k is in group groupOf(k); only same-group traffic passes. */
  partition(groupOf: (k: number) => number): void {
    this.groups = new Map(this.nodes.map((sn) => [sn.index, groupOf(sn.index)]));
  }
  heal(): void {
    this.groups = undefined;
  }

  /** Advance virtual time by `ms`, ticking every live node every tickMs. */
  run(ms: number): void {
    const end = this.nowMs + ms;
    while (this.nowMs < end) {
      this.nowMs = Math.min(end, this.nowMs + this.tickMs);
      this.deliverDue();
      for (const sn of this.nodes) {
        if (sn.crashed || sn.paused) continue;
        this.send(sn, sn.node.tick(this.nowMs, this.wallOf(sn)));
        const join = sn.node.joinDue(this.nowMs);
        if (join) this.transmit(sn, join.to, join.msg, { kind: "join", replyTo: sn.index });
        sn.events.push(...sn.node.drainEvents());
      }
    }
  }

  /** Run until `cond` holds (checked every tick) or `limitMs` passes; returns the time taken or -1. */
  runUntil(cond: () => boolean, limitMs: number): number {
    const start = this.nowMs;
    while (this.nowMs - start < limitMs) {
      if (cond()) return this.nowMs - start;
      this.run(this.tickMs);
    }
    return cond() ? this.nowMs - start : -1;
  }

  private send(from: SimNode, out: Outgoing[]): void {
    for (const o of out) this.transmit(from, o.to, o.msg);
  }

  private transmit(from: SimNode, to: string, msg: Message, tcp?: TcpKind): void {
    const bytes = encodeMessage(msg, from.auth);
    if (this.countBytes) from.bytesOut += bytes.length;
    this.tap?.({ from, to, bytes, tcp });
    const dest = this.byAddress.get(to);
    if (!dest) return;
    if (this.groups && this.groups.get(from.index) !== this.groups.get(dest.index)) return;
    if (!tcp && this.rng.next() < this.lossRate) return;
    const [lo, hi] = this.delayMs;
    const delay = lo + this.rng.next() * (hi - lo);
    const source = `${from.host}:${tcp ? INTRODUCER_PORT : UDP_PORT}`;
    this.flights.push({ atMs: this.nowMs + delay, order: this.order++, to, from: source, bytes, tcp });
  }

  private deliverDue(): void {
    if (this.flights.length === 0) return;
    const due: Flight[] = [];
    const later: Flight[] = [];
    for (const f of this.flights) (f.atMs <= this.nowMs ? due : later).push(f);
    this.flights = later;
    due.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
    for (const f of due) {
      const dest = this.byAddress.get(f.to);
      if (!dest || dest.crashed) continue;
      if (dest.paused) {
        if (!f.tcp) dest.backlog.push(f);
        continue;
      }
      this.deliver(dest, f);
    }
  }

  private deliver(dest: SimNode, f: Flight): void {
    if (this.countBytes) dest.bytesIn += f.bytes.length;
    let decoded: Decoded;
    try {
      decoded = decodeDatagram(f.bytes, dest.auth);
    } catch (err) {
      dest.dropped[err instanceof WireError ? err.kind : "format"]++;
      return;
    }
    const { msg } = decoded;
    const wall = this.wallOf(dest);
    if (!f.tcp) {
      // Same check as memberd: a datagram's `from` names its source address and port.
      const colon = f.from.lastIndexOf(":");
      if (!senderMatches(msg, f.from.slice(0, colon), Number(f.from.slice(colon + 1)), (h) => [h])) {
        dest.dropped.sender++;
        return;
      }
    }
    if (f.tcp?.kind === "join") {
      const handled = dest.node.handleJoin(msg, this.nowMs, decoded.sentMs);
      if ("refused" in handled) {
        dest.dropped[handled.refused === "replay" ? "replay" : "format"]++;
        return;
      }
      this.send(dest, handled.out);
      if (f.tcp.replyTo !== undefined) {
        const requester = this.node(f.tcp.replyTo);
        this.transmit(dest, `${requester.host}:${INTRODUCER_PORT}`, handled.reply, { kind: "join_reply" });
      }
    } else if (f.tcp?.kind === "join_reply") {
      this.send(dest, dest.node.onJoinReply(msg, this.nowMs, wall));
    } else {
      this.send(dest, dest.node.receive(msg, this.nowMs, wall));
    }
    dest.events.push(...dest.node.drainEvents());
  }

  // ---- views ---------------------------------------------------------------------------------

  live(): SimNode[] {
    return this.nodes.filter((sn) => !sn.crashed);
  }

  /** The entry node `k` holds about node `j`'s current id (or undefined). */
  entryAbout(k: number, j: number): MemberEntry | undefined {
    return this.node(k).node.core.get(this.node(j).node.id);
  }

  /** True when every live node lists every live node as alive (and nothing else as alive/suspect). */
  converged(): boolean {
    const live = this.live();
    const ids = new Set(live.map((sn) => sn.node.id));
    return live.every((sn) => {
      const listed = sn.node.core.list().filter((m) => m.state === "alive");
      return listed.length === ids.size && listed.every((m) => ids.has(m.id));
    });
  }

  /** Human-readable description for failure messages: always includes the seed. */
  describe(): string {
    return `seed=${this.seed} t=${this.nowMs}ms`;
  }
}
