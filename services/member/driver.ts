/**
 * memberd's I/O shell around the pure MemberNode: the UDP socket, the tick timer, the
 * introducer's TCP server and the join client, metrics, the change stream and an introducer's
 * peers file (readiness.ts decides with it; this file only reads and writes it). No protocol
 * decisions are made here.
 */
import type { Socket, TCPSocketListener } from "bun";
import { readFileSync } from "node:fs";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { join as joinPath } from "node:path";
import { writePrivateFileAtomically } from "../shared/files.ts";
import { TAG_BYTES } from "../shared/auth.ts";
import type { NodeConfig } from "../node_config.ts";
import { bindError } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { osRng } from "../shared/rng.ts";
import type { Knobs } from "./cluster_config.ts";
import { addressOf, ConfigCeilingError, type Outgoing } from "./membership.ts";
import { MemberNode, type NodeEvent } from "./node.ts";
import { decodePeersFile, encodePeersFile, type KnownPeers } from "./readiness.ts";
import {
  type Decoded,
  decodeDatagram,
  encodeMessage,
  isJoinAuthRefusal,
  JOIN_REFUSED_AUTH_FRAME,
  type Message,
  type MessageType,
  SENT_MS_BYTES,
  senderMatches,
  WireError,
  type WireAuth,
  wireAuth,
} from "./wire.ts";

/** How often the core is ticked. Finer costs CPU; coarser delays probes and timers. */
export const TICK_MS = 20;
/**
 * Largest join request the introducer reads. A request is one entry (an id of at most
 * MAX_ID_LENGTH characters, a few numbers) plus the send time and tag: under 400 bytes. The
 * length prefix is checked first, so an unauthenticated connection holds at most this much.
 */
export const MAX_JOIN_REQUEST_BYTES = 4096;
/**
 * Largest join reply a joiner reads: it carries the whole table (about 70 bytes per member) and
 * the recently removed ids. 4 MiB covers tens of thousands of members; the joiner only reads
 * replies from the introducers it chose to ask.
 */
export const MAX_JOIN_REPLY_BYTES = 4 * 1024 * 1024;
/** How long a looked-up host name's addresses are trusted for sender binding. Longer = fewer lookups, slower to follow a DNS change. */
export const HOST_CACHE_MS = 60_000;
/** Most host names kept for sender binding; names beyond it are not looked up (their datagrams are dropped). */
export const MAX_HOSTS_CACHED = 4096;
/**
 * An introducer rewrites its peers file at most this often, and only when its set of live peers
 * changed. Shorter keeps the file closer to the table (a restart right after a failure waits less
 * often for a peer that is already dead, at most rejoin_wait_ms); longer writes the disk less.
 */
export const PEERS_WRITE_MIN_INTERVAL_MS = 1000;
/**
 * A leaving node sends its `left` news to every live member at once and once more this long
 * after (a lost datagram would otherwise leave one peer to detect a failure instead). Shorter
 * than the exit delay after a leave (LEAVE_FLUSH_MS), so the repeat goes out before the socket
 * closes.
 */
export const LEAVE_RESEND_MS = 50;
/** After announcing left, how long memberd keeps its socket open before it stops (the repeat, the peers' pushes). */
export const LEAVE_FLUSH_MS = 100;
/**
 * The introducer logs refused joins (bad tag: another cluster_secret) at most this often per
 * joiner address; the line counts the ones in between. At most JOIN_REFUSAL_LOG_ADDRESSES
 * addresses are remembered (then the memory starts over), so a flood costs bounded memory and
 * at most that many lines per period.
 */
export const JOIN_REFUSAL_LOG_EVERY_MS = 10_000;
export const JOIN_REFUSAL_LOG_ADDRESSES = 256;

/** Where an introducer's memberd keeps the live peers it knows (readiness.ts), under its data_dir. */
export function peersFilePath(dataDir: string): string {
  return joinPath(dataDir, "memberd", "peers.json");
}

/**
 * The peers an introducer's peers file lists: [] when there is none (a new group), "unknown"
 * (and a warning) when it cannot be read or parsed, so readiness waits rejoin_wait_ms.
 */
