/**
 * The operator protocol, both sides of it: how the engine (services/rainstorm/operator_proc.ts)
 * and an operator (ops/runtime.ts, or any executable of your own) talk over the operator's stdin
 * and stdout, one JSON object per line (docs/ARCHITECTURE.md §5, ops/README.md).
 *
 * engine -> operator (stdin)                    operator -> engine (stdout)
 *   {"id":"..","key":"..","value":".."}   ->     zero or more {"key":"..","value":".."}, then {"done":".."}
 *   {"snapshot":n}                        ->     {"state":<json>,"snapshot":n}  (stateless: state null)
 *   {"restore":<json>}                    ->     nothing
 *
 * The handshake is the first line: after a restart, a stateful task's engine sends
 * {"restore": state} first, before any input; an operator takes a restore on its first
 * non-blank line only. Inputs are answered in order, each with its outputs and then its done, so
 * the engine pairs answers with inputs by counting. The engine writes many inputs per write (a
 * batch) and the operator answers a chunk of them per write. Everything else an operator says
 * goes to stderr (the task's stderr log).
 *
 * Here: the encoders of every line, the decoders of each side (what a line means, or why it
 * means nothing), and the limits. What a side does with a message (counting, state, errors) is
 * its own business.
 */

/** A tuple: an operator's input is one (with an id), its outputs are zero or more. */
export interface Output {
  key: string;
  value: string;
}

/** One input's answer, as the engine collects it: the id of its done line and the outputs before it. */
export interface Answer {
  id: string;
  outputs: Output[];
}

/** Longest line an operator keeps while waiting for its newline; beyond it the line is dropped (bounded memory). */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

// ---- encoding -------------------------------------------------------------------------------------
// Inputs are written by hand, not by JSON.stringify of an object, so their fields come in one
// order: an operator of your own gets exactly this form (a worker turns each tuple line of a batch
// into one, jsonInputLineOf below).

/** engine -> operator: one input line, newline included. */
export function inputLine(id: string, key: string, value: string): string {
  return `{"id":${JSON.stringify(id)},"key":${JSON.stringify(key)},"value":${JSON.stringify(value)}}\n`;
}

/** engine -> operator: ask for the operator's state, tagged `n` (the answer carries it back). */
export function snapshotRequestLine(n: number): string {
  return `${JSON.stringify({ snapshot: n })}\n`;
}

/** engine -> operator: the state to start from; valid as the first line only. */
export function restoreLine(state: unknown): string {
  return `${JSON.stringify({ restore: state })}\n`;
}

/** operator -> engine: one output of the current input (no newline: the runtime joins its lines). */
export function outputLine(key: string, value: string): string {
  return `{"key":${JSON.stringify(key)},"value":${JSON.stringify(value)}}`;
}

/** operator -> engine: the end of input `id`'s answer (no newline). */
export function doneLine(id: string | number): string {
  return `{"done":${JSON.stringify(id)}}`;
}

/** operator -> engine: the answer to snapshot request `n` (no newline); undefined state is sent as null. */
export function snapshotAnswerLine(state: unknown, n: number | string): string {
  return `{"state":${JSON.stringify(state) ?? "null"},"snapshot":${JSON.stringify(n)}}`;
}

// ---- decoding, operator side: what the engine said -----------------------------------------------

/** One engine line as an operator reads it. `first` says whether it may be the handshake (restore). */
export type EngineMessage =
  /** A blank line (or CRLF's lone CR): not a message, not even the first one. */
  | { kind: "blank" }
  | { kind: "input"; id: string | number; key: string; value: string }
  /** An input whose key or value is not a string: answered with done and no outputs. */
  | { kind: "input_without_tuple"; id: string | number; problem: string }
  | { kind: "snapshot"; n: number | string }
  | { kind: "restore"; state: unknown }
  /** Nothing to answer: `problem` says why (logged with the line). */
  | { kind: "bad"; problem: string };

