/**
 * What a worker accepts from the wire: /worker/start and /data come from other processes, so a
 * worker checks every name and number in them itself before it turns one into a path, a process
 * or operator input; the leader checks the workers' output notices (/outputs) the same way. Each check returns the value or throws a RequestError (BatchError
 * for batches) that names the field and what was expected.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { validateRemoteName } from "../hydfs/names.ts";
import { RequestError } from "./errors.ts";
import type { OutputsNotice, SourceStart } from "./model.ts";
import { MAX_RATE_PER_SEC, MAX_RATE_STEPS, MAX_SCHEDULE_MS } from "./rate_schedule.ts";
import { MAX_STAGES, MAX_TASKS_PER_STAGE, validateOperatorName } from "./plan.ts";
import type { Batch, Routes, TaskStart } from "./worker.ts";

/**
 * Job ids as the leader makes them, `job-<Date.now() in base 36>-<counter>`. A job id names the
 * task log directory and the HyDFS task logs, so one from the wire must match this exactly.
 */
export const JOB_ID_PATTERN = /^job-[0-9a-z]{1,16}-[1-9][0-9]{0,15}$/;
/**
 * Most tuples in one batch, 1,000,000: far above batch_size (at most 65,536) times what one input
 * makes downstream, so only a broken or hostile sender reaches it. An outbox that holds more (an
 * operator that multiplies its input) is sent in several batches of at most this many.
 */
export const MAX_BATCH_TUPLES = 1_000_000;
/** Most arguments of one operator: as many words as a whole job may have (POST /jobs). */
export const MAX_OPERATOR_ARGS = 200;
/** Longest operator argument: 64 KiB, half of Linux's 128 KiB limit per argument of a program. */
export const MAX_OPERATOR_ARG_CHARS = 64 * 1024;
/** A worker address in routes, "host:port" (an IPv4 address or a host name). */
const ADDRESS_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/;

/** `job` if it is a job id as the leader makes them, else a RequestError naming it. */
export function checkJobId(job: unknown, what = "job"): string {
  if (typeof job !== "string" || !JOB_ID_PATTERN.test(job)) {
    throw new RequestError(`${what}: expected a job id such as job-m1abc2de-1 (job-<base36>-<number>), got ${describe(job)}`);
  }
  return job;
}

/** `n` if it is an integer in [0, limit), else a RequestError naming `what`. */
export function checkIndex(n: unknown, what: string, limit: number): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n >= limit) {
    throw new RequestError(`${what}: expected an integer from 0 to ${limit - 1}, got ${describe(n)}`);
  }
  return n;
}

function checkAddress(a: unknown, what: string): string {
  const m = typeof a === "string" ? ADDRESS_PATTERN.exec(a) : null;
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65_535) throw new RequestError(`${what}: expected host:port, got ${describe(a)}`);
  return a as string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Routes from the wire, checked: a version, 1..MAX_STAGES stages of 1..MAX_TASKS_PER_STAGE host:port each. */
export function checkRoutes(raw: unknown): Routes {
  if (!isRecord(raw)) throw new RequestError(`routes: expected {version, stages}, got ${describe(raw)}`);
  const version = checkIndex(raw.version, "routes.version", Number.MAX_SAFE_INTEGER);
  const stages = raw.stages;
  if (!Array.isArray(stages) || stages.length < 1 || stages.length > MAX_STAGES)
    throw new RequestError(`routes.stages: expected 1 to ${MAX_STAGES} stages, got ${describe(stages)}`);
  stages.forEach((tasks: unknown, s) => {
    if (!Array.isArray(tasks) || tasks.length < 1 || tasks.length > MAX_TASKS_PER_STAGE)
      throw new RequestError(`routes.stages[${s}]: expected 1 to ${MAX_TASKS_PER_STAGE} addresses, got ${describe(tasks)}`);
    tasks.forEach((a: unknown, i) => checkAddress(a, `routes.stages[${s}][${i}]`));
  });
  const term = raw.term === undefined ? {} : { term: checkIndex(raw.term, "routes.term", Number.MAX_SAFE_INTEGER) };
  return { version, ...term, stages: stages as string[][] };
}

