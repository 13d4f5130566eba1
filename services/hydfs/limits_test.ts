/**
 * The bounds on what hydfsd takes from the wire (limits.ts) as tables: timestamps against the
 * node's clock, caller-named chunk sources against the ring, and the adopt body's shape.
 */
import { describe, expect, test } from "bun:test";
import { parseAdoptBody } from "./http.ts";
import {
  ADOPT_BODY_MAX_BYTES,
  CHUNK_BYTES,
  checkWireTime,
  FILE_MANIFEST_MAX_BYTES,
  MANIFEST_MAX_BYTES,
  MAX_CLOCK_SKEW_MS,
  OP_BODY_MAX_BYTES,
  WireValueError,
} from "./limits.ts";
import { foreignSources, HydfsError, INLINE_MAX_BYTES } from "./node.ts";

const NOW = 1_750_000_000_000;

describe("checkWireTime", () => {
  test.each([
    ["zero", 0],
    ["the past", NOW - 86_400_000],
    ["now", NOW],
    ["exactly the allowance ahead", NOW + MAX_CLOCK_SKEW_MS],
  ])("accepts %s", (_label, value) => {
    expect(checkWireTime(value, NOW, "at")).toBe(value);
  });

  test.each([
    [
      "1 ms past the allowance",
      NOW + MAX_CLOCK_SKEW_MS + 1,
      `at ${NOW + MAX_CLOCK_SKEW_MS + 1}: is ${MAX_CLOCK_SKEW_MS + 1} ms after this node's clock (${NOW}); expected at most ${MAX_CLOCK_SKEW_MS} ms ahead`,
    ],
    ["the largest safe integer", Number.MAX_SAFE_INTEGER, `at ${Number.MAX_SAFE_INTEGER}: is`],
    ["negative", -1, "at -1: expected a non-negative integer of milliseconds"],
    ["fractional", 1.5, "at 1.5: expected a non-negative integer of milliseconds"],
    ["unsafe", 2 ** 53, "at 9007199254740992: expected a non-negative integer"],
    ["a string", "5", 'at "5": expected a non-negative integer'],
    ["NaN", Number.NaN, "at null: expected a non-negative integer"],
  ])("refuses %s, naming the value and the bound", (_label, value, message) => {
    expect(() => checkWireTime(value, NOW, "at")).toThrow(WireValueError);
    expect(() => checkWireTime(value, NOW, "at")).toThrow(message);
  });

  test("the allowance is 30 s by default and can be given", () => {
    expect(MAX_CLOCK_SKEW_MS).toBe(30_000);
    expect(() => checkWireTime(NOW + 11, NOW, "x", 10)).toThrow("expected at most 10 ms ahead");
  });
});

describe("sizes", () => {
  test("are ordered as the code relies on", () => {
    expect(CHUNK_BYTES).toBe(4 * 1024 * 1024);
    // A replica write carries the op and at most INLINE_MAX_BYTES of data.
    expect(OP_BODY_MAX_BYTES).toBeGreaterThan(INLINE_MAX_BYTES + 1024 * 1024);
    expect(FILE_MANIFEST_MAX_BYTES).toBeLessThan(MANIFEST_MAX_BYTES);
    expect(ADOPT_BODY_MAX_BYTES).toBeGreaterThan(MANIFEST_MAX_BYTES);
  });
});

describe("foreignSources", () => {
  const ring = [
    { host: "10.0.0.1", hydfsPort: 10010 },
    { host: "10.0.0.2", hydfsPort: 10010 },
  ];
  test.each([
    ["ring members", [{ host: "10.0.0.2", hydfsPort: 10010 }], []],
    ["none", [], []],
    ["another host", [{ host: "203.0.113.9", hydfsPort: 10010 }], [{ host: "203.0.113.9", hydfsPort: 10010 }]],
    ["a member's other port", [{ host: "10.0.0.1", hydfsPort: 8080 }], [{ host: "10.0.0.1", hydfsPort: 8080 }]],
    ["a mix", [ring[0]!, { host: "localhost", hydfsPort: 10010 }], [{ host: "localhost", hydfsPort: 10010 }]],
  ])("%s", (_label, sources, want) => {
    expect(foreignSources(sources, ring)).toEqual(want);
  });
});

describe("parseAdoptBody", () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const id = "a".repeat(64);
  const op = { opId: "o", clientId: "c", seq: 1, tsMs: 5, chunks: [{ id, size: 3 }], size: 3, kind: "append" };

  test("a good body", () => {
    expect(parseAdoptBody(enc({ ops: [op], sources: [{ host: "h", hydfsPort: 10010 }], deletedAtMs: 4 }))).toEqual({
      ops: [op as never],
      sources: [{ host: "h", hydfsPort: 10010 }],
      deletedAtMs: 4,
    });
    expect(parseAdoptBody(enc({ ops: [], sources: [] }))).toEqual({ ops: [], sources: [], deletedAtMs: undefined });
  });

  test.each([
    ["not JSON", new TextEncoder().encode("{"), "adopt: body: expected a JSON object"],
    ["an array", enc([]), "adopt: body []: expected a JSON object"],
    ["ops missing", enc({ sources: [] }), "adopt: ops undefined: expected an array of ops"],
    ["a bad op", enc({ ops: [{ ...op, size: 4 }], sources: [] }), "adopt: ops[0]: size 4: expected the sum of the chunk sizes, 3"],
    [
      "an op with too many chunks",
      enc({
        ops: [
          {
            ...op,
            chunks: [
              { id, size: 1 },
              { id, size: 2 },
            ],
          },
        ],
        sources: [],
      }),
      "adopt: ops[0]: chunks: 2 chunks for size 3: expected 1",
    ],
    ["sources not an array", enc({ ops: [], sources: "x" }), 'adopt: sources "x": expected an array'],
    ["too many sources", enc({ ops: [], sources: Array(17).fill({ host: "h", hydfsPort: 1 }) }), "expected an array of at most 16"],
    [
      "a source port out of range",
      enc({ ops: [], sources: [{ host: "h", hydfsPort: 70000 }] }),
      "adopt: sources[0].hydfsPort 70000: expected an integer in 1..65535",
    ],
    ["a source without host", enc({ ops: [], sources: [{ hydfsPort: 1 }] }), "adopt: sources[0].host undefined"],
    ["a negative tombstone", enc({ ops: [], sources: [], deletedAtMs: -1 }), "adopt: deletedAtMs -1: expected a non-negative integer of milliseconds"],
  ])("refuses %s with 400", (_label, raw, message) => {
    let err: unknown;
    try {
      parseAdoptBody(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HydfsError);
    expect((err as HydfsError).status).toBe(400);
    expect((err as Error).message).toContain(message);
  });
});
