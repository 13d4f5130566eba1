/**
 * Wire codec: golden vectors (testdata/wire_golden.json, written by scripts/gen-wire-golden.ts),
 * authentication with the derived datagram key, the freshness window, bounds on every field,
 * sender binding, malformed input and a seeded fuzz loop.
 */
import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GOLDEN_MESSAGES, GOLDEN_SECRET, GOLDEN_SENT_MS, goldenAuth } from "../../scripts/gen-wire-golden.ts";
import { deriveKeys, makeTagger, TAG_BYTES, type Tagger } from "../shared/auth.ts";
import { seededRng } from "../shared/rng.ts";
import { configToTuple, DEFAULT_KNOBS } from "./cluster_config.ts";
import {
  DATAGRAM_MAX_AGE_MS,
  MAX_CONFIG_VERSION,
  MAX_ENTRIES_PER_DATAGRAM,
  MAX_HEARTBEAT,
  MAX_ID_LENGTH,
  MAX_INCARNATION,
  MAX_REASON_LENGTH,
  MAX_SEQ,
} from "./limits.ts";
import {
  decodeDatagram,
  decodeMessage,
  encodeMessage,
  type Message,
  MSG_TYPES,
  SENT_MS_BYTES,
  senderMatches,
  type WireAuth,
  WireError,
  wireAuth,
} from "./wire.ts";

interface Golden {
  message: Message;
  hex: string;
  hex_tagged: string;
}
const GOLDEN: Record<string, Golden> = JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "testdata", "wire_golden.json"), "utf8"));
const NAMES = Object.keys(GOLDEN);
/** Stamps with, and judges by, a clock that reads the golden send time. */
const auth = goldenAuth();
/** The datagram key's tagger, built by hand from the documented derivation. */
const datagramKeyTagger = makeTagger(deriveKeys(GOLDEN_SECRET).datagram);

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const bytesOf = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/** The WireError thrown by decoding, or a description of what happened instead. */
function decodeError(bytes: Uint8Array, t?: WireAuth): { kind: string; message: string } {
  try {
    decodeMessage(bytes, t);
  } catch (err) {
    if (err instanceof WireError) return { kind: err.kind, message: err.message };
    return { kind: `not a WireError: ${String(err)}`, message: "" };
  }
  return { kind: "decoded", message: "" };
}

/** A datagram with this type byte and this msgpack body. */
function datagram(type: number, body: unknown): Uint8Array {
  const b = encode(body);
  const out = new Uint8Array(1 + b.length);
  out[0] = type;
  out.set(b, 1);
  return out;
}

/** 8 bytes big-endian of a send time (any value up to 2^64 - 1). */
function sentBytes(sentMs: bigint): Uint8Array {
  const out = new Uint8Array(SENT_MS_BYTES);
  new DataView(out.buffer).setBigUint64(0, sentMs);
  return out;
}

/** Untagged bytes, then a send time and a valid tag over both (what a key holder can make). */
function signed(untagged: Uint8Array, sentMs: bigint = BigInt(GOLDEN_SENT_MS), t: Tagger = datagramKeyTagger): Uint8Array {
  const body = new Uint8Array(untagged.length + SENT_MS_BYTES);
  body.set(untagged);
  body.set(sentBytes(sentMs), untagged.length);
  const out = new Uint8Array(body.length + TAG_BYTES);
  out.set(body);
  out.set(t.tag(body), body.length);
  return out;
}

const CFG = configToTuple({ version: 3, origin: "127.0.0.2:5000@1700000000001", knobs: DEFAULT_KNOBS });
const ID = "127.0.0.1:5000@1700000000000";
const ENTRY = [ID, 0, 0, 42, [5000, 5101, 8080, 6001, 7001]];