/** What one line from the engine means (never throws). The problems are log text: `line N <problem>: <line>`. */
export function decodeEngineLine(line: string): EngineMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    if (line.trim().length === 0) return { kind: "blank" };
    return { kind: "bad", problem: "is not JSON" };
  }
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return { kind: "bad", problem: "is not a JSON object" };
  const m = msg as Record<string, unknown>;
  if ("id" in m) {
    const { id, key, value } = m;
    if (typeof id !== "string" && !(typeof id === "number" && Number.isFinite(id)))
      return { kind: "bad", problem: `has an id that is not a string (${describe(id)}); cannot answer it` };
    if (typeof key !== "string" || typeof value !== "string") {
      const which = typeof key !== "string" ? `key is ${describe(key)}` : `value is ${describe(value)}`;
      return { kind: "input_without_tuple", id, problem: `expected string key and value, but ${which}; answering done without outputs` };
    }
    return { kind: "input", id, key, value };
  }
  if ("snapshot" in m) {
    const n = m.snapshot;
    if (!(typeof n === "number" && Number.isFinite(n)) && typeof n !== "string")
      return { kind: "bad", problem: `expected {"snapshot": <number>}, got snapshot ${describe(n)}` };
    return { kind: "snapshot", n };
  }
  if ("restore" in m) return { kind: "restore", state: m.restore };
  return { kind: "bad", problem: `is not an input ({"id","key","value"}), {"snapshot"} or {"restore"}` };
}

// ---- decoding, engine side: what the operator said ------------------------------------------------

/** One operator line as the engine reads it. */
export type OperatorMessage =
  | { kind: "done"; id: string }
  | { kind: "output"; key: string; value: string }
  | { kind: "snapshot"; n: number; state: unknown }
  /** A protocol violation: the operator cannot be trusted any more. */
  | { kind: "bad"; problem: string };

/** How much of a bad operator line the engine's error quotes. */
const BAD_LINE_QUOTE_CHARS = 120;

/** What one line from an operator means (never throws). */
export function decodeOperatorLine(line: string): OperatorMessage {
  // Most lines are `{"done":"<id>"}`: recognised without a JSON parse when the id has no escapes.
  if (line.startsWith('{"done":"') && line.endsWith('"}') && !line.includes("\\")) return { kind: "done", id: line.slice(9, -2) };
  let msg: Record<string, unknown>;
  try {
    msg = JSON.parse(line);
  } catch {
    return { kind: "bad", problem: `operator wrote a line that is not JSON: ${line.slice(0, BAD_LINE_QUOTE_CHARS)}` };
  }
  if (typeof msg?.done === "string") return { kind: "done", id: msg.done };
  if (typeof msg?.key === "string" && typeof msg.value === "string") return { kind: "output", key: msg.key, value: msg.value };
  if (typeof msg?.snapshot === "number" && "state" in msg) return { kind: "snapshot", n: msg.snapshot, state: msg.state };
  return { kind: "bad", problem: `operator wrote an unexpected line: ${line.slice(0, BAD_LINE_QUOTE_CHARS)}` };
}

