/**
 * What a worker accepts from the wire: /worker/start, /data and /sink come from other processes,
 * so a worker checks every name and number in them itself before it turns one into a path, a
 * process or operator input. Each check returns the value or throws a RequestError (BatchError
 * for batches) that names the field and what was expected.
 */
import { Decoder } from "@msgpack/msgpack";
import { RequestError } from "./errors.ts";
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
/** A worker or sink address in routes, "host:port" (an IPv4 address or a host name). */
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

/** Routes from the wire, checked: a version, 1..MAX_STAGES stages of 1..MAX_TASKS_PER_STAGE host:port each, a sink. */
export function checkRoutes(raw: unknown): Routes {
  if (!isRecord(raw)) throw new RequestError(`routes: expected {version, stages, sink}, got ${describe(raw)}`);
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
  return { version, ...term, stages: stages as string[][], sink: checkAddress(raw.sink, "routes.sink") };
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
  return { job, stage, index, op, args: args as string[], routes, ...(raw.exactlyOnce === undefined ? {} : { exactlyOnce: raw.exactlyOnce }) };
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
const BATCH_FIELDS = new Set(["job", "stage", "index", "count", "lines", "ids"]);
/**
 * One decoder for every batch, with limits: a batch is a map of at most BATCH_FIELDS.size
 * entries whose ids list has at most MAX_BATCH_TUPLES entries, with no binary or extension data.
 */
const BATCH_DECODER = new Decoder({ maxMapLength: BATCH_FIELDS.size, maxArrayLength: MAX_BATCH_TUPLES, maxBinLength: 0, maxExtLength: 0 });

/**
 * A batch from the wire, checked before anything is done with it; a BatchError (400) says what is
 * wrong. `kind` is the route: "task" (/data, lines are operator input lines, never ids) or
 * "sink" (/sink, lines are `key\tvalue` results, ids one per line or none). Checked:
 * the msgpack itself; the fields and their types; job against JOB_ID_PATTERN; stage and index
 * (integers, stage < MAX_STAGES for a task and <= MAX_STAGES for the sink, which is the stage
 * after the last; index < MAX_TASKS_PER_STAGE, 0 for the sink); count in [0, MAX_BATCH_TUPLES];
 * and that lines holds exactly `count` complete lines of the route's form. So a batch that
 * reaches an operator gets exactly one answer per line, and one line cannot carry a control
 * message ({"restore"}, {"snapshot"}) or a blank line the operator would not answer.
 */
export function decodeBatch(bytes: Uint8Array, kind: "task" | "sink"): Batch {
  let raw: unknown;
  try {
    raw = BATCH_DECODER.decode(bytes);
  } catch (err) {
    throw new BatchError(`batch: not valid msgpack (${(err as Error).message})`);
  }
  if (!isRecord(raw)) throw new BatchError(`batch: expected a msgpack map {job, stage, index, count, lines}, got ${describe(raw)}`);
  for (const field of Object.keys(raw))
    if (!BATCH_FIELDS.has(field))
      throw new BatchError(`batch: unknown field ${JSON.stringify(field)}; expected job, stage, index, count, lines${kind === "sink" ? ", ids" : ""}`);
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new BatchError(`batch: ${(err as Error).message}`);
    }
  };
  const job = wrap(() => checkJobId(raw.job));
  const stage = wrap(() => checkIndex(raw.stage, "stage", kind === "sink" ? MAX_STAGES + 1 : MAX_STAGES));
  const index = wrap(() => checkIndex(raw.index, "index", kind === "sink" ? 1 : MAX_TASKS_PER_STAGE));
  if (kind === "sink" && stage === 0) throw new BatchError("batch: stage: a sink batch comes from the last stage, so its stage is at least 1, got 0");
  const count = wrap(() => checkIndex(raw.count, "count", MAX_BATCH_TUPLES + 1));
  const lines = raw.lines;
  if (typeof lines !== "string") throw new BatchError(`batch: lines: expected a string, got ${describe(lines)}`);
  const problem = kind === "task" ? inputLinesProblem(lines, count) : resultLinesProblem(lines, count);
  if (problem) throw new BatchError(`batch: ${problem}`);
  const batch: Batch = { job, stage, index, count, lines };
  if (raw.ids !== undefined) {
    if (kind === "task") throw new BatchError("batch: ids: only sink batches carry ids");
    const ids = raw.ids;
    if (!Array.isArray(ids) || ids.length !== count || !ids.every((id) => typeof id === "string")) {
      throw new BatchError(`batch: ids: expected a list of ${count} strings (one per line), got ${Array.isArray(ids) ? `${ids.length} items` : describe(ids)}`);
    }
    batch.ids = ids as string[];
  }
  return batch;
}

/**
 * Why `lines` is not exactly `count` operator input lines as inputLine writes them, each
 * `{"id":<string>,"key":<string>,"value":<string>}` and a newline; undefined when it is. One pass
 * over the characters, without building objects: every batch of every task goes through here.
 */
export function inputLinesProblem(lines: string, count: number): string | undefined {
  let pos = 0;
  let n = 0;
  while (pos < lines.length) {
    if (n === count) return `count is ${count} but lines holds more than ${count} lines`;
    const start = pos;
    const bad = () =>
      `line ${n + 1}: expected an operator input line {"id":"...","key":"...","value":"..."} (JSON strings, then a newline), got ${describe(lineAt(lines, start))}`;
    if (!lines.startsWith('{"id":', pos)) return bad();
    pos = jsonStringEnd(lines, pos + 6);
    if (pos < 0 || !lines.startsWith(',"key":', pos)) return bad();
    pos = jsonStringEnd(lines, pos + 7);
    if (pos < 0 || !lines.startsWith(',"value":', pos)) return bad();
    pos = jsonStringEnd(lines, pos + 9);
    if (pos < 0 || !lines.startsWith("}\n", pos)) return bad();
    pos += 2;
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

/**
 * The index just after the JSON string starting at `pos` (at its opening quote), or -1 when
 * there is none: a raw control character, a bad escape or the end comes first.
 */
function jsonStringEnd(s: string, pos: number): number {
  if (s.charCodeAt(pos) !== 34 /* " */) return -1;
  for (let i = pos + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) return i + 1;
    if (c < 0x20) return -1;
    if (c === 92 /* \ */) {
      const e = s.charCodeAt(++i);
      if (e === 117 /* u */) {
        if (!/^[0-9A-Fa-f]{4}$/.test(s.slice(i + 1, i + 5))) return -1;
        i += 4;
      } else if (!(e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116)) return -1; // " \ / b f n r t
    }
  }
  return -1;
}

function lineAt(s: string, pos: number): string {
  const end = s.indexOf("\n", pos);
  return s.slice(pos, end < 0 ? s.length : end);
}
