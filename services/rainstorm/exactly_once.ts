/**
 * Exactly-once for one task: a write-ahead log in HyDFS.
 *
 * For every input batch the task (1) drops inputs it has already processed, (2) runs the rest
 * through the operator, (3) asks the operator for its state, (4) appends one record - the
 * answers (input id and outputs) and the state - to its log in HyDFS, acknowledged at a quorum,
 * and only then (5) forwards the outputs. An input seen again (resent after a crash anywhere)
 * is not processed again; if its outputs may not have been acknowledged yet, they are forwarded
 * again, and the next task drops inputs it has already processed. Output ids are deterministic,
 * so a replay produces the same ids. A restarted task reads its log, restores the operator's last
 * state (an aggregate continues from 11, not 1) and knows every input it has processed.
 *
 * The last stage's tasks always keep a log (whatever their operator) and, instead of forwarding,
 * (5) append record r's results to dest themselves as HyDFS client `rainstorm-<job>-s<stage>-t<index>`
 * with sequence number r (dest_writer.ts). Record numbers are the same in every incarnation (a
 * restarted task counts the records of its log), and HyDFS applies a (client, seq) once, so a
 * restarted task that appends its last record's results again adds nothing twice. Its dedup
 * state is its log and one client id: nothing grows with the outputs outside it.
 *
 * Batches of one task go through these steps one group at a time (the batches that arrived
 * while the previous group was busy share one operator round, one snapshot and one log record),
 * and the next group starts only once the previous one's outputs are acknowledged. So a
 * logged state never includes an input whose record is not logged, outputs leave in processing
 * order (each key's counts reach dest increasing), and at most the last record's outputs can
 * be unacknowledged when a task dies: a restarted task forwards those again before it takes any
 * new input. Hence a task remembers only the ids of older inputs, not their outputs: those
 * outputs were acknowledged downstream, where they are durable. And of those ids only the ones
 * above the source's acknowledged position (seen_ids.ts): each record keeps the position the task
 * had heard of (`f`), so a restarted task forgets the older ids again.
 */
import type { ClusterHttp } from "../shared/http.ts";
import { HydfsCallError, HydfsClient, type HydfsFile } from "../hydfs/client.ts";
import { type Answer, tsvUnfield } from "../../ops/protocol.ts";
import { SeenIds } from "./seen_ids.ts";

/** One log record: the answers of one batch and the operator's state after it. */
export interface LogRecord {
  answers: Answer[];
  state: unknown;
  /** The source's acknowledged position the task had heard of when it wrote the record (seen_ids.ts); 0 or absent: none. */
  floor?: number;
}

/**
 * On disk a record is one JSON line of arrays, not objects:
 * `{"a":[[inputId,[[key,value],...]],...],"s":state,"f":floor}` ("f" only when above 0). The log is most of what exactly-once
 * costs (bytes encoded here, stored 3 times by HyDFS), and this is about half the size of
 * `{"answers":[{"id","outputs":[{"key","value"}]}]}`.
 */
export function encodeRecord(r: LogRecord): string {
  const a = r.answers.map((x) => [x.id, x.outputs.map((o) => [o.key, o.value])]);
  return `${JSON.stringify(r.floor ? { a, s: r.state, f: r.floor } : { a, s: r.state })}\n`;
}

export function decodeRecord(line: string): LogRecord {
  const raw = JSON.parse(line) as { a?: unknown; s?: unknown; f?: unknown };
  if (!Array.isArray(raw?.a)) throw new Error('expected {"a": [answers...], "s": state}');
  if (raw.f !== undefined && !(Number.isSafeInteger(raw.f) && (raw.f as number) >= 0))
    throw new Error(`f: expected the source position, a non-negative integer, got ${JSON.stringify(raw.f)}`);
  const answers = raw.a.map((x: unknown): Answer => {
    if (!Array.isArray(x) || typeof x[0] !== "string" || !Array.isArray(x[1]))
      throw new Error(`answer ${JSON.stringify(x)?.slice(0, 80)}: expected [inputId, [[key, value], ...]]`);
    return { id: x[0], outputs: (x[1] as [string, string][]).map(([key, value]) => ({ key, value })) };
  });
  return raw.f ? { answers, state: raw.s, floor: raw.f as number } : { answers, state: raw.s };
}

/**
 * Rebuild a task's memory from its log: the processed inputs (above the last record's floor: the
 * older ones are known by the floor alone), the last state, the number of records, every output
 * the records hold (a last-stage task's lines in dest), the answers of the last `keepRecords`
 * records, oldest first (a last-stage task tells the leader of them again), and the last
 * record's answers (the only outputs that may not have been acknowledged). A torn last line
 * cannot occur (HyDFS appends are all or nothing), so any bad line is an error naming its number.
 */
