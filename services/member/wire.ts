/**
 * Membership wire format: one type byte, a @msgpack/msgpack body (positional arrays, the
 * smallest form), and with a cluster secret a trailer: the sender's wall-clock send time
 * (8 bytes, big-endian ms since the epoch) and an HMAC-SHA256 tag, made with the datagram key
 * derived from the secret, over everything before it:
 *
 *   type (1) | body | [sentMs (8) | tag (32)]   (the bracketed part only with a secret)
 *
 * A receiver checks the tag, then drops what was sent more than DATAGRAM_MAX_AGE_MS from its own
 * clock (a captured datagram cannot be replayed later), then decodes the body and checks every
 * field against its bound (limits.ts). Type numbers and tuple positions are append-only.
 */
import { decode, encode } from "@msgpack/msgpack";
import { datagramTagger, TAG_BYTES, type Tagger } from "../shared/auth.ts";
import { type ClusterConfig, configFromTuple, configToTuple } from "./cluster_config.ts";
import {
  DATAGRAM_MAX_AGE_MS,
  freshness,
  isPort,
  isUintUpTo,
  MAX_ENTRIES_PER_DATAGRAM,
  MAX_HEARTBEAT,
  MAX_ID_LENGTH,
  MAX_INCARNATION,
  MAX_REASON_LENGTH,
  MAX_SEQ,
} from "./limits.ts";
import { type MemberInfo, type MemberPorts, parseNodeId, STATE_CODES } from "./state.ts";

/** Bytes of the send time in the trailer of a secured message. */
export const SENT_MS_BYTES = 8;

/** What a secured cluster adds around every message: the datagram key and this node's wall clock. */
export interface WireAuth {
  tagger: Tagger;
  /** This node's wall clock, ms since the epoch: stamps what it sends and judges what it receives. */
  wallMs(): number;
  /** Largest distance, either way, between a send time and this node's clock. Default DATAGRAM_MAX_AGE_MS. */
  maxAgeMs?: number;
}

/** The WireAuth of a cluster secret (undefined for an open cluster). */
export function wireAuth(secret: string, wallMs: () => number = Date.now, maxAgeMs = DATAGRAM_MAX_AGE_MS): WireAuth | undefined {
  const tagger = datagramTagger(secret);
  return tagger ? { tagger, wallMs, maxAgeMs } : undefined;
}

export const MSG_TYPES = {
  ping: 1,
  ack: 2,
  ping_req: 3,
  gossip: 4,
  join: 5,
  join_reply: 6,
} as const;
export type MessageType = keyof typeof MSG_TYPES;
const TYPE_BY_CODE = new Map(Object.entries(MSG_TYPES).map(([k, v]) => [v, k as MessageType]));

/** Every UDP message names its sender, carries the cluster config and piggybacked entries. */
interface Common {
  from: string;
  cfg: ClusterConfig;
  entries: MemberInfo[];
}
export type Message =
  | (Common & { type: "ping"; seq: number })
  /** `about` is the probed member: an ack relayed for a ping-req names the original target. */
  | (Common & { type: "ack"; seq: number; about: string })
  | (Common & { type: "ping_req"; seq: number; target: string })
  | (Common & { type: "gossip" })
  | { type: "join"; entry: MemberInfo }
  /**
   * `removed`: ids the introducer removed recently and still refuses to take back (its
   * tombstones), so a joiner does not accept them from a replayed datagram either. Appended
   * field: a reply without it decodes as [].
   */
  | { type: "join_reply"; accepted: boolean; reason: string; cfg: ClusterConfig; entries: MemberInfo[]; removed: string[] };

function portsTuple(p: MemberPorts): number[] {
  return [p.udp, p.introducer, p.http, p.hydfs, p.rainstorm];
}

function entryTuple(e: MemberInfo): unknown[] {
  return [e.id, e.incarnation, STATE_CODES.indexOf(e.state), e.heartbeat, portsTuple(e.ports)];
}