/** A /worker/start request, checked field by field (the leader's own checks are not relied on). */
export function checkTaskStart(raw: unknown): TaskStart {
  if (!isRecord(raw)) throw new RequestError(`task: expected {job, stage, index, op, args, routes}, got ${describe(raw)}`);
  const job = checkJobId(raw.job);
  const stage = checkIndex(raw.stage, "stage", MAX_STAGES);
  const index = checkIndex(raw.index, "index", MAX_TASKS_PER_STAGE);
  const op = checkOperatorName(raw.op);
  const args = raw.args;
  if (!Array.isArray(args) || args.length > MAX_OPERATOR_ARGS)
    throw new RequestError(`args: expected a list of at most ${MAX_OPERATOR_ARGS} strings, got ${describe(args)}`);
  args.forEach((a: unknown, i) => {
    // A NUL would end the argument early in the operator's argv.
    if (typeof a !== "string" || a.length > MAX_OPERATOR_ARG_CHARS || a.includes("\0")) {
      throw new RequestError(`args[${i}]: expected a string of at most ${MAX_OPERATOR_ARG_CHARS} characters without NUL, got ${describe(a)}`);
    }
  });
  const routes = checkRoutes(raw.routes);
  if (stage >= routes.stages.length) throw new RequestError(`stage: ${stage} is not a stage of the routes (${routes.stages.length} stages)`);
  if (raw.exactlyOnce !== undefined && typeof raw.exactlyOnce !== "boolean")
    throw new RequestError(`exactlyOnce: expected true or false, got ${describe(raw.exactlyOnce)}`);
  const dest = checkDest(raw.dest, stage === routes.stages.length - 1);
  return {
    job,
    stage,
    index,
    op,
    args: args as string[],
    routes,
    ...(raw.exactlyOnce === undefined ? {} : { exactlyOnce: raw.exactlyOnce }),
    ...(dest === undefined ? {} : { dest }),
  };
}

/** A task start's dest: a HyDFS file name for a task of the last stage (it appends the results there), none for any other. */
function checkDest(dest: unknown, lastStage: boolean): string | undefined {
  if (!lastStage) {
    if (dest !== undefined) throw new RequestError(`dest: only a task of the last stage writes dest, got ${describe(dest)}`);
    return undefined;
  }
  try {
    return validateRemoteName(dest);
  } catch (err) {
    throw new RequestError(`dest: a task of the last stage appends its results to dest: ${(err as Error).message}`);
  }
}

/** The operator name if it is a plain name (validateOperatorName), else a RequestError. */
export function checkOperatorName(op: unknown): string {
  try {
    return validateOperatorName(op as string);
  } catch (err) {
    throw new RequestError((err as Error).message);
  }
}

/** A value in an error message: JSON, shortened. */
export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

/** A batch the receiver refuses: malformed, or not what the route takes. Answered 400 with {"error"}. */
export class BatchError extends RequestError {}

/** The fields a batch may have; any other is refused. */
const BATCH_FIELDS = new Set(["job", "stage", "index", "count", "lines", "floor"]);
/** The largest batch body rainstormd takes (its server's maxRequestBodySize). */
export const MAX_BATCH_BYTES = 256 * 1024 * 1024;
/**
 * One decoder for every batch, with limits: a map of at most one entry more than BATCH_FIELDS
 * (so that a stray field is refused by name), arrays of a few items at most (a batch has none:
 * they are decoded only to be refused by name), binary data only up to MAX_BATCH_BYTES (`lines`
 * as UTF-8 bytes; anywhere else it is refused by the field's check), no extension data.
 */
const BATCH_DECODER = new Decoder({ maxMapLength: BATCH_FIELDS.size + 1, maxArrayLength: 16, maxBinLength: MAX_BATCH_BYTES, maxExtLength: 0 });
/** One encoder for every batch sent: its buffer grows to the largest batch once instead of per batch. */
const BATCH_ENCODER = new Encoder({ ignoreUndefined: true });
const UTF8 = new TextEncoder();
/** Lines must be valid UTF-8: a bad byte is refused, not replaced. */
const UTF8_STRICT = new TextDecoder("utf-8", { fatal: true });

/**
 * A batch for the wire: a msgpack map whose `lines` are UTF-8 bytes (msgpack bin), encoded and
 * decoded natively (TextEncoder / TextDecoder) rather than by msgpack's own per-character string
 * code, which cost about a tenth of a worker's CPU. decodeBatch also takes `lines` as a msgpack
 * string.
 */
export function encodeBatch(batch: Batch): Uint8Array {
  return BATCH_ENCODER.encode({ ...batch, lines: UTF8.encode(batch.lines) });
}

/**
 * A batch from the wire (POST /data), checked before anything is done with it; a BatchError (400)
 * says what is wrong. Checked: the msgpack itself; the fields and their types; job against
 * JOB_ID_PATTERN; stage and index (integers, stage < MAX_STAGES, index < MAX_TASKS_PER_STAGE);
 * count in [0, MAX_BATCH_TUPLES]; floor, if any, a non-negative safe integer; lines, as a string or
 * as UTF-8 bytes; and that lines holds exactly `count` tuple lines (tupleLinesProblem). So a
 * batch that reaches an operator gets exactly one answer per line, and one line cannot carry a
 * control message ({"restore"}, {"snapshot"}) or a blank line the operator would not answer.
 */
