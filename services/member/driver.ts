/**
 * memberd's I/O shell around the pure MemberNode: the UDP socket, the tick timer, the
 * introducer's TCP server and the join client, metrics and the change stream. No protocol
 * decisions are made here.
 */
import type { Socket, TCPSocketListener } from "bun";
import { makeTagger, type Tagger } from "../shared/auth.ts";
import type { NodeConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { osRng } from "../shared/rng.ts";
import type { Knobs } from "./cluster_config.ts";
import type { Outgoing } from "./membership.ts";
import { MemberNode, type NodeEvent } from "./node.ts";
import { decodeMessage, encodeMessage, type Message, type MessageType, WireError } from "./wire.ts";

/** How often the core is ticked. Finer costs CPU; coarser delays probes and timers. */
export const TICK_MS = 20;
/** Largest join request or reply accepted on the introducer's TCP port. */
const MAX_JOIN_FRAME_BYTES = 4 * 1024 * 1024;

export interface TrafficCounters {
  datagramsIn: Record<string, number>;
  datagramsOut: Record<string, number>;
  bytesIn: Record<string, number>;
  bytesOut: Record<string, number>;
  droppedAuth: number;
  droppedMalformed: number;
  sendErrors: number;
  joinsServed: number;
  joinAttemptsFailed: number;
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
    sendErrors: 0,
    joinsServed: 0,
    joinAttemptsFailed: 0,
  };
  private readonly log: Logger;
  private readonly tagger?: Tagger;
  private udp?: Bun.udp.Socket<"uint8array">;
  private introducer?: TCPSocketListener<{ chunks: Uint8Array[] }>;
  private timer?: Timer;
  private joinInFlight = false;
  private joinFailures = 0;
  private announcedJoin = false;
  private readonly watchers = new Set<(ev: WatchEvent) => void>();
  private readonly clockOffsetMs = Date.now() - performance.now();
  private stopped = false;

  constructor(cfg: NodeConfig, configPath: string, log: Logger) {
    this.cfg = cfg;
    this.configPath = configPath;
    this.log = log;
    this.tagger = cfg.cluster_secret ? makeTagger(cfg.cluster_secret) : undefined;
    this.node = new MemberNode({
      host: cfg.host,
      ports: cfg.ports,
      bootMs: Date.now(),
      config: { version: 0, origin: "", knobs: cfg.membership },
      rng: osRng(),
      nowMs: performance.now(),
      introducers: cfg.introducers,
      joinRetryMs: cfg.join_retry_ms,
    });
  }

  /** Local monotonic ms -> wall-clock ms, for display only. */
  wallOf(monoMs: number): number {
    return Math.round(this.clockOffsetMs + monoMs);
  }

  async start(): Promise<void> {
    if (!this.tagger) this.log.warn("no cluster_secret set: this cluster is open to anyone who can reach its ports");
    this.udp = await Bun.udpSocket({
      hostname: this.cfg.host,
      port: this.cfg.ports.udp,
      binaryType: "uint8array",
      socket: {
        data: (_sock, data) => this.onDatagram(data),
        // ICMP port-unreachable from a dead peer surfaces here on loopback: count, never crash.
        error: () => {
          this.traffic.sendErrors++;
        },
      },
    });
    if (this.cfg.is_introducer) this.startIntroducer();
    this.timer = setInterval(() => this.onTick(), TICK_MS);
    this.log.info(`member ${this.node.id} up (protocol ${this.node.core.knobs.protocol}, suspicion ${this.node.core.knobs.suspicion ? "on" : "off"})`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.introducer?.stop(true);
    this.udp?.close();
    for (const w of this.watchers) w({ event: "closed" });
    this.watchers.clear();
  }

  // ---- UDP -----------------------------------------------------------------------------------

  private onDatagram(bytes: Uint8Array): void {
    if (this.stopped) return;
    const msg = this.decodeCounted(bytes);
    if (!msg) return;
    count(this.traffic.datagramsIn, this.traffic.bytesIn, msg.type, bytes.length);
    const now = performance.now();
    this.send(this.node.receive(msg, now, Date.now()));
    this.afterStep();
  }

  /** Decode, or count why not (bad tag vs malformed) and return undefined. */
  private decodeCounted(bytes: Uint8Array): Message | undefined {
    try {
      return decodeMessage(bytes, this.tagger);
    } catch (err) {
      if (err instanceof WireError && err.kind === "auth") this.traffic.droppedAuth++;
      else this.traffic.droppedMalformed++;
      return undefined;
    }
  }

  private send(out: Outgoing[]): void {
    if (!this.udp || this.stopped) return;
    for (const o of out) {
      const bytes = encodeMessage(o.msg, this.tagger);
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
  }

  private afterStep(): void {
    for (const ev of this.node.drainEvents()) this.onEvent(ev);
  }

  private onEvent(ev: NodeEvent): void {
    switch (ev.kind) {
      case "config":
        this.log.info(`cluster config v${ev.config.version} from ${ev.config.origin || "file"}: protocol ${ev.config.knobs.protocol}, suspicion ${ev.config.knobs.suspicion ? "on" : "off"}`);
        this.publish({ event: "config", version: ev.config.version, knobs: ev.config.knobs });
        return;
      case "renewed":
        this.log.warn(`this node was declared failed as ${ev.from}; rejoining as ${ev.to}`);
        this.publish({ event: "renewed", from: ev.from, to: ev.to });
        return;
      case "self_failed":
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
    this.introducer = Bun.listen<{ chunks: Uint8Array[] }>({
      hostname: this.cfg.host,
      port: this.cfg.ports.introducer,
      socket: {
        open: (s) => {
          s.data = { chunks: [] };
          s.timeout(Math.ceil(this.cfg.join_timeout_ms / 1000) + 1);
        },
        data: (s, chunk) => {
          s.data.chunks.push(new Uint8Array(chunk));
          const frame = readFrame(s.data.chunks);
          if (frame === "too_big") return void s.end();
          if (!frame) return;
          this.serveJoin(s, frame);
        },
        timeout: (s) => void s.end(),
        error: () => {},
      },
    });
    this.log.info(`introducer listening on ${this.cfg.host}:${this.cfg.ports.introducer}`);
  }

  private serveJoin(s: Socket<{ chunks: Uint8Array[] }>, frame: Uint8Array): void {
    const req = this.decodeCounted(frame);
    if (!req) return void s.end();
    const handled = this.node.handleJoin(req, performance.now());
    if (!handled) return void s.end();
    this.traffic.joinsServed++;
    this.send(handled.out);
    this.afterStep();
    s.end(frameOf(encodeMessage(handled.reply, this.tagger)));
  }

  private async join(to: string, msg: Message): Promise<void> {
    this.joinInFlight = true;
    try {
      const replyBytes = await requestFrame(to, encodeMessage(msg, this.tagger), this.cfg.join_timeout_ms);
      const reply = decodeMessage(replyBytes, this.tagger);
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
        this.log.warn(`introducer ${to} unreachable (${(err as Error).message}); retrying every ${this.cfg.join_retry_ms} ms (attempt ${this.joinFailures})`);
      }
    } finally {
      this.joinInFlight = false;
    }
  }
  // ---- admin ---------------------------------------------------------------------------------

  changeConfig(knobs: Knobs): void {
    this.send(this.node.core.changeConfig(knobs, performance.now()));
    this.afterStep();
  }

  /** Announce left to every live member; the caller exits afterwards. */
  leave(): void {
    this.send(this.node.core.leave(performance.now()));
    this.afterStep();
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

/** 4-byte big-endian length, then the datagram bytes. */
function frameOf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/** A complete frame from the received chunks, undefined while incomplete. */
function readFrame(chunks: Uint8Array[]): Uint8Array | undefined | "too_big" {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  if (total < 4) return undefined;
  const all = Buffer.concat(chunks);
  const size = all.readUInt32BE(0);
  if (size > MAX_JOIN_FRAME_BYTES) return "too_big";
  if (total < 4 + size) return undefined;
  return new Uint8Array(all.subarray(4, 4 + size));
}

/** Connect, send one frame, read one frame back; rejects after `timeoutMs`. */
function requestFrame(address: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  const colon = address.lastIndexOf(":");
  const hostname = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
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
          chunks.push(new Uint8Array(chunk));
          const frame = readFrame(chunks);
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
