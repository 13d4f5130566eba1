/**
 * Source rate schedules, pure: "500:10s,5000:20s,500:10s" means 500 tuples/s for 10 s, then 5000 tuples/s
 * for 20 s, then 500 tuples/s for 10 s; after the last step its rate continues for ever.
 *
 * Time is passed in as milliseconds elapsed since the source started (no clocks here). A step covers the
 * half-open interval [start, start + duration): at the exact boundary the next step's rate is in force.
 * A source paces itself with the integral of the rate: line n (1-based) may be sent once
 * tuplesDueBy(elapsed) >= n, and timeDueMs(n) says how long to sleep until then.
 */
import { parseDurationMs } from "../shared/duration.ts";
import { PlanError } from "./plan_error.ts";

export interface RateStep {
  /** Tuples per second while the step lasts, in [MIN_RATE_PER_SEC, MAX_RATE_PER_SEC] (a pause is not a step). */
  ratePerSec: number;
  /** How long the step lasts, > 0 ms. */
  durationMs: number;
}

/**
 * At most this many steps. 100 is far more than a benchmark script needs; the cap keeps a typo'd or
 * generated schedule from making every rateAt/tuplesDueBy call walk a huge list.
 */
export const MAX_RATE_STEPS = 100;
/**
 * Sum of the step durations at most 24 h: a schedule describes one experiment; longer is almost surely a
 * unit mistake (e.g. "10m" meant as 10 s is still allowed, "100000m" is not).
 */
export const MAX_SCHEDULE_MS = 24 * 60 * 60 * 1000;
/**
 * Highest rate, 10,000,000 tuples/s: well above what one source can send, so it never limits a real run,
 * while keeping tuple counts over 24 h (< 1e12) exact in a double.
 */
export const MAX_RATE_PER_SEC = 10_000_000;
/**
 * Lowest paced rate, 1 tuple/s (for a step here and for a constant input_rate; input_rate 0 means
 * "as fast as the pipeline takes them", not a pace). A job cannot be cancelled yet, so a tiny rate
 * is a job that never ends: 1e-300 tuples/s would hold its tasks for ever. At 1 tuple/s a job ends
 * after one second per line, still slow enough to watch a demo tuple by tuple; anything slower
 * would need cancel first.
 */
export const MIN_RATE_PER_SEC = 1;

const FORM = "expected <tuples/s>:<duration> such as 5000:20s";

/** Parse "500:10s,5000:20s,500:10s"; durations take ms, s or m (a bare number is ms). Throws PlanError. */
export function parseRateSchedule(text: string): RateStep[] {
  if (text.trim() === "")
    throw new PlanError(`--rate-schedule: empty; expected one or more comma-separated steps <tuples/s>:<duration> such as 500:10s,5000:20s`);
  const pieces = text.split(",");
  if (pieces.length > MAX_RATE_STEPS) throw new PlanError(`--rate-schedule: ${pieces.length} steps; at most ${MAX_RATE_STEPS} are allowed`);
  const steps: RateStep[] = [];
  let totalMs = 0;
  pieces.forEach((raw, i) => {
    const piece = raw.trim();
    const where = `--rate-schedule: step ${i + 1} ${JSON.stringify(piece)}`;
    const m = /^([^:]*):([^:]*)$/.exec(piece);
    if (!m) throw new PlanError(`${where}: ${FORM}`);
    const rateText = m[1]!.trim();
    const durationText = m[2]!.trim();
    if (!/^\d+(?:\.\d+)?$/.test(rateText)) throw new PlanError(`${where}: rate ${JSON.stringify(rateText)} is not a number; ${FORM}`);
    const ratePerSec = Number(rateText);
    if (!(ratePerSec >= MIN_RATE_PER_SEC && ratePerSec <= MAX_RATE_PER_SEC)) {
      throw new PlanError(`${where}: rate must be at least ${MIN_RATE_PER_SEC} and at most ${MAX_RATE_PER_SEC} tuples/s, got ${rateText}; ${FORM}`);
    }
    let durationMs: number;
    try {
      durationMs = parseDurationMs(durationText);
    } catch {
      throw new PlanError(`${where}: duration ${JSON.stringify(durationText)} is not a duration (ms, s or m, e.g. 1500ms, 10s, 2m); ${FORM}`);
    }
    if (durationMs <= 0) throw new PlanError(`${where}: duration must be > 0; ${FORM}`);
    totalMs += durationMs;
    if (totalMs > MAX_SCHEDULE_MS) throw new PlanError(`${where}: the schedule lasts more than 24 h (${MAX_SCHEDULE_MS} ms) in total`);
    steps.push({ ratePerSec, durationMs });
  });
  return steps;
}

/** The rate in force `elapsedMs` after the start (0 before the start or for no steps); after the last step its rate continues. */
export function rateAt(steps: RateStep[], elapsedMs: number): number {
  if (elapsedMs < 0 || steps.length === 0) return 0;
  let start = 0;
  for (const step of steps) {
    if (elapsedMs < start + step.durationMs) return step.ratePerSec;
    start += step.durationMs;
  }
  return steps[steps.length - 1]!.ratePerSec;
}

/** Tuples the schedule allows in total by `elapsedMs` (the integral of the rate; 0 at or before the start). Not rounded. */
export function tuplesDueBy(steps: RateStep[], elapsedMs: number): number {
  if (!(elapsedMs > 0) || steps.length === 0) return 0;
  let start = 0;
  let due = 0;
  for (const step of steps) {
    if (elapsedMs <= start + step.durationMs) return due + (step.ratePerSec * (elapsedMs - start)) / 1000;
    due += (step.ratePerSec * step.durationMs) / 1000;
    start += step.durationMs;
  }
  return due + (steps[steps.length - 1]!.ratePerSec * (elapsedMs - start)) / 1000;
}

/**
 * The earliest elapsedMs at which tuplesDueBy >= n: 0 for n <= 0, Infinity for no steps. Nudged up by
 * rounding ulps if needed so that tuplesDueBy(steps, timeDueMs(steps, n)) >= n holds exactly in floating point.
 */
export function timeDueMs(steps: RateStep[], n: number): number {
  if (!(n > 0)) return 0;
  if (steps.length === 0 || n === Infinity) return Infinity;
  let start = 0;
  let due = 0;
  let t: number | undefined;
  for (const step of steps) {
    const stepTuples = (step.ratePerSec * step.durationMs) / 1000;
    if (due + stepTuples >= n) {
      t = start + ((n - due) * 1000) / step.ratePerSec;
      break;
    }
    due += stepTuples;
    start += step.durationMs;
  }
  t ??= start + ((n - due) * 1000) / steps[steps.length - 1]!.ratePerSec;
  for (let i = 0; i < 8 && tuplesDueBy(steps, t) < n; i++) t += Math.max(Math.abs(t) * Number.EPSILON, Number.MIN_VALUE);
  return t;
}