export function decodeBatch(bytes: Uint8Array): Batch {
  let raw: unknown;
  try {
    raw = BATCH_DECODER.decode(bytes);
  } catch (err) {
    throw new BatchError(`batch: not valid msgpack (${(err as Error).message})`);
  }
  if (!isRecord(raw)) throw new BatchError(`batch: expected a msgpack map {job, stage, index, count, lines}, got ${describe(raw)}`);
  for (const field of Object.keys(raw))
    if (!BATCH_FIELDS.has(field)) throw new BatchError(`batch: unknown field ${JSON.stringify(field)}; expected job, stage, index, count, lines, floor`);
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new BatchError(`batch: ${(err as Error).message}`);
    }
  };
  const job = wrap(() => checkJobId(raw.job));
  const stage = wrap(() => checkIndex(raw.stage, "stage", MAX_STAGES));
  const index = wrap(() => checkIndex(raw.index, "index", MAX_TASKS_PER_STAGE));
  const count = wrap(() => checkIndex(raw.count, "count", MAX_BATCH_TUPLES + 1));
  const lines = raw.lines instanceof Uint8Array ? wrap(() => utf8Text(raw.lines as Uint8Array)) : raw.lines;
  if (typeof lines !== "string") throw new BatchError(`batch: lines: expected a string, got ${describe(lines)}`);
  const problem = tupleLinesProblem(lines, count);
  if (problem) throw new BatchError(`batch: ${problem}`);
  if (raw.floor === undefined) return { job, stage, index, count, lines };
  const floor = wrap(() => checkIndex(raw.floor, "floor (a source line number)", Number.MAX_SAFE_INTEGER));
  return { job, stage, index, count, lines, floor };
}

function utf8Text(bytes: Uint8Array): string {
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    throw new Error("lines: expected UTF-8 text, got bytes that are not");
  }
}

/** The `from` of an output notice: `s<stage>t<index>`, and `-<pid>` under at-least-once. */
const NOTICE_FROM_PATTERN = /^s([0-9]{1,2})t([0-9]{1,2})(-[1-9][0-9]{0,9})?$/;

/**
 * An output notice (POST /outputs) from a worker, checked by the leader before it counts or
 * streams anything: the job id, stage and index, `from` naming that same task, and lines that
 * are result lines `key\tvalue` (without their "\n", no line break or carriage return inside).
 * Elysia's schema has checked the types; whether the job has that stage is the job machine's.
 */
export function checkOutputsNotice(n: OutputsNotice): OutputsNotice {
  checkJobId(n.job);
  checkIndex(n.stage, "stage", MAX_STAGES);
  checkIndex(n.index, "index", MAX_TASKS_PER_STAGE);
  const m = NOTICE_FROM_PATTERN.exec(n.from);
  if (!m || Number(m[1]) !== n.stage || Number(m[2]) !== n.index)
    throw new RequestError(
      `from: expected s${n.stage}t${n.index} or s${n.stage}t${n.index}-<pid> (the task of stage ${n.stage} index ${n.index}), got ${describe(n.from)}`,
    );
  if (n.lines.length > 0) {
    const problem = resultLinesProblem(`${n.lines.join("\n")}\n`, n.lines.length);
    if (problem) throw new RequestError(`lines: ${problem}`);
  }
  return n;
}

/**
 * Why `lines` is not exactly `count` tuple lines as tupleLine writes them (ops/protocol.ts), each
 * `id TAB key TAB value` and a newline: exactly two tabs, no carriage return, and every backslash
 * the start of \\ \t \n or \r; undefined when it is. Native searches over the batch, without
 * building strings: every batch of every task goes through here. A line without tabs (a TSV
 * operator's control message) can thus never be in a batch.
 */
