/**
 * Job plans, pure: parsing the job command, validating it, placing tasks, partitioning keys.
 */
import { splitWords as splitShellWords } from "../shared/lines.ts";
import { PlanError } from "./plan_error.ts";
import { MAX_RATE_PER_SEC, MIN_RATE_PER_SEC, parseRateSchedule, type RateStep } from "./rate_schedule.ts";

export interface StageSpec {
  op: string;
  args: string[];
}

export interface JobSpec {
  stages: StageSpec[];
  tasksPerStage: number;
  src: string;
  dest: string;
  exactlyOnce: boolean;
  autoscale: boolean;
  /** Source tuples per second: 0 = as fast as the pipeline takes them, else in [MIN_RATE_PER_SEC, MAX_RATE_PER_SEC]. */
  inputRate: number;
  lowWatermark: number;
  highWatermark: number;
  /** `--rate-schedule`: the source's rate over time, instead of a constant input_rate. */
  rateSchedule?: RateStep[];
}

export { PlanError };

/** Words of a stage map or an argument string, as a shell would split them. */
export function splitWords(line: string): string[] {
  try {
    return splitShellWords(line);
  } catch (err) {
    throw new PlanError((err as Error).message);
  }
}

/** `stage0 grep-wrapper 'Sign Post' 4 stage1 aggregate-wrapper` -> stages in order. */
export function parseStageMap(map: string): StageSpec[] {
  const words = splitWords(map);
  const stages: StageSpec[] = [];
  let current: StageSpec | undefined;
  for (const w of words) {
    const m = /^stage(\d+)$/.exec(w);
    if (m) {
      const n = Number(m[1]);
      if (n !== stages.length) throw new PlanError(`stage map: expected stage${stages.length} next, got ${w}`);
      current = { op: "", args: [] };
      stages.push(current);
    } else if (!current) {
      throw new PlanError(`stage map: expected it to start with stage0, got ${JSON.stringify(w)}`);
    } else if (!current.op) current.op = w;
    else current.args.push(w);
  }
  stages.forEach((s, i) => {
    if (!s.op) throw new PlanError(`stage map: stage${i} names no operator`);
  });
  if (stages.length === 0) throw new PlanError("stage map: expected at least one stage (stage0 <op> [args...])");
  return stages;
}

/** Most stages in a job. */
export const MAX_STAGES = 16;
/** Most tasks in a stage, at the start and after autoscaling (rainstorm.autoscale_max_tasks is at most this too). */
export const MAX_TASKS_PER_STAGE = 64;

