/**
 * The seeded chaos plan of an exactly-once App 1 run, shared by the chaos test
 * (services/rainstorm/rainstorm_cluster_test.ts) and the benchmark (scripts/bench/rainstorm/chaos.ts),
 * so that a seed names the same kills in both: which stage, which of its tasks, and when.
 *
 * Pure: the caller passes the Rng in and owns the timers and the kill requests.
 */
import type { Rng } from "../shared/rng.ts";

/** Seed of the chaos runs when neither CHAOS_SEED nor --chaos-seed is given. */
export const DEFAULT_CHAOS_SEED = 4242;
/** A run kills 1 to this many tasks. */
export const CHAOS_MAX_KILLS = 2;
/** Earliest kill, ms after the job's `accepted` event: the tasks have started by then. */
export const CHAOS_FIRST_KILL_MS = 150;
/** Kills fall in [first, first + this) ms after `accepted`: inside the ~1 s the paced job lasts. */
export const CHAOS_KILL_WINDOW_MS = 700;
/** Input lines of a chaos run, and the source rate: the job lasts about a second. */
export const CHAOS_LINES = 600;
export const CHAOS_RATE = 600;
/** App 1: grep the lines with SIGN_, count them by CSV field 6 (Asset Category). */
export const CHAOS_PATTERN = "SIGN_";
export const CHAOS_COL = 6;
/** Tasks per stage of the chaos job. */
export const CHAOS_TASKS = 3;

/** One planned kill: at `atMs` after `accepted`, the task at fraction `pick` of stage `stage`'s task list. */
export interface ChaosKill {
  atMs: number;
  stage: 0 | 1;
  /** In [0, 1): index = floor(pick x the stage's task count) at the moment of the kill. */
  pick: number;
}

/** The next run's kills. The draws and their order are the replay contract: changing them changes every seed's plans. */
export function drawChaosPlan(rng: Rng): ChaosKill[] {
  const kills = 1 + Math.floor(rng.next() * CHAOS_MAX_KILLS);
  return Array.from({ length: kills }, () => ({ atMs: CHAOS_FIRST_KILL_MS + rng.next() * CHAOS_KILL_WINDOW_MS, stage: rng.next() < 0.5 ? 0 : 1, pick: rng.next() }));
}

/** The task a kill hits among the job's tasks as list_tasks shows them at that moment; undefined once the stage is gone. */
export function chaosTarget<T extends { job: string; stage: number }>(tasks: readonly T[], job: string, kill: ChaosKill): T | undefined {
  const ofStage = tasks.filter((t) => t.job === job && t.stage === kill.stage);
  return ofStage[Math.floor(kill.pick * ofStage.length)];
}

/** The words of the chaos job (App 1, exactly_once=true, paced at CHAOS_RATE) after `rainstorm`. */
export function chaosJobArgs(src: string, dest: string): string[] {
  return ["2", String(CHAOS_TASKS), "-stage-config-map", `stage0 grep-wrapper ${CHAOS_PATTERN} ${CHAOS_COL} stage1 aggregate-wrapper`, src, dest, "true", "false", String(CHAOS_RATE), "0", "0"];
}
