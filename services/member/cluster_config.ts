/**
 * The cluster-wide membership configuration: protocol, suspicion and every timing knob.
 *
 * It is versioned and travels on every protocol message, so a change made at any node reaches
 * all of them. Two changes made concurrently at different nodes both get version `v+1`; the tie is
 * broken by the origin node id (the larger id wins), so every node converges on the same winner
 * whatever order it hears them in.
 */
import { applySettings } from "../shared/config.ts";
import { DEFAULT_KNOBS, type Knobs, MEMBERSHIP_SETTINGS } from "./config.ts";
import { isUintUpTo, MAX_CONFIG_VERSION, MAX_ID_LENGTH } from "./limits.ts";

// The knobs are declared (default, bounds, doc) in config.ts; the names stay importable from here.
export { DEFAULT_KNOBS, type Knobs, parseSuspicion, type Protocol } from "./config.ts";

export interface ClusterConfig {
  /** Monotonic version; a change sets it to the highest version seen + 1, at most MAX_CONFIG_VERSION. */
  version: number;
  /** Id of the node that made this version (tie-break between concurrent changes). */
  origin: string;
  knobs: Knobs;
}

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

/**
 * Validate a partial set of knobs (from config.json or a `/set` body) on top of `base`.
 * Returns the complete knobs, or throws an Error whose message names every bad field and what
 * was expected.
 */
export function applyKnobs(base: Knobs, patch: unknown, where = "membership"): Knobs {
  const out: Record<string, unknown> = { ...base };
  const errors: string[] = [];
  if (!applySettings(where, patch, MEMBERSHIP_SETTINGS, out, errors, { noun: "knob", expected: "expected a JSON object of knobs" })) throw new Error(errors[0]);
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