/** A node id `host:udpPort@bootMillis` of bounded length, or throws naming `what`. */
function nodeId(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what}: expected a string`);
  let bootMs = Number.NaN;
  if (v.length <= MAX_ID_LENGTH) {
    try {
      bootMs = parseNodeId(v).bootMs;
    } catch {
      // reported below
    }
  }
  if (!Number.isSafeInteger(bootMs)) throw new Error(`${what}: expected a node id host:udpPort@bootMillis of at most ${MAX_ID_LENGTH} characters`);
  return v;
}

function entryFromTuple(t: unknown): MemberInfo {
  if (!Array.isArray(t) || t.length < 5) throw new Error("entry: malformed");
  const [id, incarnation, code, heartbeat, ports] = t;
  const state = isUintUpTo(code, STATE_CODES.length - 1) ? STATE_CODES[code] : undefined;
  if (typeof id !== "string" || !isUintUpTo(incarnation, MAX_INCARNATION) || !state || !isUintUpTo(heartbeat, MAX_HEARTBEAT))
    throw new Error("entry: bad field");
  if (!Array.isArray(ports) || ports.length < 5 || !ports.slice(0, 5).every(isPort)) throw new Error("entry: bad ports");
  const [udp, introducer, http, hydfs, rainstorm] = ports as number[];
  return {
    id: nodeId(id, "entry: id"),
    incarnation,
    state,
    heartbeat,
    ports: { udp: udp!, introducer: introducer!, http: http!, hydfs: hydfs!, rainstorm: rainstorm! },
  };
}

/** A list of entries, at most `max` long. */
function entriesFromTuple(t: unknown, max: number): MemberInfo[] {
  if (!Array.isArray(t)) throw new Error("entries: malformed");
  if (t.length > max) throw new Error(`entries: more than ${max}`);
  return t.map(entryFromTuple);
}

function bodyOf(msg: Message): unknown[] {
  switch (msg.type) {
    case "ping":
      return [msg.from, configToTuple(msg.cfg), msg.entries.map(entryTuple), msg.seq];
    case "ack":
      return [msg.from, configToTuple(msg.cfg), msg.entries.map(entryTuple), msg.seq, msg.about];
    case "ping_req":
      return [msg.from, configToTuple(msg.cfg), msg.entries.map(entryTuple), msg.seq, msg.target];
    case "gossip":
      return [msg.from, configToTuple(msg.cfg), msg.entries.map(entryTuple)];
    case "join":
      return [entryTuple(msg.entry)];
    case "join_reply":
      return [msg.accepted, msg.reason, configToTuple(msg.cfg), msg.entries.map(entryTuple), msg.removed];
  }
}

/** Encode a message; with `auth`, stamped with `auth.wallMs()` and tagged. */
export function encodeMessage(msg: Message, auth?: WireAuth): Uint8Array {
  const body = encode(bodyOf(msg));
  const signed = 1 + body.length + (auth ? SENT_MS_BYTES : 0);
  const out = new Uint8Array(signed + (auth ? TAG_BYTES : 0));
  out[0] = MSG_TYPES[msg.type];
  out.set(body, 1);
  if (auth) {
    const sentMs = auth.wallMs();
    const view = new DataView(out.buffer, out.byteOffset + 1 + body.length, SENT_MS_BYTES);
    view.setUint32(0, Math.floor(sentMs / 2 ** 32));
    view.setUint32(4, sentMs >>> 0);
    out.set(auth.tagger.tag(out.subarray(0, signed)), signed);
  }
  return out;
}

/**
 * The introducer's answer to a join frame whose tag it cannot verify (another cluster_secret, or
 * none where it has one, or one where it has none). It is fixed and untagged (the introducer
 * shares no key with that joiner), with a type byte no message uses, so it never decodes as a
 * message. The joiner recognises these exact bytes and logs "join refused: authentication failed
 * (check cluster_secret)". Anyone can forge it, so it changes nothing else: the joiner keeps its
 * id, stays unready and asks again after join_retry_ms, as after any failed attempt.
 */
export const JOIN_REFUSED_AUTH_FRAME: Uint8Array = new Uint8Array([0x7f, ...new TextEncoder().encode("join refused: authentication failed")]);

/** The fixed refusal frame (exact bytes). */
export function isJoinAuthRefusal(bytes: Uint8Array): boolean {
  if (bytes.length !== JOIN_REFUSED_AUTH_FRAME.length) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== JOIN_REFUSED_AUTH_FRAME[i]) return false;
  return true;
}

export class WireError extends Error {
  constructor(
    message: string,
    /**
     * "auth" when the tag is missing or wrong; "stale" when a tagged message was sent too long
     * before (or after) this node's clock; "format" for anything malformed.
     */
    readonly kind: "auth" | "stale" | "format",
  ) {
    super(message);
  }
}

/** A decoded message and, in a secured cluster, the sender's send time (its wall clock). */
export interface Decoded {
  msg: Message;
  sentMs?: number;
}

/** Decode a datagram or join frame; throws WireError (the caller drops and counts it). */
export function decodeDatagram(bytes: Uint8Array, auth?: WireAuth): Decoded {
  let payload = bytes;
  let sentMs: number | undefined;
  if (auth) {
    if (bytes.length < 1 + SENT_MS_BYTES + TAG_BYTES) throw new WireError("datagram too short for its tag", "auth");
    const signed = bytes.subarray(0, bytes.length - TAG_BYTES);
    if (!auth.tagger.verify(signed, bytes.subarray(bytes.length - TAG_BYTES))) throw new WireError("bad HMAC tag", "auth");
    const view = new DataView(signed.buffer, signed.byteOffset + signed.length - SENT_MS_BYTES, SENT_MS_BYTES);
    const high = view.getUint32(0);
    if (high >= 2 ** 21) throw new WireError("send time beyond 2^53 ms", "format");
    sentMs = high * 2 ** 32 + view.getUint32(4);
    const now = auth.wallMs();
    const maxAge = auth.maxAgeMs ?? DATAGRAM_MAX_AGE_MS;
    const verdict = freshness(sentMs, now, maxAge);
    if (verdict !== "fresh") {
      const how = verdict === "stale" ? `${now - sentMs} ms old` : `${sentMs - now} ms ahead of this node's clock`;
      throw new WireError(`sent at ${sentMs}, ${how}; accepted: within ${maxAge} ms (replayed, or clocks apart)`, "stale");
    }
    payload = signed.subarray(0, signed.length - SENT_MS_BYTES);
  }
  const type = TYPE_BY_CODE.get(payload[0] as never);
  if (!type) throw new WireError(`unknown message type ${payload[0]}`, "format");
  let body: unknown;
  try {
    body = decode(payload.subarray(1));
  } catch (err) {
    throw new WireError(`undecodable body: ${(err as Error).message}`, "format");
  }
  if (!Array.isArray(body)) throw new WireError("body is not an array", "format");
  try {
    return { msg: fromBody(type, body), sentMs };
  } catch (err) {
    throw new WireError(`${type}: ${(err as Error).message}`, "format");
  }
}

