/**
 * The seeded chaos plan of an exactly-once App 1 run, shared by the chaos test
 * (services/rainstorm/rainstorm_cluster_test.ts) and the benchmark (scripts/bench/rainstorm/chaos.ts),
 * so that a seed names the same kills in both: which stage, which of its tasks, and when.
 * "When" is progress, not time: a kill fires once the job has streamed a planned fraction of its
 * expected outputs, so on a loaded box (or a fast run) no kill falls after the job ended and every
 * planned kill lands while its task runs; the caller checks that each one did.
 *
 * Pure: the caller passes the Rng in and owns the timers and the kill requests.
 */
import type { Rng } from "../shared/rng.ts";

/** Seed of the chaos runs when neither CHAOS_SEED nor --chaos-seed is given. */
export const DEFAULT_CHAOS_SEED = 4242;
/** A run kills 1 to this many tasks. */
export const CHAOS_MAX_KILLS = 2;
/** Earliest kill, as a fraction of the job's expected outputs: its tasks have started and made progress. */
export const CHAOS_FIRST_KILL_FRACTION = 0.05;
/** Kills fall in [first, first + this) of the expected outputs: the last one well before the end, so its task is still there. */
export const CHAOS_KILL_WINDOW_FRACTION = 0.75;
/** Input lines of a chaos run, and the source rate: the job lasts about a second. */
export const CHAOS_LINES = 600;
export const CHAOS_RATE = 600;
/** App 1: grep the lines with SIGN_, count them by CSV field 6 (Asset Category). */
export const CHAOS_PATTERN = "SIGN_";
export const CHAOS_COL = 6;
/** Tasks per stage of the chaos job. */
export const CHAOS_TASKS = 3;

/** One planned kill: once `afterFraction` of the expected outputs have streamed, the task at fraction `pick` of stage `stage`'s task list. */
export interface ChaosKill {
  afterFraction: number;
  stage: 0 | 1;
  /** In [0, 1): index = floor(pick x the stage's task count) at the moment of the kill. */
  pick: number;
}

/** The next run's kills. The draws and their order are the replay contract: changing them changes every seed's plans. */
export function drawChaosPlan(rng: Rng): ChaosKill[] {
  const kills = 1 + Math.floor(rng.next() * CHAOS_MAX_KILLS);
  const plan = Array.from({ length: kills }, () => ({
    afterFraction: CHAOS_FIRST_KILL_FRACTION + rng.next() * CHAOS_KILL_WINDOW_FRACTION,
    stage: rng.next() < 0.5 ? (0 as const) : (1 as const),
    pick: rng.next(),
  }));
  return plan.sort((a, b) => a.afterFraction - b.afterFraction);
}

/** The output count at which `kill` fires, for a job expected to stream `expectedOutputs` lines (at least 1). */
export function chaosKillAfterOutputs(kill: ChaosKill, expectedOutputs: number): number {
  return Math.max(1, Math.floor(kill.afterFraction * expectedOutputs));
}

/** The task a kill hits among the job's tasks as list_tasks shows them at that moment; undefined once the stage is gone. */
export function chaosTarget<T extends { job: string; stage: number }>(tasks: readonly T[], job: string, kill: ChaosKill): T | undefined {
  const ofStage = tasks.filter((t) => t.job === job && t.stage === kill.stage);
  return ofStage[Math.floor(kill.pick * ofStage.length)];
}

/** The words of the chaos job (App 1, exactly_once=true, paced at CHAOS_RATE) after `rainstorm`. */
export function chaosJobArgs(src: string, dest: string): string[] {
  return [
    "2",
    String(CHAOS_TASKS),
    "-stage-config-map",
    `stage0 grep-wrapper ${CHAOS_PATTERN} ${CHAOS_COL} stage1 aggregate-wrapper`,
    src,
    dest,
    "true",
    "false",
    String(CHAOS_RATE),
    "0",
    "0",
  ];
}