describe("message type numbers are append-only", () => {
  test("codes", () => {
    expect(MSG_TYPES).toEqual({ ping: 1, ack: 2, ping_req: 3, gossip: 4, join: 5, join_reply: 6 });
  });

  test("the golden file covers every message type and every member state", () => {
    const types = new Set(NAMES.map((n) => GOLDEN[n]!.message.type));
    expect([...types].sort() as string[]).toEqual(Object.keys(MSG_TYPES).sort());
    const states = new Set(
      NAMES.flatMap((n) => {
        const m = GOLDEN[n]!.message;
        return m.type === "join" ? [m.entry.state] : m.entries.map((e) => e.state);
      }),
    );
    expect([...states].sort()).toEqual(["alive", "failed", "left", "suspect"]);
  });

  test("the golden file matches its generator (regenerate with bun scripts/gen-wire-golden.ts)", () => {
    expect(Object.fromEntries(NAMES.map((n) => [n, GOLDEN[n]!.message]))).toEqual(GOLDEN_MESSAGES);
  });
});

describe("golden vectors", () => {
  test.each(NAMES)("%s encodes to the stored bytes", (name) => {
    const g = GOLDEN[name]!;
    expect(hex(encodeMessage(g.message))).toBe(g.hex);
  });

  test.each(NAMES)("%s encodes to the stored tagged bytes", (name) => {
    const g = GOLDEN[name]!;
    expect(hex(encodeMessage(g.message, auth))).toBe(g.hex_tagged);
  });

  test.each(NAMES)("%s: type byte first, then the untagged bytes, the send time and HMAC-SHA256 with the derived datagram key", (name) => {
    const g = GOLDEN[name]!;
    expect(g.hex.slice(0, 2)).toBe(MSG_TYPES[g.message.type].toString(16).padStart(2, "0"));
    expect(g.hex_tagged.length).toBe(g.hex.length + 2 * (SENT_MS_BYTES + TAG_BYTES));
    expect(g.hex_tagged.slice(0, g.hex.length)).toBe(g.hex);
    const stamp = g.hex_tagged.slice(g.hex.length, g.hex.length + 2 * SENT_MS_BYTES);
    expect(stamp).toBe(GOLDEN_SENT_MS.toString(16).padStart(16, "0"));
    expect(g.hex_tagged.slice(g.hex.length + 2 * SENT_MS_BYTES)).toBe(hex(datagramKeyTagger.tag(bytesOf(g.hex + stamp))));
  });

  test.each(NAMES)("%s decodes from the stored bytes", (name) => {
    const g = GOLDEN[name]!;
    expect(decodeMessage(bytesOf(g.hex))).toEqual(g.message);
  });

  test.each(NAMES)("%s decodes from the stored tagged bytes with the secret, with its send time", (name) => {
    const g = GOLDEN[name]!;
    expect(decodeDatagram(bytesOf(g.hex_tagged), auth)).toEqual({ msg: g.message, sentMs: GOLDEN_SENT_MS });
    expect(decodeDatagram(bytesOf(g.hex))).toEqual({ msg: g.message, sentMs: undefined });
  });

  test("a hand-checked vector: join with one alive entry", () => {
    // 05 = join; 91 = array(1); 95 = array(5); a3 "abc"; 00 incarnation; 00 alive; 07 heartbeat; 95 01 02 03 04 05 ports
    const msg: Message = {
      type: "join",
      entry: { id: "abc", incarnation: 0, state: "alive", heartbeat: 7, ports: { udp: 1, introducer: 2, http: 3, hydfs: 4, rainstorm: 5 } },
    };
    expect(hex(encodeMessage(msg))).toBe("059195a36162630000079501020304" + "05");
  });

  test("decoding a decoded message's encoding gives it back (seeded)", () => {
    const rng = seededRng(7);
    for (const name of NAMES) {
      const m = structuredClone(GOLDEN[name]!.message);
      if (m.type !== "join") {
        for (const e of m.entries) e.heartbeat = Math.floor(rng.next() * 2 ** 40);
      }
      expect(decodeMessage(encodeMessage(m, auth), auth)).toEqual(m);
    }
  });
});

