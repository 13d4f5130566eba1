/**
 * Table tests of the failure detector's small formulas.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_KNOBS, type Knobs } from "./cluster_config.ts";
import type { MemberState } from "./state.ts";
import { memberlistSuspicionTimeoutMs, missedProbeVerdict, retransmitLimit, roundPeriodMs, timerVerdict } from "./suspicion.ts";

const knobs = (k: Partial<Knobs>): Knobs => ({ ...DEFAULT_KNOBS, ...k });

describe("retransmitLimit = mult * max(1, ceil(log2(n + 1)))", () => {
  const ROWS: [number, number, number][] = [
    // [members, mult, limit]
    [0, 3, 3],
    [1, 3, 3],
    [2, 3, 6],
    [3, 3, 6],
    [4, 3, 9],
    [7, 3, 9],
    [8, 3, 12],
    [10, 4, 16],
    [15, 1, 4],
    [16, 1, 5],
    [100, 3, 21],
    [1000, 2, 20],
    [5, 0, 0],
  ];
  test.each(ROWS)("n=%p mult=%p -> %p", (n, mult, want) => {
    expect(retransmitLimit(n, mult)).toBe(want);
  });

  test("never decreases as the cluster grows", () => {
    let prev = 0;
    for (let n = 0; n <= 2000; n++) {
      const limit = retransmitLimit(n, 3);
      if (limit < prev) throw new Error(`retransmitLimit(${n}) = ${limit} < retransmitLimit(${n - 1}) = ${prev}`);
      prev = limit;
    }
    expect(prev).toBe(33); // ceil(log2(2001)) = 11
  });
});

describe("timerVerdict", () => {
  const T0 = 1_000_000;
  const gossipS = knobs({ protocol: "gossip", suspicion: true, t_suspect_ms: 1500, t_fail_ms: 1000, t_cleanup_ms: 5000 });
  const gossipN = { ...gossipS, suspicion: false };
  const pingS = knobs({ protocol: "pingack", suspicion: true, t_suspect_ms: 1500, t_fail_ms: 1000, t_cleanup_ms: 5000 });
  const pingN = { ...pingS, suspicion: false };

  type Verdict = "suspect" | "fail" | "remove" | undefined;
  interface Row {
    name: string;
    state: MemberState;
    knobs: Knobs;
    /** Milliseconds since the last heartbeat advanced. */
    sinceBeat: number;
    /** Milliseconds since the entry entered its state. */
    inState: number;
    want: Verdict;
  }
  const ROWS: Row[] = [
    // alive, gossip: heartbeat silence beyond t_suspect_ms
    { name: "gossip+suspicion alive, fresh heartbeat", state: "alive", knobs: gossipS, sinceBeat: 0, inState: 99_999, want: undefined },
    { name: "gossip+suspicion alive, silent exactly t_suspect", state: "alive", knobs: gossipS, sinceBeat: 1500, inState: 99_999, want: undefined },
    { name: "gossip+suspicion alive, silent t_suspect + 1 ms", state: "alive", knobs: gossipS, sinceBeat: 1501, inState: 0, want: "suspect" },
    { name: "gossip alive, silent exactly t_suspect", state: "alive", knobs: gossipN, sinceBeat: 1500, inState: 0, want: undefined },
    { name: "gossip alive, silent t_suspect + 1 ms: fail at once", state: "alive", knobs: gossipN, sinceBeat: 1501, inState: 0, want: "fail" },
    // alive, pingack: heartbeat silence means nothing (missed probes decide)
    { name: "pingack+suspicion alive, long heartbeat silence", state: "alive", knobs: pingS, sinceBeat: 1_000_000, inState: 1_000_000, want: undefined },
    { name: "pingack alive, long heartbeat silence", state: "alive", knobs: pingN, sinceBeat: 1_000_000, inState: 1_000_000, want: undefined },
    // suspect: t_fail_ms in state, in both protocols
    { name: "gossip suspect, exactly t_fail", state: "suspect", knobs: gossipS, sinceBeat: 99_999, inState: 1000, want: undefined },
    { name: "gossip suspect, t_fail + 1 ms", state: "suspect", knobs: gossipS, sinceBeat: 0, inState: 1001, want: "fail" },
    { name: "pingack suspect, exactly t_fail", state: "suspect", knobs: pingS, sinceBeat: 0, inState: 1000, want: undefined },
    { name: "pingack suspect, t_fail + 1 ms", state: "suspect", knobs: pingS, sinceBeat: 0, inState: 1001, want: "fail" },
    { name: "suspect with suspicion now off still fails after t_fail", state: "suspect", knobs: pingN, sinceBeat: 0, inState: 1001, want: "fail" },
    { name: "suspect, just entered", state: "suspect", knobs: gossipS, sinceBeat: 99_999, inState: 0, want: undefined },
    // failed and left: t_cleanup_ms in state
    { name: "failed, exactly t_cleanup", state: "failed", knobs: gossipS, sinceBeat: 99_999, inState: 5000, want: undefined },
    { name: "failed, t_cleanup + 1 ms", state: "failed", knobs: gossipS, sinceBeat: 0, inState: 5001, want: "remove" },
    { name: "failed, pingack, t_cleanup + 1 ms", state: "failed", knobs: pingN, sinceBeat: 0, inState: 5001, want: "remove" },
    { name: "left, exactly t_cleanup", state: "left", knobs: pingS, sinceBeat: 99_999, inState: 5000, want: undefined },
    { name: "left, t_cleanup + 1 ms", state: "left", knobs: pingS, sinceBeat: 0, inState: 5001, want: "remove" },
    { name: "left, gossip, t_cleanup + 1 ms", state: "left", knobs: gossipN, sinceBeat: 0, inState: 5001, want: "remove" },
    { name: "failed is never suspected again on heartbeat silence", state: "failed", knobs: gossipS, sinceBeat: 4000, inState: 10, want: undefined },
  ];
  test.each(ROWS.map((r) => [r.name, r] as const))("%s", (_name, row) => {
    const entry = { state: row.state, heartbeatMs: T0 - row.sinceBeat, stateSinceMs: T0 - row.inState };
    expect(timerVerdict(entry, row.knobs, T0)).toBe(row.want as never);
  });

  test("uses the knobs it is given, not the defaults", () => {
    const entry = { state: "alive" as const, heartbeatMs: 0, stateSinceMs: 0 };
    const k = knobs({ protocol: "gossip", t_suspect_ms: 300 });
    expect(timerVerdict(entry, k, 300)).toBe(undefined as never);
    expect(timerVerdict(entry, k, 301)).toBe("suspect");
    const s = { state: "suspect" as const, heartbeatMs: 0, stateSinceMs: 0 };
    expect(timerVerdict(s, knobs({ t_fail_ms: 40 }), 41)).toBe("fail");
    const f = { state: "failed" as const, heartbeatMs: 0, stateSinceMs: 0 };
    expect(timerVerdict(f, knobs({ t_cleanup_ms: 20 }), 21)).toBe("remove");
  });
});