function parseCount(value: string | undefined, what: string, min: number, max: number): number {
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || n < min || n > max)
    throw new PlanError(`${what}: expected an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  return n;
}

/** A rate as typed: plain decimal digits, optionally with a fraction (no sign, exponent, hex or spaces). */
const RATE_TEXT = /^\d+(?:\.\d+)?$/;

/**
 * input_rate: 0 (as fast as the pipeline takes them) or a pace in [MIN_RATE_PER_SEC,
 * MAX_RATE_PER_SEC] tuples/s. A pace just above 0 (1e-300) would be a job that never ends.
 */
export function parseInputRate(value: string | undefined, what = "input_rate"): number {
  const n = Number(value);
  if (value === undefined || !RATE_TEXT.test(value) || !(n === 0 || (n >= MIN_RATE_PER_SEC && n <= MAX_RATE_PER_SEC))) {
    throw new PlanError(
      `${what}: expected 0 (as fast as possible) or a number of tuples/s from ${MIN_RATE_PER_SEC} to ${MAX_RATE_PER_SEC}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** LW and HW: tuples/s per task in [0, MAX_RATE_PER_SEC] (a finite, non-negative decimal). */
export function parseWatermark(value: string | undefined, what: string): number {
  const n = Number(value);
  if (value === undefined || !RATE_TEXT.test(value) || !(n >= 0 && n <= MAX_RATE_PER_SEC)) {
    throw new PlanError(`${what}: expected a number of tuples/s per task from 0 to ${MAX_RATE_PER_SEC}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseBool(value: string | undefined, what: string): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new PlanError(`${what}: expected true or false, got ${JSON.stringify(value)}`);
}

/**
 * Parse the job command's arguments (after the word `rainstorm`), in either form:
 *   N M -stage-config-map '<stage0 op args... stage1 ...>' src dest eo autoscale rate LW HW
 *   N M op1 '<op1 args>' op2 '<op2 args>' ... src dest eo autoscale rate LW HW
 */
export function parseJobArgs(argvIn: string[]): JobSpec {
  // `--rate-schedule S` may stand anywhere; the rest is positional.
  const argv = [...argvIn];
  let rateSchedule: RateStep[] | undefined;
  const schedAt = argv.findIndex((a) => a === "--rate-schedule" || a.startsWith("--rate-schedule="));
  if (schedAt >= 0) {
    const word = argv[schedAt]!;
    const text = word.includes("=") ? word.slice(word.indexOf("=") + 1) : argv[schedAt + 1];
    if (text === undefined) throw new PlanError("--rate-schedule: expected a schedule such as 500:10s,5000:20s,500:10s");
    argv.splice(schedAt, word.includes("=") ? 1 : 2);
    rateSchedule = parseRateSchedule(text);
  }
  const nStages = parseCount(argv[0], "Nstages", 1, MAX_STAGES);
  const tasksPerStage = parseCount(argv[1], "Ntasks_per_stage", 1, MAX_TASKS_PER_STAGE);
  let stages: StageSpec[];
  let rest: string[];
  const mapAt = argv.findIndex((a) => a === "-stage-config-map" || a === "--stage-config-map");
  if (mapAt >= 0) {
    if (mapAt !== 2) throw new PlanError(`-stage-config-map: expected right after Nstages and Ntasks_per_stage`);
    stages = parseStageMap(argv[3] ?? "");
    rest = argv.slice(4);
  } else {
    stages = [];
    for (let i = 0; i < nStages; i++) {
      const op = argv[2 + 2 * i];
      const args = argv[3 + 2 * i];
      if (op === undefined || args === undefined) throw new PlanError(`expected ${nStages} pairs of <op> '<args>' after Ntasks_per_stage`);
      stages.push({ op, args: splitWords(args) });
    }
    rest = argv.slice(2 + 2 * nStages);
  }
  if (stages.length !== nStages) throw new PlanError(`Nstages is ${nStages} but the stage map has ${stages.length} stages`);
  if (rest.length !== 7)
    throw new PlanError(
      `expected 7 arguments after the stages (src dest exactly_once autoscale input_rate LW HW), got ${rest.length}: ${JSON.stringify(rest)}`,
    );
  const [src, dest, eo, autoscale, rate, lw, hw] = rest as [string, string, string, string, string, string, string];
  const spec: JobSpec = {
    stages,
    tasksPerStage,
    src,
    dest,
    exactlyOnce: parseBool(eo, "exactly_once"),
    autoscale: parseBool(autoscale, "autoscale"),
    inputRate: parseInputRate(rate),
    lowWatermark: parseWatermark(lw, "LW"),
    highWatermark: parseWatermark(hw, "HW"),
  };
  if (rateSchedule) {
    if (spec.inputRate > 0) throw new PlanError(`input_rate is ${spec.inputRate} and --rate-schedule is given: set input_rate to 0 with a schedule`);
    spec.rateSchedule = rateSchedule;
  }
  if (spec.lowWatermark > spec.highWatermark) throw new PlanError(`LW (${spec.lowWatermark}) must not exceed HW (${spec.highWatermark})`);
  return spec;
}

/**
 * Operator names resolve inside the operators directory only: a plain file name, never a path.
 * The leader checks it before a job starts, and every worker checks it again before it turns the
 * name into a path (worker.ts operatorFile), since /worker/start comes from the wire.
 */
export function validateOperatorName(op: string): string {
  if (typeof op !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(op) || op.includes("..")) {
    throw new PlanError(`operator ${JSON.stringify(op)}: expected a plain name from the operators directory (letters, digits, '-', '_', '.'; no '/' or '..')`);
  }
  return op;
}

/** Spread `count` tasks over `nodes` round-robin, starting where the previous stage stopped. */
export function placeRoundRobin<T>(nodes: T[], count: number, offset: number): T[] {
  if (nodes.length === 0) throw new PlanError("no alive worker to place tasks on");
  return Array.from({ length: count }, (_, i) => nodes[(offset + i) % nodes.length]!);
}

/** FNV-1a 32-bit: a stable, fast key hash (the same on every node and every run). */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function partitionOf(key: string, taskCount: number): number {
  return hashKey(key) % taskCount;
}