describe("authentication", () => {
  test.each(NAMES)("%s: every flipped bit is rejected as auth (send time included)", (name) => {
    const good = bytesOf(GOLDEN[name]!.hex_tagged);
    const bad: number[] = [];
    for (let i = 0; i < good.length; i++) {
      const copy = good.slice();
      copy[i] = copy[i]! ^ (1 << (i % 8));
      if (decodeError(copy, auth).kind !== "auth") bad.push(i);
    }
    expect(bad).toEqual([]);
  });

  test.each(NAMES)("%s: the wrong secret, the raw secret as a key and the HTTP key are rejected as auth", (name) => {
    const good = bytesOf(GOLDEN[name]!.hex_tagged);
    const withTagger = (t: Tagger): WireAuth => ({ tagger: t, wallMs: () => GOLDEN_SENT_MS });
    expect(
      decodeError(
        good,
        wireAuth("golden-secret2", () => GOLDEN_SENT_MS),
      ).kind,
    ).toBe("auth");
    expect(decodeError(good, withTagger(makeTagger(new Uint8Array(32)))).kind).toBe("auth");
    // The secret itself is never the key (before HKDF it was: these two would have passed).
    expect(decodeError(good, withTagger(makeTagger(new TextEncoder().encode(GOLDEN_SECRET)))).kind).toBe("auth");
    expect(decodeError(good, withTagger(makeTagger(deriveKeys(GOLDEN_SECRET).http))).kind).toBe("auth");
  });

  test("an open cluster has no WireAuth; a secured one tags with the derived datagram key", () => {
    expect(wireAuth("")).toBeUndefined();
    const t = wireAuth(GOLDEN_SECRET)!.tagger;
    const data = new Uint8Array([1, 2, 3]);
    expect(hex(t.tag(data))).toBe(hex(datagramKeyTagger.tag(data)));
  });

  test.each(NAMES)("%s: a missing tag is rejected as auth", (name) => {
    expect(decodeError(bytesOf(GOLDEN[name]!.hex), auth)).toEqual({ kind: "auth", message: "bad HMAC tag" });
  });

  test.each(NAMES)("%s: a truncated tag is rejected as auth", (name) => {
    const good = bytesOf(GOLDEN[name]!.hex_tagged);
    expect(decodeError(good.subarray(0, good.length - 1), auth).kind).toBe("auth");
  });

  test("a datagram shorter than a send time and a tag is rejected as auth", () => {
    for (const len of [0, 1, TAG_BYTES, TAG_BYTES + SENT_MS_BYTES]) {
      expect(decodeError(new Uint8Array(len).fill(1), auth)).toEqual({ kind: "auth", message: "datagram too short for its tag" });
    }
  });

  test("a tagged datagram read without a secret is not accepted", () => {
    for (const name of NAMES) {
      expect(`${name}: ${decodeError(bytesOf(GOLDEN[name]!.hex_tagged)).kind}`).toBe(`${name}: format`);
    }
  });
});

