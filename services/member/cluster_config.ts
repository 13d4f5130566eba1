/**
 * The cluster-wide membership configuration: protocol, suspicion and every timing knob.
 *
 * It is versioned and travels on every protocol message, so a change made at any node reaches
 * all of them. Two changes made concurrently at different nodes both get version `v+1`; the tie is
 * broken by the origin node id (the larger id wins), so every node converges on the same winner
 * whatever order it hears them in.
 */
import { isUintUpTo, MAX_CONFIG_VERSION, MAX_ID_LENGTH } from "./limits.ts";

export type Protocol = "gossip" | "pingack";

/** The knobs, with the names used in config.json, `/get` and `/set`. */
export interface Knobs {
  /** `pingack` (SWIM-style probes; default) or `gossip` (heartbeat tables). */
  protocol: Protocol;
  /** With suspicion a silent node is first `suspect` and can refute; without, it fails at once. Default true. */
  suspicion: boolean;
  /** pingack: probe period. Shorter detects sooner and costs more datagrams. Default 500 ms. */
  ping_every_ms: number;
  /** pingack: members probed per period. Default 1 (SWIM). */
  ping_fanout: number;
  /** pingack: wait for a direct ack before asking others to probe. Must be < ping_every_ms. Default 200 ms. */
  probe_timeout_ms: number;
  /** pingack: members asked to probe a silent target (SWIM ping-req) before it counts as missed; 0 = off. Default 3. */
  indirect_probes: number;
  /** gossip: heartbeat period. Default 250 ms. */
  gossip_period_ms: number;
  /**
   * Peers that get each gossip table (gossip) and each fresh update, eagerly, in both protocols.
   * Higher spreads news faster at more datagrams. Default 3.
   */
  gossip_fanout: number;
  /**
   * gossip: heartbeat silence before a member is suspected (or failed without suspicion).
   * Too short gives false suspicions under loss (the epidemic tail at 4 rounds is ~1e-5 per pair and round). Default 1500 ms.
   */
  t_suspect_ms: number;
  /**
   * How long a member stays suspect before it is declared failed (its window to refute);
   * `/switch`'s suspicion_time sets it. Default 1000 ms.
   */
  t_fail_ms: number;
  /** How long failed and left members stay listed before they are removed. Default 5000 ms. */
  t_cleanup_ms: number;
  /** Fraction of received datagrams dropped on purpose, for experiments. Default 0. */
  drop_rate_recv: number;
}

export interface ClusterConfig {
  /** Monotonic version; a change sets it to the highest version seen + 1, at most MAX_CONFIG_VERSION. */
  version: number;
  /** Id of the node that made this version (tie-break between concurrent changes). */
  origin: string;
  knobs: Knobs;
}

export const DEFAULT_KNOBS: Knobs = Object.freeze({
  protocol: "pingack",
  suspicion: true,
  ping_every_ms: 500,
  ping_fanout: 1,
  probe_timeout_ms: 200,
  indirect_probes: 3,
  gossip_period_ms: 250,
  gossip_fanout: 3,
  t_suspect_ms: 1500,
  t_fail_ms: 1000,
  t_cleanup_ms: 5000,
  drop_rate_recv: 0,
}) as Knobs;

/** Field order on the wire. Append-only: never reorder or remove. */
export const KNOB_ORDER: readonly (keyof Knobs)[] = [
  "protocol",
  "suspicion",
  "ping_every_ms",
  "ping_fanout",
  "probe_timeout_ms",
  "indirect_probes",
  "gossip_period_ms",
  "gossip_fanout",
  "t_suspect_ms",
  "t_fail_ms",
  "t_cleanup_ms",
  "drop_rate_recv",
];

interface IntRule {
  min: number;
  max: number;
}
const INT_RULES: Partial<Record<keyof Knobs, IntRule>> = {
  ping_every_ms: { min: 10, max: 60_000 },
  ping_fanout: { min: 1, max: 64 },
  probe_timeout_ms: { min: 1, max: 60_000 },
  indirect_probes: { min: 0, max: 16 },
  gossip_period_ms: { min: 10, max: 60_000 },
  gossip_fanout: { min: 1, max: 64 },
  t_suspect_ms: { min: 10, max: 600_000 },
  t_fail_ms: { min: 10, max: 600_000 },
  t_cleanup_ms: { min: 10, max: 3_600_000 },
};

