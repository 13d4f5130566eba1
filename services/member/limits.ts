/**
 * Bounds on everything membership takes from the wire, and the freshness window of secured
 * datagrams, in one place.
 *
 * Every number a peer sends is checked against its ceiling when it is decoded (wire.ts,
 * cluster_config.ts), and the core never produces a number past its ceiling (membership.ts,
 * probe.ts): a message one node sends is always one its peers accept. The ceilings are far
 * above anything a correct cluster reaches; what happens when a node's own counter would pass
 * one is documented beside it.
 */

/** uint32: the widest counter msgpack still encodes in at most 5 bytes. */
export const UINT32_MAX = 4_294_967_295;

/**
 * Highest cluster config version. Each `/set` or `/switch` adds one, so a cluster reaches it
 * only through forged or buggy messages. At the ceiling a local change is refused with a clear
 * error (HTTP 409) instead of producing a version every peer would drop as malformed.
 */
export const MAX_CONFIG_VERSION = UINT32_MAX;

/**
 * Highest incarnation. Only a node raises its own, by one per refuted suspicion. A suspicion at
 * this incarnation cannot be refuted (the refutation would be past the ceiling), so the node
 * starts over under a new id at incarnation 0, exactly as when it learns it was declared failed.
 */
export const MAX_INCARNATION = UINT32_MAX;

/**
 * Highest heartbeat. A node raises its own once per protocol round: at the fastest allowed
 * round (10 ms) this is 89,000 years, so uint32 (497 days at 10 ms) would be too tight. Were it
 * ever reached, the node would start over under a new id at heartbeat 0 (as at the incarnation
 * ceiling) rather than stop beating.
 */
export const MAX_HEARTBEAT = 2 ** 48 - 1;

/**
 * Highest probe sequence number. Sequence numbers only match acks to probes in flight (at most a
 * few per round), so the counter wraps around to 1 after this.
 */
export const MAX_SEQ = UINT32_MAX;

/**
 * Most member entries in one datagram (ping, ack, ping_req, gossip); a decoder drops a datagram
 * with more. A longer list (a gossip round's whole table, the news of a rejoin) goes out as
 * several datagrams of at most this many. An entry is ~60 bytes with a 30-character id and at
 * most ~320 with an id of MAX_ID_LENGTH, so a datagram stays under ~21 KB, well inside UDP's
 * 65,507. (Join replies travel over TCP, bounded by the frame size instead.)
 */
export const MAX_ENTRIES_PER_DATAGRAM = 64;

/** Most queued updates piggybacked on one message, after the sender's own entry. */
export const MAX_PIGGYBACK = MAX_ENTRIES_PER_DATAGRAM - 1;

/** Advertised service ports: real ports only (config.json accepts [1, 65535] for every port). */
export const MIN_PORT = 1;
export const MAX_PORT = 65_535;

/**
 * Longest node id (`host:udpPort@bootMillis`) accepted. A DNS name is at most 253 characters,
 * plus `:65535@` and a 13-16 digit time; anything longer is not an id a node can have.
 */
export const MAX_ID_LENGTH = 280;

/**
 * Longest `reason` of a refused join. The introducer writes a sentence naming the id; the bound
 * keeps a forged reply from making the joiner log megabytes.
 */
export const MAX_REASON_LENGTH = 1024;

/**
 * Freshness window of secured datagrams and join frames, ms. With a cluster secret the tagged
 * part of every message carries the sender's wall-clock send time, and a receiver drops what was
 * sent more than this long before (or after) its own clock: a captured datagram can only be
 * replayed within this window. It must cover the clock skew between nodes (NTP keeps them within
 * milliseconds) plus network and queueing delay; shorter narrows the replay window but makes
 * nodes with badly set clocks unable to talk (their datagrams are counted as stale). Default 30 s,
 * the same window as the HTTP request MACs (AUTH_MAX_SKEW_MS).
 */
export const DATAGRAM_MAX_AGE_MS = 30_000;

/**
 * How long the ids of removed members are remembered so that no gossip entry, replayed datagram
 * or join can bring them back. A datagram sent by a member before it died is accepted for at most
 * DATAGRAM_MAX_AGE_MS after its send time, by a receiver whose clock may lag the sender's by up
 * to that window again, and removal always comes after the member's last send: 2 windows is
 * enough, 3 leave a margin. Costs one map entry per removed member for this long. Default 90 s.
 */
export const TOMBSTONE_MS = 3 * DATAGRAM_MAX_AGE_MS;

/** A non-negative integer not above `max` (rejects NaN, fractions, negatives, anything unsafe). */
export function isUintUpTo(v: unknown, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
}

export function isPort(v: unknown): v is number {
  return isUintUpTo(v, MAX_PORT) && v >= MIN_PORT;
}

/**
 * Whether a send time is within `maxAgeMs` of this node's clock: "fresh", or "stale" (older) or
 * "future" (ahead). Both ends are inclusive.
 */
export function freshness(sentMs: number, nowMs: number, maxAgeMs: number = DATAGRAM_MAX_AGE_MS): "fresh" | "stale" | "future" {
  if (nowMs - sentMs > maxAgeMs) return "stale";
  if (sentMs - nowMs > maxAgeMs) return "future";
  return "fresh";
}
