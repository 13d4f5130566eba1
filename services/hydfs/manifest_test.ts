/**
 * Tests of the manifest: the canonical order every replica must agree on (whatever order ops
 * arrived in), idempotent appends, per-client order, the digest, and crash-torn manifest files.
 */
import { describe, expect, test } from "bun:test";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { seededRng, shuffle } from "../shared/rng.ts";
import {
  type AppendOp,
  canonicalOrder,
  encodeOpLine,
  manifestDigest,
  mergeManifests,
  missingOps,
  opContentDigest,
  opKey,
  parseOpLines,
  sameContent,
  totalSize,
  validateAppendOp,
} from "./manifest.ts";
import { CHUNK_BYTES, MAX_CLIENT_ID_CHARS, MAX_OP_BYTES, MAX_OP_ID_CHARS } from "./limits.ts";

const chunkId = (content: string): string => new Bun.CryptoHasher("sha256").update(content).digest("hex");

interface OpSpec {
  clientId: string;
  seq: number;
  tsMs: number;
  opId?: string;
  kind?: "create" | "append";
  /**
   * Chunk contents; ids are derived. As an upload is cut, every chunk but the last counts as a
   * full CHUNK_BYTES (the ids stand for bytes never materialized), the last as its own length.
   */
  data?: string[];
}

function op(s: OpSpec): AppendOp {
  const data = s.data ?? [`${s.clientId}:${s.seq}`];
  const chunks = data.map((d, i) => ({ id: chunkId(d), size: i < data.length - 1 ? CHUNK_BYTES : d.length }));
  return {
    opId: s.opId ?? `op-${s.clientId}-${s.seq}-${s.tsMs}`,
    clientId: s.clientId,
    seq: s.seq,
    tsMs: s.tsMs,
    chunks,
    size: chunks.reduce((a, c) => a + c.size, 0),
    kind: s.kind ?? "append",
  };
}

const ids = (ops: readonly AppendOp[]): string[] => ops.map((o) => o.opId);

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  const out: T[][] = [];
  for (const [i, head] of items.entries()) {
    for (const tail of permutations([...items.slice(0, i), ...items.slice(i + 1)])) out.push([head, ...tail]);
  }
  return out;
}

describe("opKey", () => {
  test.each([
    ["alice", 1, "alice#1"],
    ["alice", 0, "alice#0"],
    ["a#b", 12, "a#b#12"],
    ["node:127.0.0.1:7000", 3, "node:127.0.0.1:7000#3"],
  ])("(%p, %p) -> %p", (clientId, seq, want) => {
    expect(opKey({ clientId, seq })).toBe(want);
  });

  test("the same append retried through another coordinator has the same key", () => {
    expect(opKey(op({ clientId: "c", seq: 4, tsMs: 10, opId: "x" }))).toBe(opKey(op({ clientId: "c", seq: 4, tsMs: 99, opId: "y" })));
  });
});