export function loadKnownPeers(path: string, log: Logger): KnownPeers {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    log.warn(`peers file ${path}: cannot read (${(err as Error).message}); waiting rejoin_wait_ms for peers before this node's view counts as current`);
    return "unknown";
  }
  try {
    return decodePeersFile(text);
  } catch (err) {
    log.warn(`peers file ${path}: ${(err as Error).message}; waiting rejoin_wait_ms for peers before this node's view counts as current`);
    return "unknown";
  }
}

/** Write the peers file atomically (temp file, fsync, rename), readable by its owner only. */
export function writePeersFile(path: string, peers: Iterable<string>): void {
  writePrivateFileAtomically(path, encodePeersFile(peers));
}

export interface TrafficCounters {
  datagramsIn: Record<string, number>;
  datagramsOut: Record<string, number>;
  bytesIn: Record<string, number>;
  bytesOut: Record<string, number>;
  droppedAuth: number;
  droppedMalformed: number;
  /** Secured datagrams and join frames sent more than DATAGRAM_MAX_AGE_MS from this node's clock (replays, or clocks apart). */
  droppedStale: number;
  /** Datagrams whose `from` id does not name the address and port they came from. */
  droppedSender: number;
  /** Join requests not sent after the last one admitted for the same id (replays). */
  droppedReplay: number;
  /** Join connections closed because the announced frame was larger than MAX_JOIN_REQUEST_BYTES. */
  joinFramesTooBig: number;
  /** Join frames refused because their tag did not verify (another cluster_secret): answered with the fixed refusal frame. */
  joinsRefusedAuth: number;
  sendErrors: number;
  joinsServed: number;
  joinAttemptsFailed: number;
}

/** An admin request the daemon refuses; the admin API answers with `status` and `{error: message}`. */
export class RefusedError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export type WatchEvent = Record<string, unknown>;

export class MemberDaemon {
  readonly node: MemberNode;
  readonly cfg: NodeConfig;
  readonly configPath: string;
  readonly traffic: TrafficCounters = {
    datagramsIn: {},
    datagramsOut: {},
    bytesIn: {},
    bytesOut: {},
    droppedAuth: 0,
    droppedMalformed: 0,
    droppedStale: 0,
    droppedSender: 0,
    droppedReplay: 0,
    joinFramesTooBig: 0,
    joinsRefusedAuth: 0,
    sendErrors: 0,
    joinsServed: 0,
    joinAttemptsFailed: 0,
  };
  private readonly log: Logger;
  private readonly auth?: WireAuth;
  private readonly hosts = new HostAddresses();
  private udp?: Bun.udp.Socket<"uint8array">;
  private introducer?: TCPSocketListener<{ frame: FrameReader }>;
  private timer?: Timer;
  private joinInFlight = false;
  private joinFailures = 0;
  /** Consecutive join attempts answered with the authentication refusal. */
  private joinAuthRefusals = 0;
  private announcedJoin = false;
  /** Introducer: per joiner address, when its last refusal was logged and how many came since. */
  private readonly refusals = new Map<string, { loggedMs: number; unlogged: number }>();
  private leaveResend?: Timer;
  private readonly watchers = new Set<(ev: WatchEvent) => void>();
  private readonly clockOffsetMs = Date.now() - performance.now();
  private stopped = false;
  /** An introducer's peers file (undefined on other nodes), and what it holds now. */
  private readonly peersPath?: string;
  private peersKey = "";
  private peersCheckedMs = -Infinity;
  private peersWriteFailing = false;