export function replayLog(
  text: string,
  keepRecords = 1,
): { seen: SeenIds; state: unknown; records: number; outputs: number; recent: Answer[][]; last: Answer[] } {
  const seen = new SeenIds();
  let state: unknown;
  let records = 0;
  let outputs = 0;
  const recent: Answer[][] = [];
  const lines = text.split("\n");
  const decode = (i: number): LogRecord => {
    try {
      return decodeRecord(lines[i]!);
    } catch (err) {
      throw new Error(`task log line ${i + 1}: ${(err as Error).message}`);
    }
  };
  // The last record knows the highest floor: ids at or below it need not be held at all.
  let lastLine = lines.length - 1;
  while (lastLine >= 0 && !lines[lastLine]) lastLine--;
  if (lastLine >= 0) seen.raiseFloor(decode(lastLine).floor ?? 0);
  lines.forEach((line, i) => {
    if (!line) return;
    const r = decode(i);
    for (const a of r.answers) {
      seen.add(a.id);
      outputs += a.outputs.length;
    }
    state = r.state;
    recent.push(r.answers);
    if (recent.length > Math.max(1, keepRecords)) recent.shift();
    records++;
  });
  return { seen, state, records, outputs, recent: recent.slice(-keepRecords), last: recent.at(-1) ?? [] };
}

/** The id of a tuple line `id TAB key TAB value` (its first field, unescaped). */
export function inputIdOf(line: string): string {
  const tab = line.indexOf("\t");
  const id = tsvUnfield(tab < 0 ? line : line.slice(0, tab));
  if (tab < 0 || id === undefined) throw new Error(`not a tuple line: ${line.slice(0, 80)}`);
  return id;
}

/** Split a batch's lines into the inputs to process and the ids already processed. */
export function splitSeen(lines: string, seen: { has(id: string): boolean }): { fresh: string; freshCount: number; repeated: string[] } {
  const repeated: string[] = [];
  const taken = new Set<string>();
  // Kept lines are sliced out of `lines` only once a repeat shows up: usually there is none, and `lines` goes as it is.
  const kept: string[] = [];
  let freshCount = 0;
  for (let from = 0; from < lines.length; ) {
    const end = lines.indexOf("\n", from);
    const next = end < 0 ? lines.length : end + 1;
    const line = lines.slice(from, end < 0 ? lines.length : end);
    if (line) {
      const id = inputIdOf(line);
      if (seen.has(id) || taken.has(id)) {
        if (repeated.length === 0) kept.push(lines.slice(0, from));
        repeated.push(id);
      } else {
        taken.add(id);
        freshCount++;
        if (repeated.length > 0) kept.push(`${line}\n`);
      }
    }
    from = next;
  }
  return { fresh: repeated.length === 0 ? lines : kept.join(""), freshCount, repeated };
}

/** Where a task's log lives in HyDFS. */
export function taskLogName(job: string, stage: number, index: number): string {
  return `rainstorm/${job}/stage${stage}-task${index}.log`;
}

/** A task's log in HyDFS: read at start, one record appended per batch. */
/** The HyDFS client id every incarnation of a task appends its log under (record number = sequence number). */
export function taskLogClientId(name: string): string {
  return `tasklog-${name}`;
}

export class TaskLog {
  /** Creates the log (a client of this incarnation) and reads it. */
  private readonly writer: HydfsFile;
  /** Appends records: one client id for every incarnation, each record number its sequence number. */
  private readonly appender: HydfsClient;

  /**
   * `bases` lists HyDFS coordinators, this node's own first: when its hydfsd died, any other
   * node can coordinate the same call. A fresh client id per task incarnation starts its
   * sequence numbers at 1 again.
   */
  constructor(
    bases: () => string[],
    http: ClusterHttp,
    readonly name: string,
    incarnation: string,
  ) {
    this.writer = new HydfsClient({ http, bases, clientId: `task-${incarnation}` }).file(name);
    this.appender = new HydfsClient({ http, bases, clientId: taskLogClientId(name) });
  }

  /** The log's text, creating the (empty) log on a task's first start. */
  async load(): Promise<string> {
    const text = await this.writer.read();
    if (text !== undefined) return text;
    try {
      await this.writer.write("create", "");
    } catch (err) {
      // A concurrent first start of the same task created it already: that is fine.
      if (!(err instanceof HydfsCallError && err.status === 409)) throw err;
    }
    return "";
  }

  async append(record: LogRecord, recordNo: number): Promise<void> {
    await this.appender.write("append", this.name, encodeRecord(record), { seq: recordNo });
  }
}