describe("validateAppendOp", () => {
  const good = op({ clientId: "c", seq: 1, tsMs: 5, data: ["ab", "cde"] });

  test("a good op is returned as a copy of its known fields", () => {
    const got = validateAppendOp({ ...good, extra: "dropped" });
    expect(got).toEqual(good);
    expect(got).not.toBe(good);
    expect("extra" in got).toBe(false);
  });

  test.each([
    ["not an object", "x", 'value "x": expected an object'],
    ["null", null, "value null: expected an object"],
    ["an array", [], "value []: expected an object"],
    ["empty opId", { ...good, opId: "" }, 'opId "": expected a non-empty string'],
    ["numeric opId", { ...good, opId: 7 }, "opId 7: expected a non-empty string"],
    ["missing clientId", { ...good, clientId: undefined }, "clientId undefined: expected a non-empty string"],
    ["negative seq", { ...good, seq: -1 }, "seq -1: expected a non-negative integer"],
    ["fractional seq", { ...good, seq: 1.5 }, "seq 1.5: expected a non-negative integer"],
    ["string seq", { ...good, seq: "1" }, 'seq "1": expected a non-negative integer'],
    ["unsafe tsMs", { ...good, tsMs: 2 ** 53 }, "tsMs 9007199254740992: expected a non-negative integer of milliseconds"],
    ["bad kind", { ...good, kind: "delete" }, 'kind "delete": expected "create" or "append"'],
    ["chunks not an array", { ...good, chunks: {} }, "chunks {}: expected an array of {id, size}"],
    ["chunk not an object", { ...good, chunks: [5], size: 5 }, "chunks[0] 5: expected an object {id, size}"],
    ["uppercase chunk id", { ...good, chunks: [{ id: "A".repeat(64), size: 2 }], size: 2 }, "chunks[0].id"],
    ["short chunk id", { ...good, chunks: [{ id: "ab", size: 2 }], size: 2 }, 'chunks[0].id "ab": expected 64 lowercase hex digits'],
    ["negative chunk size", { ...good, chunks: [{ id: chunkId("x"), size: -1 }], size: 5 }, "chunks[0].size -1: expected a non-negative integer of bytes"],
    ["size missing", { ...good, size: undefined }, "size undefined: expected a non-negative integer of bytes"],
    ["size not the sum", { ...good, size: CHUNK_BYTES + 2 }, `size ${CHUNK_BYTES + 2}: expected the sum of the chunk sizes, ${CHUNK_BYTES + 3}`],
    ["opId too long", { ...good, opId: "o".repeat(MAX_OP_ID_CHARS + 1) }, `expected at most ${MAX_OP_ID_CHARS} characters, got ${MAX_OP_ID_CHARS + 1}`],
    [
      "clientId too long",
      { ...good, clientId: "c".repeat(MAX_CLIENT_ID_CHARS + 1) },
      `expected at most ${MAX_CLIENT_ID_CHARS} characters, got ${MAX_CLIENT_ID_CHARS + 1}`,
    ],
    ["size over MAX_OP_BYTES", { ...good, size: MAX_OP_BYTES + 1 }, `size ${MAX_OP_BYTES + 1}: expected at most ${MAX_OP_BYTES} bytes (MAX_OP_BYTES)`],
    ["unsafe size", { ...good, size: 2 ** 53 }, "size 9007199254740992: expected a non-negative integer of bytes"],
    [
      "more chunks than the size needs",
      { ...good, chunks: [...good.chunks, { id: chunkId("z"), size: 1 }] },
      `chunks: 3 chunks for size ${CHUNK_BYTES + 3}: expected 2 (an upload is cut every ${CHUNK_BYTES} bytes)`,
    ],
    [
      "a million chunks for a small size",
      { ...good, chunks: Array(1_000_000).fill({ id: chunkId("z"), size: 1 }), size: 1_000_000 },
      "chunks: 1000000 chunks for size 1000000: expected 1",
    ],
    ["chunks but no size", { ...good, chunks: [{ id: chunkId("z"), size: 0 }], size: 0 }, "chunks: 1 chunks for size 0: expected 0"],
    [
      "an empty chunk",
      {
        ...good,
        chunks: [
          { id: chunkId("z"), size: 0 },
          { id: chunkId("y"), size: CHUNK_BYTES + 3 },
        ],
      },
      `chunks[0].size 0: expected 1 to ${CHUNK_BYTES} bytes (CHUNK_BYTES)`,
    ],
    [
      "a chunk over CHUNK_BYTES",
      {
        ...good,
        chunks: [
          { id: chunkId("z"), size: CHUNK_BYTES + 2 },
          { id: chunkId("y"), size: 1 },
        ],
      },
      `chunks[0].size ${CHUNK_BYTES + 2}: expected 1 to ${CHUNK_BYTES} bytes (CHUNK_BYTES)`,
    ],
  ])("rejects %s", (_label, value, message) => {
    expect(() => validateAppendOp(value, "op under test")).toThrow(message.startsWith("expected") ? message : `op under test: ${message}`);
  });
});