  constructor(cfg: NodeConfig, configPath: string, log: Logger) {
    this.cfg = cfg;
    this.configPath = configPath;
    this.log = log;
    this.auth = wireAuth(cfg.cluster_secret);
    let knownPeers: KnownPeers = [];
    if (cfg.is_introducer) {
      this.peersPath = peersFilePath(cfg.data_dir);
      knownPeers = loadKnownPeers(this.peersPath, log);
      if (knownPeers !== "unknown") this.peersKey = knownPeers.join(",");
    }
    this.node = new MemberNode({
      host: cfg.host,
      ports: cfg.ports,
      bootMs: Date.now(),
      config: { version: 0, origin: "", knobs: cfg.membership },
      rng: osRng(),
      nowMs: performance.now(),
      introducers: cfg.introducers,
      joinRetryMs: cfg.join_retry_ms,
      isIntroducer: cfg.is_introducer,
      knownPeers,
      rejoinWaitMs: cfg.rejoin_wait_ms,
    });
  }

  /** Local monotonic ms -> wall-clock ms, for display only. */
  wallOf(monoMs: number): number {
    return Math.round(this.clockOffsetMs + monoMs);
  }

  async start(): Promise<void> {
    if (!this.auth) this.log.warn("no cluster_secret set: this cluster is open to anyone who can reach its ports");
    try {
      this.udp = await Bun.udpSocket({
        hostname: this.cfg.host,
        port: this.cfg.ports.udp,
        binaryType: "uint8array",
        socket: {
          data: (_sock, data, port, address) => this.onDatagram(data, address, port),
          // ICMP port-unreachable from a dead peer surfaces here on loopback: count, never crash.
          error: () => {
            this.traffic.sendErrors++;
          },
        },
      });
    } catch (err) {
      throw bindError("udp", this.cfg.host, this.cfg.ports.udp, err);
    }
    if (this.cfg.is_introducer) {
      try {
        this.startIntroducer();
      } catch (err) {
        this.udp.close();
        throw bindError("introducer", this.cfg.host, this.cfg.ports.introducer, err);
      }
    }
    this.timer = setInterval(() => this.onTick(), TICK_MS);
    this.log.info(`member ${this.node.id} up (protocol ${this.node.core.knobs.protocol}, suspicion ${this.node.core.knobs.suspicion ? "on" : "off"})`);
    if (!this.node.isViewReady) this.log.info(`membership view not current yet: waiting for ${this.node.viewWaitingFor}`);
    // Events from construction (a founder's view may be current at once): logged and published now.
    this.afterStep();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.leaveResend);
    this.introducer?.stop(true);
    this.udp?.close();
    // Followers (hydfsd, rainstormd) stop with the node when it left; otherwise they keep the
    // last list and wait for a memberd to come back.
    for (const w of this.watchers) w({ event: "closed", reason: this.node.core.isLeaving ? "left" : "stopped" });
    this.watchers.clear();
  }

  /** Resolves once this node's membership view is current (readiness.ts): memberd's ready line follows. */
  whenViewReady(): Promise<void> {
    if (this.node.isViewReady) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.watch((ev) => {
        if (ev.event === "ready" && ev.ready === true) {
          off();
          resolve();
        }
      });
    });
  }

  // ---- UDP -----------------------------------------------------------------------------------

  private onDatagram(bytes: Uint8Array, address: string, port: number): void {
    if (this.stopped) return;
    const decoded = this.decodeCounted(bytes);
    if (!decoded) return;
    const { msg } = decoded;
    if (!senderMatches(msg, address, port, (host) => this.hosts.get(host))) {
      // A datagram must come from the address its sender id names (a replay from elsewhere, a forgery).
      this.traffic.droppedSender++;
      return;
    }
    count(this.traffic.datagramsIn, this.traffic.bytesIn, msg.type, bytes.length);
    const now = performance.now();
    this.send(this.node.receive(msg, now, Date.now()));
    this.afterStep();
  }

  /** Decode, or count why not (bad tag, stale, malformed) and return undefined. */
  private decodeCounted(bytes: Uint8Array): Decoded | undefined {
    try {
      return decodeDatagram(bytes, this.auth);
    } catch (err) {
      const kind = err instanceof WireError ? err.kind : "format";
      if (kind === "auth") this.traffic.droppedAuth++;
      else if (kind === "stale") this.traffic.droppedStale++;
      else this.traffic.droppedMalformed++;
      return undefined;
    }
  }

  private send(out: Outgoing[]): void {
    if (!this.udp || this.stopped) return;
    for (const o of out) {
      const bytes = encodeMessage(o.msg, this.auth);
      const colon = o.to.lastIndexOf(":");
      try {
        this.udp.send(bytes, Number(o.to.slice(colon + 1)), o.to.slice(0, colon));
        count(this.traffic.datagramsOut, this.traffic.bytesOut, o.msg.type, bytes.length);
      } catch {
        this.traffic.sendErrors++;
      }
    }
  }

  private onTick(): void {
    if (this.stopped || this.node.core.isLeaving) return;
    const now = performance.now();
    this.send(this.node.tick(now, Date.now()));
    const join = this.node.joinDue(now);
    if (join && !this.joinInFlight) void this.join(join.to, join.msg);
    this.afterStep();
    this.persistPeers(now);
  }

  /**
   * An introducer keeps its live peers in its peers file, so that after a restart its readiness
   * waits for them (readiness.ts). Written only while the view is current (a restart before that
   * keeps the expectations of the last good view), only when the set changed; the set is
   * compared at most once per PEERS_WRITE_MIN_INTERVAL_MS. A failed write is logged once and
   * tried again at the next comparison.
   */
  private persistPeers(nowMs: number): void {
    if (!this.peersPath || !this.node.isViewReady || nowMs - this.peersCheckedMs < PEERS_WRITE_MIN_INTERVAL_MS) return;
    this.peersCheckedMs = nowMs;
    const peers = [...new Set(this.node.core.livePeers().map(addressOf))].sort();
    const key = peers.join(",");
    if (key === this.peersKey) return;
    try {
      writePeersFile(this.peersPath, peers);
      this.peersKey = key;
      if (this.peersWriteFailing) this.log.info(`peers file ${this.peersPath} written again`);
      this.peersWriteFailing = false;
    } catch (err) {
      if (!this.peersWriteFailing)
        this.log.warn(`peers file ${this.peersPath}: cannot write (${(err as Error).message}); retrying every ${PEERS_WRITE_MIN_INTERVAL_MS} ms`);
      this.peersWriteFailing = true;
    }
  }

  private afterStep(): void {
    for (const ev of this.node.drainEvents()) this.onEvent(ev);
  }

  private onEvent(ev: NodeEvent): void {
    switch (ev.kind) {
      case "config":
        this.log.info(
          `cluster config v${ev.config.version} from ${ev.config.origin || "file"}: protocol ${ev.config.knobs.protocol}, suspicion ${ev.config.knobs.suspicion ? "on" : "off"}`,
        );
        this.publish({ event: "config", version: ev.config.version, knobs: ev.config.knobs });
        return;
      case "renewed":
        this.log.warn(`this node ${ev.reason} as ${ev.from}; rejoining as ${ev.to}`);
        this.publish({ event: "renewed", from: ev.from, to: ev.to });
        return;
      case "self_failed":
        return;
      case "view_ready":
        if (ev.ready) this.log.info(`membership view current: ${ev.members} members (${ev.reason})`);
        else this.log.warn(`membership view not current: ${ev.reason}`);
        this.publish({ event: "ready", ready: ev.ready });
        return;
      case "refuted":
        this.log.info(`refuted a suspicion of this node (incarnation ${ev.incarnation})`);
        this.publish({ event: "change", kind: "refuted", id: ev.id, incarnation: ev.incarnation });
        return;
      default: {
        const level = ev.kind === "failed" || ev.kind === "suspect" ? "warn" : "info";
        this.log[level](`${ev.id} ${ev.kind} (incarnation ${ev.incarnation})`);
        const m = this.node.core.get(ev.id);
        this.publish({ event: "change", kind: ev.kind, id: ev.id, incarnation: ev.incarnation, ports: m?.ports });
      }
    }
  }

  // ---- join (TCP) ----------------------------------------------------------------------------

  private startIntroducer(): void {
    this.introducer = Bun.listen<{ frame: FrameReader }>({
      hostname: this.cfg.host,
      port: this.cfg.ports.introducer,
      socket: {
        open: (s) => {
          s.data = { frame: new FrameReader(MAX_JOIN_REQUEST_BYTES) };
          s.timeout(Math.ceil(this.cfg.join_timeout_ms / 1000) + 1);
        },
        data: (s, chunk) => {
          const frame = s.data.frame.push(chunk);
          if (frame === "too_big") {
            this.traffic.joinFramesTooBig++;
            return void s.end();
          }
          if (frame) this.serveJoin(s, frame, s.remoteAddress);
        },
        timeout: (s) => void s.end(),
        error: () => {},
      },
    });
    this.log.info(`introducer listening on ${this.cfg.host}:${this.cfg.ports.introducer}`);
  }

  private serveJoin(s: Socket<{ frame: FrameReader }>, frame: Uint8Array, from: string): void {
    let req: Decoded;
    try {
      req = decodeDatagram(frame, this.auth);
    } catch (err) {
      const kind = err instanceof WireError ? err.kind : "format";
      // A tag this introducer cannot verify, or a tagged frame at an introducer without a
      // secret: the two sides have different secrets. Say so on both sides.
      if (kind === "auth" || (!this.auth && looksTagged(frame))) {
        this.traffic.droppedAuth++;
        this.refuseJoinAuth(from, frame);
        return void s.end(frameOf(JOIN_REFUSED_AUTH_FRAME));
      }
      if (kind === "stale") this.traffic.droppedStale++;
      else this.traffic.droppedMalformed++;
      return void s.end();
    }
    const handled = this.node.handleJoin(req.msg, performance.now(), req.sentMs);
    if ("refused" in handled) {
      if (handled.refused === "replay") this.traffic.droppedReplay++;
      else this.traffic.droppedMalformed++;
      return void s.end();
    }
    this.traffic.joinsServed++;
    this.send(handled.out);
    this.afterStep();
    s.end(frameOf(encodeMessage(handled.reply, this.auth)));
  }

  /** Introducer: log a join refused for its tag, at most once per JOIN_REFUSAL_LOG_EVERY_MS (counting the rest). */
  private refuseJoinAuth(from: string, frame: Uint8Array): void {
    this.traffic.joinsRefusedAuth++;
    const now = performance.now();
    // The id the frame names, unverified: on one machine every joiner connects from 127.0.0.1.
    const claimed = claimedJoinId(frame);
    const key = `${from} ${claimed ? addressOf(claimed) : ""}`;
    const seen = this.refusals.get(key);
    if (seen && now - seen.loggedMs < JOIN_REFUSAL_LOG_EVERY_MS) {
      seen.unlogged++;
      return;
    }
    const more = seen && seen.unlogged > 0 ? ` (${seen.unlogged} more from it since the last report)` : "";
    if (!seen && this.refusals.size >= JOIN_REFUSAL_LOG_ADDRESSES) this.refusals.clear();
    this.refusals.set(key, { loggedMs: now, unlogged: 0 });
    this.log.warn(
      `join refused from ${from}: authentication failed (check cluster_secret); the join was for ${claimed?.replace(/[\x00-\x1f\x7f]/g, "?") ?? "an unreadable id"} (unverified)${more}`,
    );
  }

  private async join(to: string, msg: Message): Promise<void> {
    this.joinInFlight = true;
    try {
      const replyBytes = await requestFrame(to, encodeMessage(msg, this.auth), this.cfg.join_timeout_ms);
      if (isJoinAuthRefusal(replyBytes)) {
        // Unauthenticated (anyone could send it): it only makes this node say so and ask again later.
        this.traffic.joinAttemptsFailed++;
        this.joinAuthRefusals++;
        if (this.joinAuthRefusals === 1 || this.joinAuthRefusals % 10 === 0) {
          this.log.error(
            `join refused: authentication failed (check cluster_secret): introducer ${to} cannot verify this node's join, so their secrets differ (config cluster_secret, env RAINSTORM_SECRET); retrying every ${this.cfg.join_retry_ms} ms, not ready (attempt ${this.joinAuthRefusals})`,
          );
        }
        return;
      }
      this.joinAuthRefusals = 0;
      const reply = decodeDatagram(replyBytes, this.auth).msg;
      if (reply.type === "join_reply" && !reply.accepted) this.log.warn(`introducer ${to} refused ${this.node.id}: ${reply.reason}`);
      this.send(this.node.onJoinReply(reply, performance.now(), Date.now()));
      if (reply.type === "join_reply" && reply.accepted) {
        if (this.joinFailures > 0 || !this.announcedJoin) this.log.info(`joined through introducer ${to} (${reply.entries.length} members)`);
        this.announcedJoin = true;
        this.joinFailures = 0;
      }
      this.afterStep();
    } catch (err) {
      this.traffic.joinAttemptsFailed++;
      this.joinFailures++;
      // One line when it starts failing, then one every 10 attempts: clear but not a flood.
      if (this.joinFailures === 1 || this.joinFailures % 10 === 0) {
        this.log.warn(
          `introducer ${to} unreachable (${(err as Error).message}); retrying every ${this.cfg.join_retry_ms} ms; this node is not ready until an introducer answers (attempt ${this.joinFailures})`,
        );
      }
    } finally {
      this.joinInFlight = false;
    }
  }
  // ---- admin ---------------------------------------------------------------------------------

  /**
   * `/set` and `/switch`: a new cluster config version that spreads. Throws a RefusedError with
   * status 409, changing nothing, when the version is at its ceiling (MAX_CONFIG_VERSION): no
   * peer would accept the next one, so the change could never be spread.
   */
  changeConfig(knobs: Knobs): void {
    let out: Outgoing[];
    try {
      out = this.node.core.changeConfig(knobs, performance.now());
    } catch (err) {
      if (err instanceof ConfigCeilingError) throw new RefusedError(err.message, 409);
      throw err;
    }
    this.send(out);
    this.afterStep();
  }

  /**
   * Announce left to every live member (again LEAVE_RESEND_MS later); the caller stops
   * afterwards (after LEAVE_FLUSH_MS). A second call does nothing.
   */
  leave(): void {
    if (this.stopped || this.node.core.isLeaving) return;
    const out = this.node.leave(performance.now(), Date.now());
    this.log.info(`leaving the group: announced left to ${out.length} live members`);
    this.send(out);
    this.afterStep();
    this.leaveResend = setTimeout(() => this.send(out), LEAVE_RESEND_MS);
  }

  watch(listener: (ev: WatchEvent) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  private publish(ev: WatchEvent): void {
    for (const w of this.watchers) w(ev);
  }
}

