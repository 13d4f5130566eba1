/**
 * Table tests of the one merge rule (docs/ARCHITECTURE.md §2) and of node ids.
 */
import { describe, expect, test } from "bun:test";
import { isTerminal, makeNodeId, type MemberState, mergeRule, parseNodeId, STATE_CODES } from "./state.ts";

type Copy = { state: MemberState; incarnation: number; heartbeat: number };
const c = (state: MemberState, incarnation: number, heartbeat: number): Copy => ({ state, incarnation, heartbeat });

interface Row {
  name: string;
  local: Copy;
  remote: Copy;
  want: { outcome: "keep" | "heartbeat" | "news"; state: MemberState; incarnation: number; heartbeat: number };
}

const ROWS: Row[] = [
  // --- left beats everything, failed included, whatever the incarnation
  {
    name: "left beats alive at a lower incarnation",
    local: c("alive", 7, 10),
    remote: c("left", 2, 3),
    want: { outcome: "news", state: "left", incarnation: 2, heartbeat: 10 },
  },
  {
    name: "left beats alive at a higher incarnation",
    local: c("alive", 1, 10),
    remote: c("left", 5, 12),
    want: { outcome: "news", state: "left", incarnation: 5, heartbeat: 12 },
  },
  { name: "left beats suspect", local: c("suspect", 4, 10), remote: c("left", 4, 10), want: { outcome: "news", state: "left", incarnation: 4, heartbeat: 10 } },
  { name: "left beats failed", local: c("failed", 9, 10), remote: c("left", 1, 1), want: { outcome: "news", state: "left", incarnation: 1, heartbeat: 10 } },
  {
    name: "failed does not beat left",
    local: c("left", 1, 5),
    remote: c("failed", 9, 5),
    want: { outcome: "keep", state: "left", incarnation: 1, heartbeat: 5 },
  },
  {
    name: "alive at a higher incarnation does not beat left",
    local: c("left", 1, 5),
    remote: c("alive", 99, 5),
    want: { outcome: "keep", state: "left", incarnation: 1, heartbeat: 5 },
  },
  {
    name: "suspect does not beat left",
    local: c("left", 3, 5),
    remote: c("suspect", 3, 5),
    want: { outcome: "keep", state: "left", incarnation: 3, heartbeat: 5 },
  },
  {
    name: "left vs left: nothing new",
    local: c("left", 3, 5),
    remote: c("left", 8, 5),
    want: { outcome: "keep", state: "left", incarnation: 3, heartbeat: 5 },
  },
  {
    name: "left vs left: only the heartbeat advances",
    local: c("left", 3, 5),
    remote: c("left", 8, 9),
    want: { outcome: "heartbeat", state: "left", incarnation: 3, heartbeat: 9 },
  },

  // --- failed beats alive/suspect at any incarnation
  {
    name: "failed beats alive at a lower incarnation",
    local: c("alive", 6, 20),
    remote: c("failed", 2, 15),
    want: { outcome: "news", state: "failed", incarnation: 2, heartbeat: 20 },
  },
  {
    name: "failed beats alive at a higher incarnation",
    local: c("alive", 2, 20),
    remote: c("failed", 6, 25),
    want: { outcome: "news", state: "failed", incarnation: 6, heartbeat: 25 },
  },
  {
    name: "failed beats suspect at a lower incarnation",
    local: c("suspect", 6, 20),
    remote: c("failed", 0, 0),
    want: { outcome: "news", state: "failed", incarnation: 0, heartbeat: 20 },
  },
  {
    name: "failed beats suspect at equal incarnation",
    local: c("suspect", 3, 20),
    remote: c("failed", 3, 20),
    want: { outcome: "news", state: "failed", incarnation: 3, heartbeat: 20 },
  },
  {
    name: "alive at a higher incarnation does not beat failed",
    local: c("failed", 1, 4),
    remote: c("alive", 50, 4),
    want: { outcome: "keep", state: "failed", incarnation: 1, heartbeat: 4 },
  },
  {
    name: "suspect at a higher incarnation does not beat failed",
    local: c("failed", 1, 4),
    remote: c("suspect", 50, 3),
    want: { outcome: "keep", state: "failed", incarnation: 1, heartbeat: 4 },
  },
  {
    name: "alive does not beat failed but its fresher heartbeat is kept",
    local: c("failed", 1, 4),
    remote: c("alive", 50, 8),
    want: { outcome: "heartbeat", state: "failed", incarnation: 1, heartbeat: 8 },
  },
  {
    name: "failed vs failed at a higher incarnation: nothing new",
    local: c("failed", 1, 4),
    remote: c("failed", 2, 4),
    want: { outcome: "keep", state: "failed", incarnation: 1, heartbeat: 4 },
  },

  // --- then the higher incarnation
  {
    name: "alive at a higher incarnation beats alive",
    local: c("alive", 1, 10),
    remote: c("alive", 2, 10),
    want: { outcome: "news", state: "alive", incarnation: 2, heartbeat: 10 },
  },
  {
    name: "alive at a higher incarnation refutes suspect",
    local: c("suspect", 1, 10),
    remote: c("alive", 2, 11),
    want: { outcome: "news", state: "alive", incarnation: 2, heartbeat: 11 },
  },
  {
    name: "suspect at a higher incarnation beats alive",
    local: c("alive", 1, 10),
    remote: c("suspect", 2, 9),
    want: { outcome: "news", state: "suspect", incarnation: 2, heartbeat: 10 },
  },
  {
    name: "suspect at a higher incarnation beats suspect",
    local: c("suspect", 1, 10),
    remote: c("suspect", 4, 10),
    want: { outcome: "news", state: "suspect", incarnation: 4, heartbeat: 10 },
  },
  {
    name: "suspect at a lower incarnation does not beat alive",
    local: c("alive", 3, 10),
    remote: c("suspect", 2, 10),
    want: { outcome: "keep", state: "alive", incarnation: 3, heartbeat: 10 },
  },
  {
    name: "alive at a lower incarnation does not beat suspect",
    local: c("suspect", 3, 10),
    remote: c("alive", 2, 10),
    want: { outcome: "keep", state: "suspect", incarnation: 3, heartbeat: 10 },
  },
  {
    name: "lower incarnation: only the heartbeat advances",
    local: c("alive", 3, 10),
    remote: c("alive", 2, 30),
    want: { outcome: "heartbeat", state: "alive", incarnation: 3, heartbeat: 30 },
  },

  // --- then suspect over alive at equal incarnation
  {
    name: "suspect beats alive at equal incarnation",
    local: c("alive", 5, 10),
    remote: c("suspect", 5, 10),
    want: { outcome: "news", state: "suspect", incarnation: 5, heartbeat: 10 },
  },
  {
    name: "suspect beats alive at equal incarnation, older remote heartbeat",
    local: c("alive", 5, 10),
    remote: c("suspect", 5, 3),
    want: { outcome: "news", state: "suspect", incarnation: 5, heartbeat: 10 },
  },
  {
    name: "alive does NOT beat suspect at equal incarnation",
    local: c("suspect", 5, 10),
    remote: c("alive", 5, 10),
    want: { outcome: "keep", state: "suspect", incarnation: 5, heartbeat: 10 },
  },
  {
    name: "alive does NOT beat suspect at equal incarnation, even with a fresher heartbeat",
    local: c("suspect", 5, 10),
    remote: c("alive", 5, 14),
    want: { outcome: "heartbeat", state: "suspect", incarnation: 5, heartbeat: 14 },
  },

  // --- same state and incarnation: the fresher heartbeat
  {
    name: "identical copies: keep",
    local: c("alive", 5, 10),
    remote: c("alive", 5, 10),
    want: { outcome: "keep", state: "alive", incarnation: 5, heartbeat: 10 },
  },
  {
    name: "fresher heartbeat only",
    local: c("alive", 5, 10),
    remote: c("alive", 5, 11),
    want: { outcome: "heartbeat", state: "alive", incarnation: 5, heartbeat: 11 },
  },
  {
    name: "older heartbeat: keep the local one",
    local: c("alive", 5, 10),
    remote: c("alive", 5, 2),
    want: { outcome: "keep", state: "alive", incarnation: 5, heartbeat: 10 },
  },
  {
    name: "suspect vs suspect, fresher heartbeat",
    local: c("suspect", 5, 10),
    remote: c("suspect", 5, 12),
    want: { outcome: "heartbeat", state: "suspect", incarnation: 5, heartbeat: 12 },
  },
  {
    name: "incarnation 0 and heartbeat 0",
    local: c("alive", 0, 0),
    remote: c("alive", 0, 0),
    want: { outcome: "keep", state: "alive", incarnation: 0, heartbeat: 0 },
  },
];

