/**
 * Membership wire format: one type byte, a @msgpack/msgpack body (positional arrays, the
 * smallest form), and with a cluster secret a trailing HMAC-SHA256 tag over type byte and body.
 * Type numbers and tuple positions are append-only.
 */
import { decode, encode } from "@msgpack/msgpack";
import { TAG_BYTES, type Tagger } from "../shared/auth.ts";
import { type ClusterConfig, configFromTuple, configToTuple } from "./cluster_config.ts";
import { type MemberInfo, type MemberPorts, STATE_CODES } from "./state.ts";

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
  | { type: "join_reply"; accepted: boolean; reason: string; cfg: ClusterConfig; entries: MemberInfo[] };

function portsTuple(p: MemberPorts): number[] {
  return [p.udp, p.introducer, p.http, p.hydfs, p.rainstorm];
}

function entryTuple(e: MemberInfo): unknown[] {
  return [e.id, e.incarnation, STATE_CODES.indexOf(e.state), e.heartbeat, portsTuple(e.ports)];
}

/** Counters on the wire must be safe non-negative integers: anything else could win every comparison. */
function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function entryFromTuple(t: unknown): MemberInfo {
  if (!Array.isArray(t) || t.length < 5) throw new Error("entry: malformed");
  const [id, incarnation, code, heartbeat, ports] = t;
  const state = isUint(code) ? STATE_CODES[code] : undefined;
  if (typeof id !== "string" || !isUint(incarnation) || !state || !isUint(heartbeat)) throw new Error("entry: bad field");
  if (!Array.isArray(ports) || ports.length < 5 || !ports.every(isUint)) throw new Error("entry: bad ports");
  const [udp, introducer, http, hydfs, rainstorm] = ports as number[];
  return { id, incarnation, state, heartbeat, ports: { udp: udp!, introducer: introducer!, http: http!, hydfs: hydfs!, rainstorm: rainstorm! } };
}

function entriesFromTuple(t: unknown): MemberInfo[] {
  if (!Array.isArray(t)) throw new Error("entries: malformed");
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
      return [msg.accepted, msg.reason, configToTuple(msg.cfg), msg.entries.map(entryTuple)];
  }
}

export function encodeMessage(msg: Message, tagger?: Tagger): Uint8Array {
  const body = encode(bodyOf(msg));
  const size = 1 + body.length + (tagger ? TAG_BYTES : 0);
  const out = new Uint8Array(size);
  out[0] = MSG_TYPES[msg.type];
  out.set(body, 1);
  if (tagger) out.set(tagger.tag(out.subarray(0, 1 + body.length)), 1 + body.length);
  return out;
}

export class WireError extends Error {
  constructor(
    message: string,
    /** "auth" when the tag is missing or wrong; "format" for anything malformed. */
    readonly kind: "auth" | "format",
  ) {
    super(message);
  }
}

/** Decode a datagram; throws WireError (the caller drops and counts it). */
export function decodeMessage(bytes: Uint8Array, tagger?: Tagger): Message {
  let payload = bytes;
  if (tagger) {
    if (bytes.length < 1 + TAG_BYTES) throw new WireError("datagram too short for its tag", "auth");
    payload = bytes.subarray(0, bytes.length - TAG_BYTES);
    if (!tagger.verify(payload, bytes.subarray(bytes.length - TAG_BYTES))) throw new WireError("bad HMAC tag", "auth");
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
    return fromBody(type, body);
  } catch (err) {
    throw new WireError(`${type}: ${(err as Error).message}`, "format");
  }
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what}: expected a string`);
  return v;
}

function fromBody(type: MessageType, b: unknown[]): Message {
  if (type === "join") return { type, entry: entryFromTuple(b[0]) };
  if (type === "join_reply") {
    if (typeof b[0] !== "boolean") throw new Error("accepted: expected a boolean");
    return { type, accepted: b[0], reason: str(b[1], "reason"), cfg: configFromTuple(b[2]), entries: entriesFromTuple(b[3]) };
  }
  const common = { from: str(b[0], "from"), cfg: configFromTuple(b[1]), entries: entriesFromTuple(b[2]) };
  if (type === "gossip") return { type, ...common };
  if (!isUint(b[3])) throw new Error("seq: expected an unsigned integer");
  if (type === "ping") return { type, ...common, seq: b[3] };
  if (type === "ack") return { type, ...common, seq: b[3], about: str(b[4], "about") };
  return { type, ...common, seq: b[3], target: str(b[4], "target") };
}