function count(datagrams: Record<string, number>, bytes: Record<string, number>, type: MessageType, size: number): void {
  datagrams[type] = (datagrams[type] ?? 0) + 1;
  bytes[type] = (bytes[type] ?? 0) + size;
}

/**
 * A frame that decodes once its trailer (send time and tag) is cut off: a joiner with a secret
 * talking to an introducer without one.
 */
function looksTagged(frame: Uint8Array): boolean {
  return untrustedDecode(frame.subarray(0, Math.max(0, frame.length - SENT_MS_BYTES - TAG_BYTES))) !== undefined;
}

/** A frame's message without any tag check (for log lines only), or undefined. */
function untrustedDecode(frame: Uint8Array): Message | undefined {
  if (frame.length < 2) return undefined;
  try {
    return decodeDatagram(frame).msg;
  } catch {
    return undefined;
  }
}

/** The member id a join frame that failed its tag check names (with or without a trailer), unverified. */
function claimedJoinId(frame: Uint8Array): string | undefined {
  const msg = untrustedDecode(frame) ?? untrustedDecode(frame.subarray(0, Math.max(0, frame.length - SENT_MS_BYTES - TAG_BYTES)));
  return msg?.type === "join" ? msg.entry.id : undefined;
}

/** 4-byte big-endian length, then the datagram bytes. */
function frameOf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/**
 * Reads one length-prefixed frame (4-byte big-endian length, then the bytes) from TCP chunks.
 * The length is checked as soon as its 4 bytes are in, so a peer that announces more than
 * `maxBytes` is refused before anything more is kept; chunks are kept as they come (with a
 * running total) and joined once, when the frame is complete. Bytes after the frame are ignored.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private received = 0;
  private size = -1;
  private state: "reading" | "done" | "too_big" = "reading";

  constructor(readonly maxBytes: number) {}

  /** Bytes held now (for tests: never more than maxBytes + 4 plus one chunk). */
  get buffered(): number {
    return this.received;
  }

  /** Add a chunk: the frame once complete, "too_big" once the announced length exceeds maxBytes, else undefined. */
  push(chunk: Uint8Array): Uint8Array | "too_big" | undefined {
    if (this.state === "too_big") return "too_big";
    if (this.state === "done") return undefined;
    this.chunks.push(new Uint8Array(chunk));
    this.received += chunk.length;
    if (this.size < 0) {
      if (this.received < 4) return undefined;
      this.size = this.lengthPrefix();
      if (this.size > this.maxBytes) {
        this.state = "too_big";
        this.chunks = [];
        this.received = 0;
        return "too_big";
      }
    }
    if (this.received < 4 + this.size) return undefined;
    const all = Buffer.concat(this.chunks, this.received);
    this.state = "done";
    this.chunks = [];
    this.received = 0;
    return new Uint8Array(all.subarray(4, 4 + this.size));
  }

  /** The 4-byte length at the start, which may span chunks. */
  private lengthPrefix(): number {
    let value = 0;
    let have = 0;
    for (const c of this.chunks) {
      for (let i = 0; i < c.length && have < 4; i++, have++) value = value * 256 + c[i]!;
      if (have === 4) break;
    }
    return value;
  }
}