/** A value in a problem: JSON, shortened ("missing" for undefined). */
export function describe(v: unknown): string {
  if (v === undefined) return "missing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

// ---- TSV framing ----------------------------------------------------------------------------------
// The built-in operators (the rainstorm-op binary and its links) also speak a leaner framing,
// chosen by the engine through the RAINSTORM_OPERATOR_FRAMING environment variable: tuples as
// tab-separated fields instead of JSON objects, so neither side parses or quotes JSON per tuple.
// Batches between tasks always carry tuples in this form (tupleLine); a worker turns them into
// JSON input lines only for an operator that speaks JSON (any executable of your own).
//
// engine -> operator (stdin)                  operator -> engine (stdout)
//   <id> TAB <key> TAB <value>          ->     zero or more  o TAB <key> TAB <value>, then  d TAB <id>
//   {"snapshot":n}   (JSON, no tab)     ->     {"state":<json>,"snapshot":n}  (JSON)
//   {"restore":<json>}  (JSON, no tab)  ->     nothing
//
// In a field, backslash, tab, newline and carriage return are written \\ \t \n \r; nothing else
// is escaped, so a field without those characters is the string itself.

/** The environment variable that asks a built-in operator for a framing ("tsv"; anything else: JSON). */
export const FRAMING_ENV = "RAINSTORM_OPERATOR_FRAMING";
export type Framing = "json" | "tsv";

const TSV_SPECIAL = /[\\\t\n\r]/;
const TSV_SPECIAL_ALL = /[\\\t\n\r]/g;
const TSV_ESCAPE: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const TSV_UNESCAPE: Record<string, string> = { "\\": "\\", t: "\t", n: "\n", r: "\r" };

/** One TSV field: `s` with backslash, tab, newline and carriage return escaped. */
export function tsvField(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(TSV_SPECIAL_ALL, (c) => TSV_ESCAPE[c]!) : s;
}

/** The string a TSV field stands for; undefined when it holds a raw newline or CR, or a backslash not followed by \ t n r. */
export function tsvUnfield(field: string): string | undefined {
  if (!TSV_SPECIAL.test(field)) return field;
  if (RAW_BREAK.test(field)) return undefined;
  let out = "";
  let from = 0;
  for (let i = field.indexOf("\\"); i >= 0; i = field.indexOf("\\", from)) {
    const unescaped = TSV_UNESCAPE[field[i + 1] ?? ""];
    if (unescaped === undefined) return undefined;
    out += field.slice(from, i) + unescaped;
    from = i + 2;
  }
  return out + field.slice(from);
}

const RAW_BREAK = /[\t\n\r]/;

/** A tuple as a batch and a TSV operator carry it: `id TAB key TAB value`, newline included. */
export function tupleLine(id: string, key: string, value: string): string {
  return `${tsvField(id)}\t${tsvField(key)}\t${tsvField(value)}\n`;
}

/** The TSV fields of a line (without its newline), unescaped; undefined when there are not exactly `n` well-escaped ones. */
export function splitTsv(line: string, n: number): string[] | undefined {
  const fields = line.split("\t");
  if (fields.length !== n) return undefined;
  for (let i = 0; i < n; i++) {
    const f = tsvUnfield(fields[i]!);
    if (f === undefined) return undefined;
    fields[i] = f;
  }
  return fields;
}

/** A tuple line (without its newline) as JSON input line (newline included), for an operator that speaks JSON. */
export function jsonInputLineOf(tuple: string): string | undefined {
  const f = splitTsv(tuple, 3);
  return f && inputLine(f[0]!, f[1]!, f[2]!);
}

/** operator -> engine, TSV: one output of the current input (no newline). */
export function tsvOutputLine(key: string, value: string): string {
  return `o\t${tsvField(key)}\t${tsvField(value)}`;
}

/** operator -> engine, TSV: the end of input `id`'s answer (no newline). */
export function tsvDoneLine(id: string | number): string {
  return `d\t${tsvField(String(id))}`;
}

/** One engine line as a TSV operator reads it: a tuple, or (a line without a tab) a JSON control message. */
export function decodeEngineTsvLine(line: string): EngineMessage {
  if (!line.includes("\t")) {
    // Without a tab: blank, or a control message ({"snapshot"}, {"restore"}); JSON inputs are not spoken here.
    const msg = decodeEngineLine(line);
    return msg.kind === "blank" || msg.kind === "snapshot" || msg.kind === "restore" ? msg : { kind: "bad", problem: NOT_A_TUPLE };
  }
  const f = splitTsv(line, 3);
  if (!f) return { kind: "bad", problem: NOT_A_TUPLE };
  return { kind: "input", id: f[0]!, key: f[1]!, value: f[2]! };
}

export const NOT_A_TUPLE = 'is neither a tuple (id TAB key TAB value, with \\\\ \\t \\n \\r escapes) nor {"snapshot"} or {"restore"}';

/** What one TSV operator line means (never throws): `o` output, `d` done, or a JSON snapshot answer. */
export function decodeOperatorTsvLine(line: string): OperatorMessage {
  if (line.startsWith("d\t")) {
    const id = tsvUnfield(line.slice(2));
    if (id !== undefined) return { kind: "done", id };
  } else if (line.startsWith("o\t")) {
    const f = splitTsv(line.slice(2), 2);
    if (f) return { kind: "output", key: f[0]!, value: f[1]! };
  } else if (line.startsWith("{")) return decodeOperatorLine(line);
  return { kind: "bad", problem: `operator wrote an unexpected line: ${line.slice(0, BAD_LINE_QUOTE_CHARS)}` };
}
