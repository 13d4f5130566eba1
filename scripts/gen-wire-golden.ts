/**
 * Writes testdata/wire_golden.json: one fixed example of every membership message type, with its
 * encoding without a secret (`hex`) and with the secret "golden-secret" (`hex_tagged`: the same
 * bytes, then the send time GOLDEN_SENT_MS as 8 bytes big-endian, then the HMAC-SHA256 tag made
 * with the datagram key HKDF derives from the secret).
 *
 * services/member/wire_test.ts compares the codec against these bytes, so a change that breaks
 * wire compatibility fails. Regenerate only on purpose (a new message type or an appended field):
 *   bun scripts/gen-wire-golden.ts
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type ClusterConfig, DEFAULT_KNOBS } from "../services/member/cluster_config.ts";
import type { MemberInfo } from "../services/member/state.ts";
import { encodeMessage, type Message, type WireAuth, wireAuth } from "../services/member/wire.ts";

export const GOLDEN_SECRET = "golden-secret";
/** Send time stamped into the tagged vectors (ms since the epoch; 2023-11-14T22:13:20.123Z). */
export const GOLDEN_SENT_MS = 1_700_000_000_123;

/** Stamps and checks like a node whose clock reads `nowMs` (default: the golden send time). */
export function goldenAuth(nowMs = GOLDEN_SENT_MS): WireAuth {
  return wireAuth(GOLDEN_SECRET, () => nowMs)!;
}
export const GOLDEN_PATH = join(import.meta.dir, "..", "testdata", "wire_golden.json");

const A = "127.0.0.1:5000@1700000000000";
const B = "127.0.0.2:5000@1700000000001";
const C = "127.0.0.3:5000@1700000000002";
const D = "127.0.0.4:5000@1700000000003";
const E = "127.0.0.5:5000@1700000000004";

const cfg: ClusterConfig = { version: 3, origin: B, knobs: { ...DEFAULT_KNOBS } };

function ports(n: number) {
  return { udp: 5000, introducer: 5100 + n, http: 8080, hydfs: 6000 + n, rainstorm: 7000 + n };
}

const entries: MemberInfo[] = [
  { id: A, incarnation: 0, state: "alive", heartbeat: 42, ports: ports(1) },
  { id: B, incarnation: 2, state: "suspect", heartbeat: 300, ports: ports(2) },
  { id: C, incarnation: 1, state: "failed", heartbeat: 70_000, ports: ports(3) },
  { id: D, incarnation: 5, state: "left", heartbeat: 4_294_967_296, ports: ports(4) },
];

export const GOLDEN_MESSAGES: Record<string, Message> = {
  ping: { type: "ping", from: A, cfg, entries: [entries[0]!, entries[1]!], seq: 7 },
  ack: { type: "ack", from: B, cfg, entries: [entries[2]!], seq: 7, about: A },
  ping_req: { type: "ping_req", from: A, cfg, entries: [], seq: 300, target: C },
  gossip: { type: "gossip", from: A, cfg, entries },
  join: { type: "join", entry: entries[0]! },
  join_reply: { type: "join_reply", accepted: true, reason: "", cfg, entries, removed: [E] },
  join_reply_rejected: { type: "join_reply", accepted: false, reason: "duplicate id", cfg, entries: [], removed: [] },
};

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

export function buildGolden(): Record<string, { message: Message; hex: string; hex_tagged: string }> {
  const auth = goldenAuth();
  const out: Record<string, { message: Message; hex: string; hex_tagged: string }> = {};
  for (const [name, message] of Object.entries(GOLDEN_MESSAGES)) {
    out[name] = { message, hex: hex(encodeMessage(message)), hex_tagged: hex(encodeMessage(message, auth)) };
  }
  return out;
}

if (import.meta.main) {
  mkdirSync(dirname(GOLDEN_PATH), { recursive: true });
  writeFileSync(GOLDEN_PATH, `${JSON.stringify(buildGolden(), null, 2)}\n`);
  console.error(`wrote ${GOLDEN_PATH}`);
}