/**
 * The addresses host names in member ids stand for, for sender binding. An IP address is itself;
 * a name is looked up in the background on first sight (its datagrams count as "sender" drops
 * until the answer is in, a few ms) and again after HOST_CACHE_MS, keeping the old answer
 * meanwhile. At most MAX_HOSTS_CACHED names are kept.
 */
export class HostAddresses {
  private readonly cache = new Map<string, { addresses: string[]; expiresMs: number; pending: boolean }>();

  constructor(
    private readonly resolve: (host: string) => Promise<string[]> = async (host) => (await lookup(host, { all: true })).map((a) => a.address),
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  get(host: string): readonly string[] | undefined {
    if (isIP(host)) return [host];
    let entry = this.cache.get(host);
    if (!entry) {
      if (this.cache.size >= MAX_HOSTS_CACHED) return undefined;
      entry = { addresses: [], expiresMs: 0, pending: false };
      this.cache.set(host, entry);
    }
    if (!entry.pending && this.nowMs() >= entry.expiresMs) {
      const e = entry;
      e.pending = true;
      this.resolve(host).then(
        (addresses) => Object.assign(e, { addresses, expiresMs: this.nowMs() + HOST_CACHE_MS, pending: false }),
        () => Object.assign(e, { expiresMs: this.nowMs() + 1000, pending: false }),
      );
    }
    return entry.addresses;
  }
}

/** Connect, send one frame, read one frame back; rejects after `timeoutMs`. */
function requestFrame(address: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  const colon = address.lastIndexOf(":");
  const hostname = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const reader = new FrameReader(MAX_JOIN_REPLY_BYTES);
    let settled = false;
    let sock: Socket<undefined> | undefined;
    const finish = (err?: Error, value?: Uint8Array) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock?.end();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    Bun.connect({
      hostname,
      port,
      socket: {
        open: (s) => {
          sock = s;
          s.write(frameOf(payload));
        },
        data: (_s, chunk) => {
          const frame = reader.push(chunk);
          if (frame === "too_big") finish(new Error("reply too large"));
          else if (frame) finish(undefined, frame);
        },
        close: () => finish(new Error("connection closed before a reply")),
        error: (_s, err) => finish(err),
        connectError: (_s, err) => finish(err),
      },
    }).catch((err: Error) => finish(err));
  });
}