describe("malformed datagrams are WireError format", () => {
  test("empty datagram", () => {
    expect(decodeError(new Uint8Array(0)).kind).toBe("format");
  });

  test.each([0, 7, 8, 0x7f, 0xff])("unknown type byte %p", (type) => {
    const bytes = bytesOf(GOLDEN.gossip!.hex);
    bytes[0] = type;
    expect(decodeError(bytes)).toEqual({ kind: "format", message: `unknown message type ${type}` });
  });

  test("unknown type byte behind a valid tag", () => {
    const untagged = bytesOf(GOLDEN.ping!.hex);
    untagged[0] = 9;
    expect(decodeError(signed(untagged), auth)).toEqual({ kind: "format", message: "unknown message type 9" });
  });

  test.each([
    ["0xc1 (never used)", [1, 0xc1]],
    ["type byte only", [1]],
    ["reserved ext garbage", [4, 0xd4, 0x05]],
    ["all ones", [2, 0xff, 0xff, 0xff, 0xff]],
  ] as [string, number[]][])("garbage body: %s", (_name, bytes) => {
    expect(decodeError(new Uint8Array(bytes)).kind).toBe("format");
  });

  test.each(NAMES)("%s: every truncation is rejected", (name) => {
    const good = bytesOf(GOLDEN[name]!.hex);
    const accepted: string[] = [];
    for (let len = 0; len < good.length; len++) {
      const got = decodeError(good.subarray(0, len));
      if (got.kind !== "format") accepted.push(`${len}: ${got.kind}`);
    }
    expect(accepted).toEqual([]);
  });

  test.each(NAMES)("%s: trailing bytes after the body are rejected", (name) => {
    const good = bytesOf(GOLDEN[name]!.hex);
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expect(decodeError(longer).kind).toBe("format");
  });

  const PORTS = [5000, 5101, 8080, 6001, 7001];
  const BAD: [string, number, unknown, RegExp][] = [
    ["body is a map", 1, { from: ID }, /^body is not an array$/],
    ["body is a number", 4, 5, /^body is not an array$/],
    ["ping: from is a number", 1, [5, CFG, [], 1], /^ping: from: expected a string$/],
    ["ping: seq missing", 1, [ID, CFG, []], /^ping: seq: expected an unsigned integer up to 4294967295$/],
    ["ping: seq is a string", 1, [ID, CFG, [], "7"], /^ping: seq: /],
    ["ping: seq is negative", 1, [ID, CFG, [], -1], /^ping: seq: /],
    ["ping: seq is fractional", 1, [ID, CFG, [], 1.5], /^ping: seq: /],
    ["ack: about missing", 2, [ID, CFG, [], 7], /^ack: about: expected a string$/],
    ["ack: about is a number", 2, [ID, CFG, [], 7, 12], /^ack: about: /],
    ["ping_req: target is null", 3, [ID, CFG, [], 7, null], /^ping_req: target: /],
    ["gossip: cfg is not a tuple", 4, [ID, { version: 3 }, []], /^gossip: config: malformed tuple$/],
    ["gossip: cfg too short", 4, [ID, CFG.slice(0, 5), []], /^gossip: config: malformed tuple$/],
    ["gossip: cfg version is a string", 4, [ID, ["3", ...CFG.slice(1)], []], /^gossip: config: malformed version$/],
    [
      "gossip: cfg knob out of range",
      4,
      [ID, [...CFG.slice(0, 5), 0, ...CFG.slice(6)], []],
      /^gossip: wire config\.ping_fanout: expected an integer in \[1, 64\], got 0$/,
    ],
    ["gossip: cfg knob of the wrong type", 4, [ID, [3, "o", "pingack", "yes", ...CFG.slice(4)], []], /^gossip: wire config\.suspicion: /],
    ["gossip: entries is not an array", 4, [ID, CFG, "none"], /^gossip: entries: malformed$/],
    ["gossip: entry is not a tuple", 4, [ID, CFG, [ID]], /^gossip: entry: malformed$/],
    ["gossip: entry too short", 4, [ID, CFG, [[ID, 0, 0, 1]]], /^gossip: entry: malformed$/],
    ["gossip: entry id is a number", 4, [ID, CFG, [[7, 0, 0, 1, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: negative incarnation", 4, [ID, CFG, [[ID, -1, 0, 1, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: incarnation is a string", 4, [ID, CFG, [[ID, "0", 0, 1, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: unknown state code 4", 4, [ID, CFG, [[ID, 0, 4, 1, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: state code -1", 4, [ID, CFG, [[ID, 0, -1, 1, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: state code is null", 4, [ID, CFG, [[ID, 0, null, 1, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: fractional heartbeat", 4, [ID, CFG, [[ID, 0, 0, 1.5, PORTS]]], /^gossip: entry: bad field$/],
    ["gossip: ports not an array", 4, [ID, CFG, [[ID, 0, 0, 1, 5000]]], /^gossip: entry: bad ports$/],
    ["gossip: too few ports", 4, [ID, CFG, [[ID, 0, 0, 1, [1, 2, 3, 4]]]], /^gossip: entry: bad ports$/],
    ["gossip: negative port", 4, [ID, CFG, [[ID, 0, 0, 1, [1, 2, -3, 4, 5]]]], /^gossip: entry: bad ports$/],
    ["gossip: port is a string", 4, [ID, CFG, [[ID, 0, 0, 1, [1, 2, "3", 4, 5]]]], /^gossip: entry: bad ports$/],
    ["join: entry missing", 5, [], /^join: entry: malformed$/],
    ["join_reply: accepted is 1", 6, [1, "", CFG, []], /^join_reply: accepted: expected a boolean$/],
    ["join_reply: reason missing", 6, [true], /^join_reply: reason: expected a string$/],
    ["join_reply: entries missing", 6, [true, "", CFG], /^join_reply: entries: malformed$/],
  ];
  test.each(BAD)("%s", (_name, type, body, message) => {
    const got = decodeError(datagram(type, body));
    expect(got.kind).toBe("format");
    expect(got.message).toMatch(message);
  });

  test("a hand-built valid body decodes (the table above only differs in the named field)", () => {
    expect(decodeMessage(datagram(1, [ID, CFG, [ENTRY], 7]))).toEqual({
      type: "ping",
      from: ID,
      cfg: { version: 3, origin: "127.0.0.2:5000@1700000000001", knobs: DEFAULT_KNOBS },
      entries: [{ id: ID, incarnation: 0, state: "alive", heartbeat: 42, ports: { udp: 5000, introducer: 5101, http: 8080, hydfs: 6001, rainstorm: 7001 } }],
      seq: 7,
    });
  });

  // Regression: a string code used to be looked up as a property ("1" decoded as suspect,
  // "length" as the number 4), re-encoded as code -1 and made every receiver drop the datagram.
  test("a state code that is not an integer is rejected as format", () => {
    for (const code of ["0", "1", "length", "at", "map", 1.5]) {
      const got = decodeError(datagram(5, [[ID, 0, code, 1, [1, 2, 3, 4, 5]]]));
      expect(`${JSON.stringify(code)}: ${got.kind}`).toBe(`${JSON.stringify(code)}: format`);
    }
  });

  // Regression: an Infinity or >= 2^53 version won every later comparison (version + 1 no longer
  // increased it); a version past MAX_CONFIG_VERSION is one a legitimate change cannot follow.
  test("a config version that is not an integer in [0, MAX_CONFIG_VERSION] is rejected as format", () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, 2 ** 60, 2 ** 53 - 1, MAX_CONFIG_VERSION + 1]) {
      const got = decodeError(datagram(4, [ID, [v, ...CFG.slice(1)], []]));
      expect(`${v}: ${got.kind}`).toBe(`${v}: format`);
    }
  });
});

describe("every number and string from the wire is bounded (limits.ts)", () => {
  const PORTS = [5000, 5101, 8080, 6001, 7001];
  const entry = (incarnation: unknown, heartbeat: unknown, ports: unknown = PORTS, id: unknown = ID) => [id, incarnation, 0, heartbeat, ports];
  const gossip = (...entries: unknown[][]) => datagram(4, [ID, CFG, entries]);
  const LONG_ID = `${"h".repeat(MAX_ID_LENGTH)}:5000@1`;
  /** [name, datagram, accepted] */
  const ROWS: [string, Uint8Array, boolean][] = [
    ["incarnation at MAX_INCARNATION", gossip(entry(MAX_INCARNATION, 1)), true],
    ["incarnation above MAX_INCARNATION", gossip(entry(MAX_INCARNATION + 1, 1)), false],
    ["heartbeat at MAX_HEARTBEAT", gossip(entry(0, MAX_HEARTBEAT)), true],
    ["heartbeat above MAX_HEARTBEAT", gossip(entry(0, MAX_HEARTBEAT + 1)), false],
    ["heartbeat 2^53 - 1", gossip(entry(0, 2 ** 53 - 1)), false],
    ["seq at MAX_SEQ", datagram(1, [ID, CFG, [], MAX_SEQ]), true],
    ["seq above MAX_SEQ", datagram(1, [ID, CFG, [], MAX_SEQ + 1]), false],
    ["config version at MAX_CONFIG_VERSION", datagram(4, [ID, [MAX_CONFIG_VERSION, ...CFG.slice(1)], []]), true],
    ["config version above MAX_CONFIG_VERSION", datagram(4, [ID, [MAX_CONFIG_VERSION + 1, ...CFG.slice(1)], []]), false],
    ["config origin of MAX_ID_LENGTH + 1 characters", datagram(4, [ID, [3, "o".repeat(MAX_ID_LENGTH + 1), ...CFG.slice(2)], []]), false],
    ["port 1 and 65535", gossip(entry(0, 1, [1, 65535, 1, 1, 1])), true],
    ["port 0", gossip(entry(0, 1, [5000, 0, 8080, 6001, 7001])), false],
    ["port 65536", gossip(entry(0, 1, [5000, 6000, 65536, 6001, 7001])), false],
    ["entry id that is not a node id", gossip(entry(0, 1, PORTS, "abc")), false],
    ["entry id with port 0", gossip(entry(0, 1, PORTS, "127.0.0.1:0@1")), false],
    ["entry id with an unsafe boot time", gossip(entry(0, 1, PORTS, "127.0.0.1:5000@99999999999999999999")), false],
    ["entry id longer than MAX_ID_LENGTH", gossip(entry(0, 1, PORTS, LONG_ID)), false],
    ["from that is not a node id", datagram(4, ["127.0.0.1:5000", CFG, []]), false],
    ["ack about that is not a node id", datagram(2, [ID, CFG, [], 1, "x"]), false],
    ["ping_req target that is not a node id", datagram(3, [ID, CFG, [], 1, ""]), false],
    ["join reason of MAX_REASON_LENGTH characters", datagram(6, [false, "r".repeat(MAX_REASON_LENGTH), CFG, [], []]), true],
    ["join reason longer than MAX_REASON_LENGTH", datagram(6, [false, "r".repeat(MAX_REASON_LENGTH + 1), CFG, [], []]), false],
    ["join_reply removed ids", datagram(6, [true, "", CFG, [], [ID]]), true],
    ["join_reply removed that is not a list", datagram(6, [true, "", CFG, [], ID]), false],
    ["join_reply removed with a non-id", datagram(6, [true, "", CFG, [], ["x"]]), false],
    ["gossip with MAX_ENTRIES_PER_DATAGRAM entries", gossip(...Array.from({ length: MAX_ENTRIES_PER_DATAGRAM }, () => entry(0, 1))), true],
    ["gossip with MAX_ENTRIES_PER_DATAGRAM + 1 entries", gossip(...Array.from({ length: MAX_ENTRIES_PER_DATAGRAM + 1 }, () => entry(0, 1))), false],
    [
      "ping with MAX_ENTRIES_PER_DATAGRAM + 1 entries",
      datagram(1, [ID, CFG, Array.from({ length: MAX_ENTRIES_PER_DATAGRAM + 1 }, () => entry(0, 1)), 1]),
      false,
    ],
    [
      "join_reply (TCP) with more than MAX_ENTRIES_PER_DATAGRAM entries",
      datagram(6, [true, "", CFG, Array.from({ length: MAX_ENTRIES_PER_DATAGRAM + 1 }, () => entry(0, 1)), []]),
      true,
    ],
    ["wire knob drop_rate_recv of 1", datagram(4, [ID, [...CFG.slice(0, 13), 1], []]), false],
    ["wire knob t_cleanup_ms above its config maximum", datagram(4, [ID, [...CFG.slice(0, 12), 3_600_001, 0], []]), false],
  ];
  test.each(ROWS)("%s", (_name, bytes, accepted) => {
    expect(decodeError(bytes).kind).toBe(accepted ? "decoded" : "format");
  });

  test("the largest datagram the core may send (MAX_ENTRIES_PER_DATAGRAM entries, ids of MAX_ID_LENGTH, every number at its ceiling, tagged) fits UDP", () => {
    const longId = (i: number) => `${"h".repeat(MAX_ID_LENGTH - 20)}:65535@${String(1_700_000_000_000 + i)}`;
    const ports = { udp: 65535, introducer: 65535, http: 65535, hydfs: 65535, rainstorm: 65535 };
    const entries = Array.from({ length: MAX_ENTRIES_PER_DATAGRAM }, (_, i) => ({
      id: longId(i),
      incarnation: MAX_INCARNATION,
      state: "suspect" as const,
      heartbeat: MAX_HEARTBEAT,
      ports,
    }));
    const cfg = { version: MAX_CONFIG_VERSION, origin: longId(99), knobs: DEFAULT_KNOBS };
    const bytes = encodeMessage({ type: "ack", from: longId(0), cfg, entries, seq: MAX_SEQ, about: longId(1) }, auth);
    expect(entries[0]!.id.length).toBe(MAX_ID_LENGTH);
    expect(bytes.length).toBeLessThanOrEqual(65_507);
    expect(decodeMessage(bytes, auth).type).toBe("ack");
  });

  test("a join_reply without the appended removed list (an older introducer) decodes with removed = []", () => {
    const msg = decodeMessage(datagram(6, [true, "", CFG, []]));
    expect(msg.type === "join_reply" && msg.removed).toEqual([]);
  });

  test("a send time beyond 2^53 ms behind a valid tag is rejected as format", () => {
    const untagged = bytesOf(GOLDEN.gossip!.hex);
    expect(decodeError(signed(untagged, 2n ** 53n), auth).kind).toBe("format");
    expect(decodeError(signed(untagged, 2n ** 64n - 1n), auth).kind).toBe("format");
  });
});

describe("freshness: the send time is inside the tag and judged by the receiver's clock", () => {
  const gossip = bytesOf(GOLDEN.gossip!.hex_tagged);
  const W = DATAGRAM_MAX_AGE_MS;
  /** [name, receiver clock minus send time, kind] */
  const ROWS: [string, number, string][] = [
    ["received at once", 0, "decoded"],
    ["received W ms later (the edge)", W, "decoded"],
    ["received W + 1 ms later (a replay)", W + 1, "stale"],
    ["received 80 s later (the replay in the issue)", 80_000, "stale"],
    ["sender's clock W ms ahead (the edge)", -W, "decoded"],
    ["sender's clock W + 1 ms ahead", -(W + 1), "stale"],
    ["sender's clock an hour ahead", -3_600_000, "stale"],
  ];
  test.each(ROWS)("%s", (_name, ageMs, kind) => {
    expect(decodeError(gossip, goldenAuth(GOLDEN_SENT_MS + ageMs)).kind).toBe(kind);
  });

  test("the stale message says how old or how far ahead", () => {
    expect(decodeError(gossip, goldenAuth(GOLDEN_SENT_MS + 80_000)).message).toBe(
      `sent at ${GOLDEN_SENT_MS}, 80000 ms old; accepted: within ${W} ms (replayed, or clocks apart)`,
    );
    expect(decodeError(gossip, goldenAuth(GOLDEN_SENT_MS - 40_000)).message).toBe(
      `sent at ${GOLDEN_SENT_MS}, 40000 ms ahead of this node's clock; accepted: within ${W} ms (replayed, or clocks apart)`,
    );
  });

  test("maxAgeMs narrows or widens the window", () => {
    const narrow: WireAuth = { ...goldenAuth(GOLDEN_SENT_MS + 1001), maxAgeMs: 1000 };
    expect(decodeError(gossip, narrow).kind).toBe("stale");
    expect(decodeError(gossip, { ...narrow, maxAgeMs: 1001 }).kind).toBe("decoded");
  });

  test("a re-stamped send time breaks the tag (the time cannot be refreshed without the key)", () => {
    const copy = gossip.slice();
    const at = copy.length - TAG_BYTES - SENT_MS_BYTES;
    copy.set(sentBytes(BigInt(GOLDEN_SENT_MS + 80_000)), at);
    expect(decodeError(copy, goldenAuth(GOLDEN_SENT_MS + 80_000)).kind).toBe("auth");
  });

  test("encodeMessage stamps the sender's clock at each send", () => {
    let now = GOLDEN_SENT_MS;
    const clock: WireAuth = { ...auth, wallMs: () => now };
    const first = encodeMessage(GOLDEN_MESSAGES.ping!, clock);
    now += 5;
    const second = encodeMessage(GOLDEN_MESSAGES.ping!, clock);
    expect(decodeDatagram(first, clock).sentMs).toBe(GOLDEN_SENT_MS);
    expect(decodeDatagram(second, clock).sentMs).toBe(GOLDEN_SENT_MS + 5);
  });

  test("an open cluster has no send time and no window", () => {
    expect(decodeDatagram(bytesOf(GOLDEN.gossip!.hex)).sentMs).toBeUndefined();
  });
});

describe("sender binding: from must name the source address and port", () => {
  const gossipFrom = (from: string): Message => ({ ...GOLDEN_MESSAGES.gossip!, from }) as Message;
  const noNames = (): undefined => undefined;
  const names = (host: string) => (host === "node7.example" ? ["10.0.0.7"] : host === "pending.example" ? [] : undefined);
  /** [name, from id, source address, source port, matches] */
  const ROWS: [string, string, string, number, boolean][] = [
    ["same address and port", "10.0.0.1:5000@1", "10.0.0.1", 5000, true],
    ["IPv4-mapped IPv6 source", "10.0.0.1:5000@1", "::ffff:10.0.0.1", 5000, true],
    ["other port", "10.0.0.1:5000@1", "10.0.0.1", 5001, false],
    ["other address", "10.0.0.1:5000@1", "10.0.0.2", 5000, false],
    ["a host name that resolves to the source", "node7.example:5000@1", "10.0.0.7", 5000, true],
    ["a host name that resolves elsewhere", "node7.example:5000@1", "10.0.0.8", 5000, false],
    ["a host name not resolved yet", "pending.example:5000@1", "10.0.0.7", 5000, false],
    ["an unknown host name", "other.example:5000@1", "10.0.0.7", 5000, false],
  ];
  test.each(ROWS)("%s", (_name, from, address, port, want) => {
    expect(senderMatches(gossipFrom(from), address, port, names)).toBe(want);
  });

  test("join frames carry no sender to bind", () => {
    expect(senderMatches(GOLDEN_MESSAGES.join!, "10.9.9.9", 1, noNames)).toBe(true);
  });
});

describe("fuzz: nothing but WireError on arbitrary bytes", () => {
  const goldens = NAMES.map((n) => ({ plain: bytesOf(GOLDEN[n]!.hex), tagged: bytesOf(GOLDEN[n]!.hex_tagged) }));

  function check(bytes: Uint8Array, t: WireAuth | undefined, failures: string[]): "ok" | "auth" | "stale" | "format" {
    try {
      const msg = decodeMessage(bytes, t);
      if (typeof msg !== "object" || !(msg.type in MSG_TYPES)) failures.push(`bad result for ${hex(bytes)}`);
      return "ok";
    } catch (err) {
      if (!(err instanceof WireError) || (err.kind !== "auth" && err.kind !== "stale" && err.kind !== "format")) {
        failures.push(`${hex(bytes)}: ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
        return "format";
      }
      return err.kind;
    }
  }

  test("2000 random byte strings, with and without a secret (seeded)", () => {
    const rng = seededRng(20261124);
    const failures: string[] = [];
    const kinds = { ok: 0, auth: 0, stale: 0, format: 0 };
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rng.next() * 96);
      const bytes = new Uint8Array(len);
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(rng.next() * 256);
      // Half of them start with a known type byte and an array header, to get past the first checks.
      if (len > 1 && i % 2 === 0) {
        bytes[0] = 1 + Math.floor(rng.next() * 6);
        bytes[1] = 0x90 + Math.floor(rng.next() * 6);
      }
      kinds[check(bytes, undefined, failures)]++;
      kinds[check(bytes, auth, failures)]++;
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(kinds.auth).toBe(2000); // random bytes never carry a valid tag
    expect(kinds.format).toBeGreaterThan(1900);
  });

  test("2000 mutated golden datagrams (seeded)", () => {
    const rng = seededRng(424242);
    const failures: string[] = [];
    const kinds = { ok: 0, auth: 0, stale: 0, format: 0 };
    for (let i = 0; i < 2000; i++) {
      const g = goldens[i % goldens.length]!;
      const bytes = g.plain.slice();
      const edits = 1 + Math.floor(rng.next() * 3);
      for (let e = 0; e < edits; e++) {
        const at = 1 + Math.floor(rng.next() * (bytes.length - 1));
        bytes[at] = Math.floor(rng.next() * 256);
      }
      const cut = rng.next() < 0.25 ? Math.floor(rng.next() * bytes.length) : bytes.length;
      const mutated = bytes.subarray(0, cut);
      kinds[check(mutated, undefined, failures)]++;
      // The same mutation of the tagged form never passes the tag.
      const tagged = g.tagged.slice();
      tagged.set(mutated.subarray(0, Math.min(mutated.length, g.plain.length)));
      const changed = hex(tagged) !== hex(g.tagged);
      const kind = check(tagged, auth, failures);
      if (changed && kind !== "auth") failures.push(`tagged mutation accepted: ${hex(tagged)}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(kinds.format).toBeGreaterThan(500);
  });
});