describe("mergeRule", () => {
  test.each(ROWS.map((r) => [r.name, r] as const))("%s", (_name, row) => {
    expect(mergeRule(row.local, row.remote)).toEqual(row.want);
  });

  test("the heartbeat is always the max of both copies, for every state pair", () => {
    for (const ls of STATE_CODES) {
      for (const rs of STATE_CODES) {
        for (const [li, ri] of [
          [1, 1],
          [1, 2],
          [2, 1],
        ] as const) {
          for (const [lh, rh] of [
            [3, 3],
            [3, 9],
            [9, 3],
          ] as const) {
            const got = mergeRule(c(ls, li, lh), c(rs, ri, rh));
            expect({ ls, rs, li, ri, lh, rh, heartbeat: got.heartbeat }).toEqual({ ls, rs, li, ri, lh, rh, heartbeat: Math.max(lh, rh) });
          }
        }
      }
    }
  });

  test("keep and heartbeat outcomes never change state or incarnation; news always does", () => {
    for (const ls of STATE_CODES) {
      for (const rs of STATE_CODES) {
        for (const [li, ri] of [
          [1, 1],
          [1, 2],
          [2, 1],
        ] as const) {
          const local = c(ls, li, 5);
          const got = mergeRule(local, c(rs, ri, 6));
          const changed = got.state !== local.state || got.incarnation !== local.incarnation;
          expect({ ls, rs, li, ri, outcome: got.outcome, changed }).toEqual({ ls, rs, li, ri, outcome: got.outcome, changed: got.outcome === "news" });
          if (got.outcome !== "news") expect(got.outcome).toBe("heartbeat"); // remote heartbeat 6 > 5
        }
      }
    }
  });

  test("merge converges: applying either copy to the other gives the same winner", () => {
    // The winner of (a, b) must be the winner of (b, a) too, or two nodes would disagree forever.
    for (const as of STATE_CODES) {
      for (const bs of STATE_CODES) {
        for (const [ai, bi] of [
          [1, 1],
          [1, 2],
          [2, 1],
        ] as const) {
          const a = c(as, ai, 1);
          const b = c(bs, bi, 1);
          const ab = mergeRule(a, b);
          const ba = mergeRule(b, a);
          // Two copies in the same terminal state keep their own incarnations (nothing to learn
          // from a dead member's incarnation, and its id can never come back), so only the state
          // is compared there.
          const sameTerminal = as === bs && isTerminal(as);
          expect({ as, bs, ai, bi, state: ab.state, inc: sameTerminal ? 0 : ab.incarnation }).toEqual({
            as,
            bs,
            ai,
            bi,
            state: ba.state,
            inc: sameTerminal ? 0 : ba.incarnation,
          });
        }
      }
    }
  });

  test("isTerminal", () => {
    expect(STATE_CODES.map(isTerminal)).toEqual([false, false, true, true]);
  });

  test("state wire codes are append-only", () => {
    expect(STATE_CODES).toEqual(["alive", "suspect", "failed", "left"]);
  });
});