/** Decode a datagram; throws WireError (the caller drops and counts it). */
export function decodeMessage(bytes: Uint8Array, auth?: WireAuth): Message {
  return decodeDatagram(bytes, auth).msg;
}

/**
 * Sender binding: true when a datagram's `from` id names the address it came from. `addresses`
 * gives the addresses a host name stands for (the driver resolves names; an IP is itself).
 * Messages without a sender (join frames, which travel over TCP) have nothing to bind.
 */
export function senderMatches(msg: Message, sourceAddress: string, sourcePort: number, addresses: (host: string) => readonly string[] | undefined): boolean {
  if (msg.type === "join" || msg.type === "join_reply") return true;
  const { host, port } = parseNodeId(msg.from);
  if (port !== sourcePort) return false;
  const source = sourceAddress.startsWith("::ffff:") ? sourceAddress.slice(7) : sourceAddress;
  return host === source || (addresses(host)?.includes(source) ?? false);
}

function str(v: unknown, what: string, maxLength: number): string {
  if (typeof v !== "string") throw new Error(`${what}: expected a string`);
  if (v.length > maxLength) throw new Error(`${what}: longer than ${maxLength} characters`);
  return v;
}

function removedFromTuple(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error("removed: expected a list of node ids");
  return v.map((id) => nodeId(id, "removed"));
}

function fromBody(type: MessageType, b: unknown[]): Message {
  if (type === "join") return { type, entry: entryFromTuple(b[0]) };
  if (type === "join_reply") {
    if (typeof b[0] !== "boolean") throw new Error("accepted: expected a boolean");
    return {
      type,
      accepted: b[0],
      reason: str(b[1], "reason", MAX_REASON_LENGTH),
      cfg: configFromTuple(b[2]),
      // Over TCP: bounded by the join reply's frame size, not by the datagram's entry count.
      entries: entriesFromTuple(b[3], Number.MAX_SAFE_INTEGER),
      removed: removedFromTuple(b[4]),
    };
  }
  const common = { from: nodeId(b[0], "from"), cfg: configFromTuple(b[1]), entries: entriesFromTuple(b[2], MAX_ENTRIES_PER_DATAGRAM) };
  if (type === "gossip") return { type, ...common };
  if (!isUintUpTo(b[3], MAX_SEQ)) throw new Error(`seq: expected an unsigned integer up to ${MAX_SEQ}`);
  if (type === "ping") return { type, ...common, seq: b[3] };
  if (type === "ack") return { type, ...common, seq: b[3], about: nodeId(b[4], "about") };
  return { type, ...common, seq: b[3], target: nodeId(b[4], "target") };
}