describe("missedProbeVerdict", () => {
  const ROWS: [MemberState, boolean, "suspect" | "fail" | undefined][] = [
    ["alive", true, "suspect"],
    ["alive", false, "fail"],
    ["suspect", true, undefined],
    ["suspect", false, undefined],
    ["failed", true, undefined],
    ["failed", false, undefined],
    ["left", true, undefined],
    ["left", false, undefined],
  ];
  test.each(ROWS)("%p with suspicion=%p -> %p", (state, suspicion, want) => {
    expect(missedProbeVerdict(state, knobs({ suspicion }))).toBe(want as never);
  });
});

describe("roundPeriodMs", () => {
  test.each([
    ["gossip", knobs({ protocol: "gossip", gossip_period_ms: 120, ping_every_ms: 700 }), 120],
    ["pingack", knobs({ protocol: "pingack", gossip_period_ms: 120, ping_every_ms: 700 }), 700],
    ["defaults (pingack)", DEFAULT_KNOBS, 500],
  ] as [string, Knobs, number][])("%s", (_name, k, want) => {
    expect(roundPeriodMs(k)).toBe(want);
  });
});

describe("memberlistSuspicionTimeoutMs (LAN: 4 * max(1, log10 n) * 1000 ms)", () => {
  const ROWS: [number, number][] = [
    [0, 4000],
    [1, 4000],
    [5, 4000],
    [10, 4000],
    [20, 4000 * Math.log10(20)], // 5204.1...
    [50, 4000 * Math.log10(50)], // 6795.9...
    [100, 8000],
    [1000, 12_000],
  ];
  test.each(ROWS)("n=%p -> %p ms", (n, want) => {
    expect(memberlistSuspicionTimeoutMs(n)).toBeCloseTo(want, 6);
  });

  test("spot values", () => {
    expect(memberlistSuspicionTimeoutMs(10)).toBe(4000);
    expect(memberlistSuspicionTimeoutMs(100)).toBe(8000);
    expect(memberlistSuspicionTimeoutMs(1)).toBe(4000);
    expect(Math.round(memberlistSuspicionTimeoutMs(20))).toBe(5204);
  });

  test("probe interval and multiplier scale the result", () => {
    expect(memberlistSuspicionTimeoutMs(100, 500)).toBe(4000);
    expect(memberlistSuspicionTimeoutMs(100, 1000, 5)).toBe(10_000);
    expect(memberlistSuspicionTimeoutMs(3, 200, 2)).toBe(400);
  });
});
