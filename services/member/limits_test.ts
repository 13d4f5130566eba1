/**
 * Table tests of the wire bounds and the freshness rule (limits.ts).
 */
import { describe, expect, test } from "bun:test";
import { DATAGRAM_MAX_AGE_MS, freshness, isPort, isUintUpTo, MAX_CONFIG_VERSION, MAX_HEARTBEAT, MAX_INCARNATION, MAX_SEQ, TOMBSTONE_MS } from "./limits.ts";

describe("isUintUpTo", () => {
  const ROWS: [unknown, number, boolean][] = [
    [0, 10, true],
    [10, 10, true],
    [11, 10, false],
    [-1, 10, false],
    [1.5, 10, false],
    [Number.NaN, 10, false],
    [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, false],
    ["3", 10, false],
    [null, 10, false],
    [3n, 10, false],
  ];
  test.each(ROWS)("%p up to %p -> %p", (v, max, want) => {
    expect(isUintUpTo(v, max)).toBe(want);
  });
});

describe("isPort", () => {
  test.each([
    [0, false],
    [1, true],
    [65535, true],
    [65536, false],
    [80.5, false],
  ] as [number, boolean][])("%p -> %p", (v, want) => {
    expect(isPort(v)).toBe(want);
  });
});

describe("freshness (window inclusive at both ends)", () => {
  const W = 1000;
  const ROWS: [number, number, ReturnType<typeof freshness>][] = [
    [5000, 5000, "fresh"],
    [5000, 6000, "fresh"],
    [5000, 6001, "stale"],
    [6000, 5000, "fresh"],
    [6001, 5000, "future"],
    [0, 1e13, "stale"],
  ];
  test.each(ROWS)("sent %p, now %p -> %p", (sent, now, want) => {
    expect(freshness(sent, now, W)).toBe(want);
  });

  test("the default window is DATAGRAM_MAX_AGE_MS", () => {
    expect(freshness(0, DATAGRAM_MAX_AGE_MS)).toBe("fresh");
    expect(freshness(0, DATAGRAM_MAX_AGE_MS + 1)).toBe("stale");
  });
});

describe("the ceilings keep +1 exact and the tombstones outlast replays", () => {
  test("every ceiling + 1 is still a safe integer (a counter at its ceiling is never rounded)", () => {
    for (const max of [MAX_CONFIG_VERSION, MAX_INCARNATION, MAX_HEARTBEAT, MAX_SEQ]) expect(Number.isSafeInteger(max + 1)).toBe(true);
  });

  test("tombstones last more than twice the freshness window", () => {
    expect(TOMBSTONE_MS).toBeGreaterThan(2 * DATAGRAM_MAX_AGE_MS);
  });
});
