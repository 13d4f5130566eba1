/**
 * Small pure formulas of the failure detector, tested with tables (suspicion_test.ts).
 */
import type { Knobs } from "./cluster_config.ts";
import type { MemberState } from "./state.ts";

/**
 * How many times an update is piggybacked before it is dropped from the broadcast queue:
 * `mult * ceil(log2(n + 1))`, so it reaches every member with high probability (SWIM's λ·log n).
 */
export function retransmitLimit(memberCount: number, mult: number): number {
  return mult * Math.max(1, Math.ceil(Math.log2(memberCount + 1)));
}

/** What the timers say should happen to a non-self entry now (or nothing). */
export function timerVerdict(
  entry: { state: MemberState; heartbeatMs: number; stateSinceMs: number },
  knobs: Knobs,
  nowMs: number,
): "suspect" | "fail" | "remove" | undefined {
  const inState = nowMs - entry.stateSinceMs;
  switch (entry.state) {
    case "alive":
      // Heartbeat silence only means something when heartbeats are being gossiped.
      if (knobs.protocol === "gossip" && nowMs - entry.heartbeatMs > knobs.t_suspect_ms) {
        return knobs.suspicion ? "suspect" : "fail";
      }
      return undefined;
    case "suspect":
      return inState > knobs.t_fail_ms ? "fail" : undefined;
    case "failed":
    case "left":
      return inState > knobs.t_cleanup_ms ? "remove" : undefined;
  }
}

/** What a missed probe (no direct or indirect ack) does to its target. */
export function missedProbeVerdict(state: MemberState, knobs: Knobs): "suspect" | "fail" | undefined {
  if (state !== "alive") return undefined;
  return knobs.suspicion ? "suspect" : "fail";
}

/** Protocol period of the active protocol: one heartbeat and one round of probes or gossip. */
export function roundPeriodMs(knobs: Knobs): number {
  return knobs.protocol === "gossip" ? knobs.gossip_period_ms : knobs.ping_every_ms;
}

/**
 * hashicorp/memberlist's suspicion timeout for comparison tables:
 * `suspicionMult * max(1, log10(n)) * probeInterval` (LAN defaults: mult 4, probe 1 s).
 */
export function memberlistSuspicionTimeoutMs(n: number, probeIntervalMs = 1000, suspicionMult = 4): number {
  return suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * probeIntervalMs;
}