describe("opContentDigest, sameContent", () => {
  const base = op({ clientId: "c", seq: 1, tsMs: 5, data: ["ab", "cde"] });
  test("ignore ids, times and the (client, seq) itself: only what the op writes counts", () => {
    const retry = { ...base, opId: "retry", tsMs: 99, clientId: "other", seq: 7 };
    expect(sameContent(base, retry)).toBe(true);
    expect(opContentDigest(retry)).toBe(opContentDigest(base));
    expect(opContentDigest(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  test.each([
    ["other bytes, same size", op({ clientId: "c", seq: 1, tsMs: 5, data: ["ab", "cdf"] })],
    ["other size", op({ clientId: "c", seq: 1, tsMs: 5, data: ["ab", "cdef"] })],
    ["one chunk fewer", op({ clientId: "c", seq: 1, tsMs: 5, data: ["cde"] })],
    ["chunks swapped", { ...base, chunks: [base.chunks[1]!, base.chunks[0]!] }],
    ["a create instead of an append", { ...base, kind: "create" as const }],
    ["empty", op({ clientId: "c", seq: 1, tsMs: 5, data: [] })],
  ])("differ for %s", (_label, other) => {
    expect(sameContent(base, other)).toBe(false);
    expect(sameContent(other, base)).toBe(false);
    expect(opContentDigest(other)).not.toBe(opContentDigest(base));
  });
});

describe("canonicalOrder", () => {
  // Five ops touching every rule: a create that arrives late by clock, two clients, and client
  // "a"'s seq 3 stamped earlier than its seq 2 by a coordinator with a slow clock.
  const FIVE = [
    op({ clientId: "a", seq: 1, tsMs: 100, kind: "create" }),
    op({ clientId: "a", seq: 2, tsMs: 300 }),
    op({ clientId: "a", seq: 3, tsMs: 150 }),
    op({ clientId: "b", seq: 1, tsMs: 200 }),
    op({ clientId: "b", seq: 2, tsMs: 50 }),
  ];

  test("every permutation of a 5-op set gives the same order", () => {
    const want = ids(canonicalOrder(FIVE));
    // Sorted by ts: b2(50) a3(150) b1(200) a2(300); then per-client: b's slots [0,2] <- b1,b2;
    // a's slots [1,3] <- a2,a3.
    expect(want).toEqual(["op-a-1-100", "op-b-1-200", "op-a-2-300", "op-b-2-50", "op-a-3-150"]);
    const perms = permutations(FIVE);
    expect(perms.length).toBe(120);
    for (const p of perms) expect(ids(canonicalOrder(p))).toEqual(want);
  });

  test("seeded random shuffles of a large set with duplicates and rival creates agree", () => {
    const rng = seededRng(20240607);
    const base: AppendOp[] = [];
    for (const client of ["c1", "c2", "c3", "c4"]) {
      for (let seq = 1; seq <= 10; seq++) {
        const tsMs = 1000 + Math.floor(rng.next() * 50); // coarse clock: many timestamp ties
        base.push(op({ clientId: client, seq, tsMs }));
        // A retry of some appends through another coordinator: same key, other id and time.
        if (rng.next() < 0.3) base.push(op({ clientId: client, seq, tsMs: tsMs + 7, opId: `retry-${client}-${seq}` }));
      }
    }
    base.push(op({ clientId: "c1", seq: 0, tsMs: 990, kind: "create" }));
    base.push(op({ clientId: "c2", seq: 0, tsMs: 995, kind: "create" }));
    const want = ids(canonicalOrder(base));
    expect(want.length).toBe(41); // 40 distinct keys + 1 surviving create
    for (let round = 0; round < 300; round++) {
      const input = shuffle(rng, base.slice());
      // Replicas may also hold the very same op twice.
      if (round % 3 === 0) input.push(input[0]!, input[1]!);
      expect(ids(canonicalOrder(input))).toEqual(want);
    }
  });

  test("does not modify its input", () => {
    const input = FIVE.slice().reverse();
    const before = ids(input);
    canonicalOrder(input);
    expect(ids(input)).toEqual(before);
  });

  test.each([
    {
      name: "retry with a later timestamp is dropped",
      ops: [op({ clientId: "c", seq: 1, tsMs: 10, opId: "first" }), op({ clientId: "c", seq: 1, tsMs: 20, opId: "retry" })],
      want: ["first"],
    },
    {
      name: "retry with an earlier timestamp wins",
      ops: [op({ clientId: "c", seq: 1, tsMs: 10, opId: "first" }), op({ clientId: "c", seq: 1, tsMs: 5, opId: "retry" })],
      want: ["retry"],
    },
    {
      name: "equal timestamps: the smaller opId wins",
      ops: [op({ clientId: "c", seq: 1, tsMs: 10, opId: "zz" }), op({ clientId: "c", seq: 1, tsMs: 10, opId: "aa" })],
      want: ["aa"],
    },
    {
      name: "the very same op twice is applied once",
      ops: [op({ clientId: "c", seq: 1, tsMs: 10, opId: "x" }), op({ clientId: "c", seq: 1, tsMs: 10, opId: "x" })],
      want: ["x"],
    },
    {
      name: "same seq of different clients is not a duplicate",
      ops: [op({ clientId: "c", seq: 1, tsMs: 10, opId: "c1" }), op({ clientId: "d", seq: 1, tsMs: 10, opId: "d1" })],
      want: ["c1", "d1"],
    },
  ])("dedupe: $name", ({ ops, want }) => {
    expect(ids(canonicalOrder(ops))).toEqual([...want]);
    expect(ids(canonicalOrder(ops.slice().reverse()))).toEqual([...want]);
  });

  test("dedupe: copies equal in (tsMs, opId) but not in content still pick one winner", () => {
    const x = op({ clientId: "c", seq: 1, tsMs: 10, opId: "same", data: ["one"] });
    const y = op({ clientId: "c", seq: 1, tsMs: 10, opId: "same", data: ["two"] });
    const a = canonicalOrder([x, y]);
    const b = canonicalOrder([y, x]);
    expect(a.length).toBe(1);
    expect(a[0]!.chunks).toEqual(b[0]!.chunks);
  });

  test.each([
    {
      name: "the create goes first even with the latest timestamp",
      ops: [op({ clientId: "a", seq: 2, tsMs: 1, opId: "app" }), op({ clientId: "a", seq: 1, tsMs: 99, opId: "cr", kind: "create" })],
      want: ["cr", "app"],
    },
    {
      name: "of two creates only the earliest survives",
      ops: [
        op({ clientId: "a", seq: 1, tsMs: 20, opId: "cr-a", kind: "create" }),
        op({ clientId: "b", seq: 1, tsMs: 10, opId: "cr-b", kind: "create" }),
        op({ clientId: "a", seq: 2, tsMs: 30, opId: "app" }),
      ],
      want: ["cr-b", "app"],
    },
    {
      name: "of two creates at one time the smaller opId survives",
      ops: [op({ clientId: "a", seq: 1, tsMs: 10, opId: "m", kind: "create" }), op({ clientId: "b", seq: 1, tsMs: 10, opId: "k", kind: "create" })],
      want: ["k"],
    },
    {
      name: "no create: appends only",
      ops: [op({ clientId: "a", seq: 2, tsMs: 20, opId: "two" }), op({ clientId: "a", seq: 1, tsMs: 10, opId: "one" })],
      want: ["one", "two"],
    },
  ])("create: $name", ({ ops, want }) => {
    for (const p of permutations(ops)) expect(ids(canonicalOrder(p))).toEqual([...want]);
  });

  test.each([
    {
      name: "timestamps order different clients",
      ops: [op({ clientId: "b", seq: 1, tsMs: 10, opId: "b1" }), op({ clientId: "a", seq: 1, tsMs: 20, opId: "a1" })],
      want: ["b1", "a1"],
    },
    {
      name: "equal timestamps: client id breaks the tie",
      ops: [op({ clientId: "b", seq: 1, tsMs: 10, opId: "b1" }), op({ clientId: "a", seq: 9, tsMs: 10, opId: "a9" })],
      want: ["a9", "b1"],
    },
    {
      name: "client ids compare by code unit, not locale ('B' < 'a')",
      ops: [op({ clientId: "a", seq: 1, tsMs: 10, opId: "a1" }), op({ clientId: "B", seq: 1, tsMs: 10, opId: "B1" })],
      want: ["B1", "a1"],
    },
    {
      name: "skewed clock: a later seq stamped earlier still comes after",
      ops: [op({ clientId: "a", seq: 1, tsMs: 100, opId: "a1" }), op({ clientId: "a", seq: 2, tsMs: 50, opId: "a2" })],
      want: ["a1", "a2"],
    },
    {
      name: "skewed clock: other clients keep their slots",
      // By ts: a3(10) b1(20) a1(30) c1(40) a2(50) -> a's slots [0,2,4] get a1,a2,a3.
      ops: [
        op({ clientId: "a", seq: 1, tsMs: 30, opId: "a1" }),
        op({ clientId: "a", seq: 2, tsMs: 50, opId: "a2" }),
        op({ clientId: "a", seq: 3, tsMs: 10, opId: "a3" }),
        op({ clientId: "b", seq: 1, tsMs: 20, opId: "b1" }),
        op({ clientId: "c", seq: 1, tsMs: 40, opId: "c1" }),
      ],
      want: ["a1", "b1", "a2", "c1", "a3"],
    },
    {
      name: "two skewed clients interleaved",
      // By ts: b2(5) a2(10) b1(15) a1(20) -> b's slots [0,2] <- b1,b2; a's [1,3] <- a1,a2.
      ops: [
        op({ clientId: "a", seq: 1, tsMs: 20, opId: "a1" }),
        op({ clientId: "a", seq: 2, tsMs: 10, opId: "a2" }),
        op({ clientId: "b", seq: 1, tsMs: 15, opId: "b1" }),
        op({ clientId: "b", seq: 2, tsMs: 5, opId: "b2" }),
      ],
      want: ["b1", "a1", "b2", "a2"],
    },
  ])("order: $name", ({ ops, want }) => {
    for (const p of permutations(ops)) expect(ids(canonicalOrder(p))).toEqual([...want]);
  });

  test("every client's ops come out in seq order (random skewed clocks)", () => {
    const rng = seededRng(7);
    for (let round = 0; round < 50; round++) {
      const ops: AppendOp[] = [];
      for (const client of ["x", "y", "z"]) for (let seq = 1; seq <= 8; seq++) ops.push(op({ clientId: client, seq, tsMs: Math.floor(rng.next() * 100) }));
      const out = canonicalOrder(shuffle(rng, ops));
      for (const client of ["x", "y", "z"]) {
        expect(out.filter((o) => o.clientId === client).map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      }
    }
  });
});

describe("mergeManifests, missingOps, totalSize", () => {
  const cr = op({ clientId: "a", seq: 1, tsMs: 1, opId: "cr", kind: "create", data: ["hello "] });
  const a2 = op({ clientId: "a", seq: 2, tsMs: 5, opId: "a2", data: ["world"] });
  const b1 = op({ clientId: "b", seq: 1, tsMs: 3, opId: "b1", data: ["big ", "chunks"] });
  const b1retry = op({ clientId: "b", seq: 1, tsMs: 9, opId: "b1-retry", data: ["big ", "chunks"] });

  test("merge is the canonical order of the union, in any argument order", () => {
    const r1 = [cr, a2];
    const r2 = [b1, cr];
    const r3 = [b1retry];
    const want = ["cr", "b1", "a2"];
    for (const lists of permutations([r1, r2, r3])) expect(ids(mergeManifests(...lists))).toEqual(want);
    expect(ids(mergeManifests(mergeManifests(r1, r2), r3))).toEqual(want);
    expect(ids(mergeManifests())).toEqual([]);
  });

  test("merging a merge again changes nothing", () => {
    const once = mergeManifests([cr, a2], [b1retry, b1]);
    expect(mergeManifests(once, once)).toEqual(once);
  });

  test.each([
    { name: "nothing missing", have: [cr, a2, b1], want: [b1, cr], missing: [] as string[] },
    { name: "one missing", have: [cr], want: [cr, a2], missing: ["a2"] },
    { name: "a retry counts as present", have: [cr, b1retry], want: [b1], missing: [] },
    { name: "empty replica lacks everything", have: [], want: [a2, cr], missing: ["a2", "cr"] },
    { name: "nothing wanted", have: [cr], want: [], missing: [] },
  ])("missingOps: $name", ({ have, want, missing }) => {
    expect(ids(missingOps(have, want))).toEqual([...missing]);
  });

  test.each([
    { name: "empty file", ops: [] as AppendOp[], size: 0 },
    { name: "create only", ops: [cr], size: 6 },
    { name: "three ops", ops: [cr, b1, a2], size: 6 + CHUNK_BYTES + 6 + 5 },
    { name: "empty create", ops: [op({ clientId: "a", seq: 1, tsMs: 1, kind: "create", data: [] })], size: 0 },
  ])("totalSize: $name", ({ ops, size }) => {
    expect(totalSize(ops)).toBe(size);
  });
});

describe("manifestDigest", () => {
  const ops = [
    op({ clientId: "a", seq: 1, tsMs: 1, opId: "cr", kind: "create" }),
    op({ clientId: "a", seq: 2, tsMs: 5, opId: "a2" }),
    op({ clientId: "b", seq: 1, tsMs: 3, opId: "b1" }),
  ];
  const digest = manifestDigest(ops);

  test("is hex SHA-256 of the canonical lines (checked with noble)", () => {
    const text = canonicalOrder(ops).map(encodeOpLine).join("");
    expect(digest).toBe(bytesToHex(sha256(utf8ToBytes(text))));
    expect(manifestDigest([])).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  test("is the same for every arrival order and for duplicated ops", () => {
    for (const p of permutations(ops)) expect(manifestDigest(p)).toBe(digest);
    expect(manifestDigest([...ops, ops[1]!, ops[0]!])).toBe(digest);
  });

  const change = (i: number, patch: Partial<AppendOp>): AppendOp[] => ops.map((o, j) => (j === i ? { ...o, ...patch } : o));
  const otherChunk = { id: chunkId("other"), size: 3 };
  test.each([
    ["an op more", [...ops, op({ clientId: "b", seq: 2, tsMs: 7 })]],
    ["an op fewer", ops.slice(1)],
    ["other chunk content", change(1, { chunks: [{ id: otherChunk.id, size: ops[1]!.size }] })],
    ["other timestamp, same order", change(2, { tsMs: 4 })],
    ["other opId", change(2, { opId: "b1-retry" })],
    ["other order", change(2, { tsMs: 9 })],
    ["kind changed", change(1, { kind: "create" })],
  ])("changes with %s", (_label, other) => {
    expect(manifestDigest(other)).not.toBe(digest);
  });
});

describe("encodeOpLine / parseOpLines", () => {
  const sample = op({ clientId: "cli", seq: 3, tsMs: 1700000000000, opId: "id-1", data: ["ab"] });

  test("encodes one newline-terminated line with a fixed key order", () => {
    const want = `{"opId":"id-1","clientId":"cli","seq":3,"tsMs":1700000000000,"kind":"append","size":2,"chunks":[{"id":"${chunkId("ab")}","size":2}]}\n`;
    expect(encodeOpLine(sample)).toBe(want);
    // Key order of the input object does not leak into the file.
    const scrambled = {
      chunks: [{ size: 2, id: chunkId("ab") }],
      kind: "append",
      size: 2,
      tsMs: 1700000000000,
      seq: 3,
      clientId: "cli",
      opId: "id-1",
    } as AppendOp;
    expect(encodeOpLine(scrambled)).toBe(want);
  });

  test("newlines inside fields stay escaped on one line", () => {
    const line = encodeOpLine(op({ clientId: "evil\nclient\u2028", seq: 1, tsMs: 1, opId: "x\ny" }));
    expect(line.indexOf("\n")).toBe(line.length - 1);
    expect(parseOpLines(line).ops[0]!.clientId).toBe("evil\nclient\u2028");
  });

  test("refuses to encode an invalid op", () => {
    expect(() => encodeOpLine({ ...sample, size: 99 })).toThrow("append op: size 99: expected the sum of the chunk sizes, 2");
  });

  const many = [
    op({ clientId: "a", seq: 1, tsMs: 1, kind: "create", data: [] }),
    op({ clientId: "ünï", seq: 2, tsMs: 2, data: ["x", "yz"] }),
    op({ clientId: "文件", seq: 3, tsMs: 3, opId: "🙂" }),
    op({ clientId: "b", seq: 4, tsMs: 4 }),
  ];
  const text = many.map(encodeOpLine).join("");
  const bytes = Buffer.byteLength(text, "utf8");

  test("round trip", () => {
    expect(parseOpLines(text)).toEqual({ ops: many, validBytes: bytes });
    expect(parseOpLines("")).toEqual({ ops: [], validBytes: 0 });
  });

  test("every crash point keeps exactly the complete lines before it", () => {
    // Cut the file at every character: what survives is each fully written line, no more.
    for (let cut = 0; cut <= text.length; cut++) {
      const prefix = text.slice(0, cut);
      const complete = prefix.slice(0, prefix.lastIndexOf("\n") + 1);
      const lines = complete.split("\n").length - 1;
      const got = parseOpLines(prefix);
      expect(got.ops).toEqual(many.slice(0, lines));
      expect(got.validBytes).toBe(Buffer.byteLength(complete, "utf8"));
    }
  });

  const firstTwo = many.slice(0, 2).map(encodeOpLine).join("");
  const firstTwoBytes = Buffer.byteLength(firstTwo, "utf8");
  test.each([
    ["torn JSON without newline", `${firstTwo}{"opId":"x","cli`],
    ["a whole op but no newline (never committed)", firstTwo + encodeOpLine(many[2]!).trimEnd()],
    ["corrupt last line with newline", `${firstTwo}garbage\n`],
    ["zero-filled tail", `${firstTwo}\u0000\u0000\u0000\u0000`],
    ["empty last line", `${firstTwo}\n`],
    ["last line with a bad field", `${firstTwo}${encodeOpLine(many[2]!).replace('"seq":3', '"seq":-3')}`],
  ])("ignores a %s", (_label, damaged) => {
    expect(parseOpLines(damaged)).toEqual({ ops: many.slice(0, 2), validBytes: firstTwoBytes });
  });

  test.each([
    ["garbage on line 2", `${encodeOpLine(many[0]!)}garbage\n${encodeOpLine(many[1]!)}`, 'manifest line 2: "garbage": expected one JSON append op per line'],
    ["empty line 1", `\n${text}`, 'manifest line 1: "": expected one JSON append op per line'],
    ["bad field on line 3", text.replace('"seq":3', '"seq":"3"'), 'manifest line 3: seq "3": expected a non-negative integer'],
    ["corrupt line then a torn tail", `${firstTwo}garbage\n{"op`, 'manifest line 3: "garbage"'],
  ])("throws on %s", (_label, damaged, message) => {
    expect(() => parseOpLines(damaged)).toThrow(message);
  });
});