describe("parseNodeId / makeNodeId", () => {
  const VALID: [string, { host: string; port: number; bootMs: number }][] = [
    ["127.0.0.1:5000@1700000000000", { host: "127.0.0.1", port: 5000, bootMs: 1700000000000 }],
    ["fa25-cs425-a001.cs.illinois.edu:7946@0", { host: "fa25-cs425-a001.cs.illinois.edu", port: 7946, bootMs: 0 }],
    ["localhost:1@5", { host: "localhost", port: 1, bootMs: 5 }],
    ["h:65535@123", { host: "h", port: 65535, bootMs: 123 }],
    ["h:08080@9", { host: "h", port: 8080, bootMs: 9 }],
  ];
  test.each(VALID)("parses %p", (id, want) => {
    expect(parseNodeId(id)).toEqual(want);
  });

  test.each(VALID)("makeNodeId round-trips %p", (id, want) => {
    const made = makeNodeId(want.host, want.port, want.bootMs);
    expect(parseNodeId(made)).toEqual(want);
    // The leading-zero port is accepted on input but printed canonically.
    expect(made).toBe(id === "h:08080@9" ? "h:8080@9" : id);
  });

  test("makeNodeId formats host:udpPort@bootMillis", () => {
    expect(makeNodeId("10.0.0.7", 5001, 1700000000123)).toBe("10.0.0.7:5001@1700000000123");
  });

  const INVALID: [string, string][] = [
    ["", "expected host:udpPort@bootMillis"],
    ["127.0.0.1:5000", "expected host:udpPort@bootMillis"],
    ["127.0.0.1@1700000000000", "expected host:udpPort@bootMillis"],
    [":5000@1", "expected host:udpPort@bootMillis"],
    ["h:@1", "expected host:udpPort@bootMillis"],
    ["h:5000@", "expected host:udpPort@bootMillis"],
    ["h:50a0@1", "expected host:udpPort@bootMillis"],
    ["h:5000@-1", "expected host:udpPort@bootMillis"],
    ["h:5000@1.5", "expected host:udpPort@bootMillis"],
    ["h:123456@1", "expected host:udpPort@bootMillis"],
    ["my host:5000@1", "expected host:udpPort@bootMillis"],
    [" h:5000@1", "expected host:udpPort@bootMillis"],
    ["h:5000@1 ", "expected host:udpPort@bootMillis"],
    ["h:5000@1@2", "expected host:udpPort@bootMillis"],
    ["::1:5000@1", "expected host:udpPort@bootMillis"],
    ["h:0@1", "port out of range"],
    ["h:65536@1", "port out of range"],
    ["h:99999@1", "port out of range"],
  ];
  test.each(INVALID)("rejects %p", (id, reason) => {
    let message = "";
    try {
      parseNodeId(id);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`invalid node id ${JSON.stringify(id)}: ${reason}`);
  });
});