/**
 * Validate a partial set of knobs (from config.json or a `/set` body) on top of `base`.
 * Returns the complete knobs, or throws an Error whose message names every bad field and what
 * was expected.
 */
export function applyKnobs(base: Knobs, patch: unknown, where = "membership"): Knobs {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
    throw new Error(`${where}: expected a JSON object of knobs, got ${JSON.stringify(patch)}`);
  }
  const out: Record<string, unknown> = { ...base };
  const errors: string[] = [];
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    const field = `${where}.${key}`;
    if (!(KNOB_ORDER as readonly string[]).includes(key)) {
      errors.push(`${field}: unknown knob; known knobs are ${KNOB_ORDER.join(", ")}`);
      continue;
    }
    if (key === "protocol") {
      if (value !== "gossip" && value !== "pingack") errors.push(`${field}: expected "gossip" or "pingack", got ${JSON.stringify(value)}`);
      else out[key] = value;
    } else if (key === "suspicion") {
      const parsed = parseSuspicion(value);
      if (parsed === undefined) errors.push(`${field}: expected true/false or "enabled"/"disabled", got ${JSON.stringify(value)}`);
      else out[key] = parsed;
    } else if (key === "drop_rate_recv") {
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value >= 1) {
        errors.push(`${field}: expected a number in [0, 1), got ${JSON.stringify(value)}`);
      } else out[key] = value;
    } else {
      const rule = INT_RULES[key as keyof Knobs]!;
      if (typeof value !== "number" || !Number.isInteger(value) || value < rule.min || value > rule.max) {
        errors.push(`${field}: expected an integer in [${rule.min}, ${rule.max}], got ${JSON.stringify(value)}`);
      } else out[key] = value;
    }
  }
  const knobs = out as unknown as Knobs;
  if (errors.length === 0) {
    if (knobs.probe_timeout_ms >= knobs.ping_every_ms) {
      errors.push(`${where}.probe_timeout_ms: expected less than ping_every_ms (${knobs.ping_every_ms}), got ${knobs.probe_timeout_ms}`);
    }
    if (knobs.t_suspect_ms < 2 * knobs.gossip_period_ms) {
      errors.push(`${where}.t_suspect_ms: expected at least 2 x gossip_period_ms (${2 * knobs.gossip_period_ms}), got ${knobs.t_suspect_ms}`);
    }
  }
  if (errors.length > 0) throw new Error(errors.join("; "));
  return knobs;
}

export function parseSuspicion(value: unknown): boolean | undefined {
  if (value === true || value === "enabled" || value === "on") return true;
  if (value === false || value === "disabled" || value === "off") return false;
  return undefined;
}

/** True when `a` must replace `b` (higher version; at equal version the larger origin id). */
export function configBeats(a: ClusterConfig, b: ClusterConfig): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return a.origin > b.origin;
}

export type ConfigTuple = [version: number, origin: string, ...values: (string | number | boolean)[]];

export function configToTuple(c: ClusterConfig): ConfigTuple {
  return [c.version, c.origin, ...KNOB_ORDER.map((k) => c.knobs[k])];
}

/**
 * Decode a config tuple from the wire; throws on a malformed one (the datagram is dropped). The
 * version must be an integer in [0, MAX_CONFIG_VERSION], the origin a string of at most
 * MAX_ID_LENGTH characters, and the knobs pass the same validation as config.json's.
 */
export function configFromTuple(tuple: unknown): ClusterConfig {
  if (!Array.isArray(tuple) || tuple.length < 2 + KNOB_ORDER.length) throw new Error("config: malformed tuple");
  const [version, origin] = tuple;
  if (!isUintUpTo(version, MAX_CONFIG_VERSION) || typeof origin !== "string" || origin.length > MAX_ID_LENGTH) throw new Error("config: malformed version");
  const patch: Record<string, unknown> = {};
  KNOB_ORDER.forEach((k, i) => (patch[k] = tuple[2 + i]));
  return { version, origin, knobs: applyKnobs(DEFAULT_KNOBS, patch, "wire config") };
}