export function tupleLinesProblem(lines: string, count: number): string | undefined {
  let pos = 0;
  let n = 0;
  // One search per batch for a carriage return and for a backslash (per line would rescan the rest of the batch).
  const firstCr = lines.indexOf("\r");
  let nextBackslash = lines.indexOf("\\");
  while (pos < lines.length) {
    if (n === count) return `count is ${count} but lines holds more than ${count} lines`;
    const end = lines.indexOf("\n", pos);
    const bad = (why: string) =>
      `line ${n + 1}: expected a tuple line id<TAB>key<TAB>value (${why}), got ${describe(lines.slice(pos, end < 0 ? pos + 80 : Math.min(end, pos + 80)))}`;
    if (end < 0) return bad("no newline at its end");
    const tab1 = lines.indexOf("\t", pos);
    const tab2 = tab1 < 0 || tab1 > end ? -1 : lines.indexOf("\t", tab1 + 1);
    const tab3 = tab2 < 0 || tab2 > end ? -1 : lines.indexOf("\t", tab2 + 1);
    if (tab2 < 0 || tab2 > end || (tab3 >= 0 && tab3 < end)) return bad("not exactly two tabs");
    if (firstCr >= pos && firstCr < end) return bad("a carriage return");
    while (nextBackslash >= 0 && nextBackslash < end) {
      const e = lines.charCodeAt(nextBackslash + 1);
      if (!(e === 92 || e === 116 || e === 110 || e === 114)) return bad("a backslash not followed by \\\\, t, n or r");
      nextBackslash = lines.indexOf("\\", nextBackslash + 2);
    }
    pos = end + 1;
    n++;
  }
  if (n !== count) return `count is ${count} but lines holds ${n} lines`;
  return undefined;
}

/** Why `lines` is not exactly `count` result lines `key\tvalue` and a newline (no \r); undefined when it is. */
export function resultLinesProblem(lines: string, count: number): string | undefined {
  let pos = 0;
  let n = 0;
  // One search for a carriage return per batch (a per-line search would rescan the rest of the
  // batch for every line): lines before the first one hold none.
  const firstCr = lines.indexOf("\r");
  while (pos < lines.length) {
    if (n === count) return `count is ${count} but lines holds more than ${count} lines`;
    const end = lines.indexOf("\n", pos);
    if (end < 0) return `line ${n + 1}: expected a newline at its end, got ${describe(lines.slice(pos, pos + 80))}`;
    const tab = lines.indexOf("\t", pos);
    if (tab < 0 || tab > end) return `line ${n + 1}: expected a result line key<TAB>value, got ${describe(lines.slice(pos, Math.min(end, pos + 80)))}`;
    if (firstCr >= pos && firstCr < end) return `line ${n + 1}: a result line holds no carriage return`;
    pos = end + 1;
    n++;
  }
  if (n !== count) return `count is ${count} but lines holds ${n} lines`;
  return undefined;
}

/** Longest src name a source start may carry (HyDFS names are shorter still; hydfsd checks them). */
const MAX_SOURCE_NAME_CHARS = 4096;

/**
 * A /worker/source request, checked field by field: a job id, a src name, a line number, a rate
 * in [0, MAX_RATE_PER_SEC] or a schedule of at most MAX_RATE_STEPS steps (each rate in range, each
 * duration at most MAX_SCHEDULE_MS), and routes.
 */
export function checkSourceStart(raw: unknown): SourceStart {
  if (!isRecord(raw)) throw new RequestError(`source: expected {job, src, fromLine, inputRate, routes}, got ${describe(raw)}`);
  const job = checkJobId(raw.job);
  if (typeof raw.src !== "string" || raw.src === "" || raw.src.length > MAX_SOURCE_NAME_CHARS)
    throw new RequestError(`src: expected a HyDFS file name of 1 to ${MAX_SOURCE_NAME_CHARS} characters, got ${describe(raw.src)}`);
  const fromLine = checkIndex(raw.fromLine, "fromLine", Number.MAX_SAFE_INTEGER);
  const rate = (v: unknown, what: string) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_RATE_PER_SEC)
      throw new RequestError(`${what}: expected a number from 0 to ${MAX_RATE_PER_SEC}, got ${describe(v)}`);
    return v;
  };
  const inputRate = rate(raw.inputRate, "inputRate");
  let rateSchedule: SourceStart["rateSchedule"];
  if (raw.rateSchedule !== undefined) {
    if (!Array.isArray(raw.rateSchedule) || raw.rateSchedule.length > MAX_RATE_STEPS)
      throw new RequestError(`rateSchedule: expected at most ${MAX_RATE_STEPS} steps, got ${describe(raw.rateSchedule)}`);
    rateSchedule = raw.rateSchedule.map((step: unknown, i) => {
      if (!isRecord(step)) throw new RequestError(`rateSchedule[${i}]: expected {ratePerSec, durationMs}, got ${describe(step)}`);
      const durationMs = step.durationMs;
      if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0 || durationMs > MAX_SCHEDULE_MS)
        throw new RequestError(`rateSchedule[${i}].durationMs: expected a number from 0 to ${MAX_SCHEDULE_MS}, got ${describe(durationMs)}`);
      return { ratePerSec: rate(step.ratePerSec, `rateSchedule[${i}].ratePerSec`), durationMs };
    });
  }
  return { job, src: raw.src, fromLine, inputRate, ...(rateSchedule ? { rateSchedule } : {}), routes: checkRoutes(raw.routes) };
}
