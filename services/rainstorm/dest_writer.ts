/**
 * A last-stage task's dest: the task appends its results to the job's dest itself (the leader
 * only creates the file), as one HyDFS client, then tells the leader (outputs.ts). A task
 * acknowledges an input batch only once the append holding its results is acknowledged, so
 * acknowledgement stays end to end: when the source's last batch is acknowledged, every result
 * is in dest.
 *
 * - exactly-once: the results of task-log record r go in one append under client id
 *   `rainstorm-<job>-s<stage>-t<index>` (the same in every incarnation) with sequence number r.
 *   HyDFS applies a (client, seq) once, so a restarted task appending its last record again adds
 *   nothing, and the dedup state is one client id per task instead of a set of output ids. A
 *   record without results appends nothing (HyDFS takes a client's sequence numbers with gaps:
 *   it keys ops by (client, seq) and orders one client's ops by seq, manifest.ts canonicalOrder).
 * - at-least-once: group commit per task: whatever arrives while an append is under way goes in
 *   the next one, under a client id of this incarnation (a restart repeats results, as
 *   at-least-once may).
 */
import { HydfsClient } from "../hydfs/client.ts";
import { TaskGone } from "./errors.ts";
import type { ClusterHttp } from "../shared/http.ts";
import type { OutputsNotice } from "./model.ts";
import type { Answer } from "./operator_proc.ts";
import { destLine } from "./router.ts";

/** Appends to one dest file as one HyDFS client: `seq` names the append (a repeat of it is applied once). */
export interface DestStore {
  append(text: string, seq: number): Promise<void>;
}

/** Opens dest `name` as client `clientId` (HyDFS in a daemon; in memory in the simulator). */
export type OpenDest = (name: string, clientId: string) => DestStore;

/** Dest in HyDFS through `bases` (this node's hydfsd first), retried under the client's daemon rules with the same seq. */
export function hydfsDest(bases: () => string[], http: ClusterHttp): OpenDest {
  return (name, clientId) => {
    const client = new HydfsClient({ http, bases, clientId });
    return { append: async (text, seq) => void (await client.write("append", name, text, { seq })) };
  };
}

/** The HyDFS client id of a last-stage task: one per task under exactly-once, one per incarnation (`incarnation`) otherwise. */
export function destClientId(job: string, stage: number, index: number, incarnation?: string): string {
  return `rainstorm-${job}-s${stage}-t${index}${incarnation === undefined ? "" : `-${incarnation}`}`;
}

/** The `from` of a task's output notices (model.ts OutputsNotice): `s<stage>t<index>`, `-<pid>` under at-least-once. */
export function noticeFrom(stage: number, index: number, pid?: number): string {
  return `s${stage}t${index}${pid === undefined ? "" : `-${pid}`}`;
}

/** The results of `answers` as dest lines, without their "\n" (destLine flattens line breaks inside). */
export function resultLines(answers: Answer[]): string[] {
  const lines: string[] = [];
  for (const a of answers) for (const o of a.outputs) lines.push(destLine(o.key, o.value).slice(0, -1));
  return lines;
}

export interface TaskDestOptions {
  store: DestStore;
  job: string;
  stage: number;
  index: number;
  from: string;
  /**
   * Told after every append (the worker's notice queue; never waits). `again`: a restarted task
   * tells a record of an earlier incarnation again (recover), which must reach the leader unmerged.
   */
  notify(n: OutputsNotice, again?: boolean): void;
}

export class TaskDest {
  /** Lines this appender has put in dest (exactly-once: in every incarnation, counted from the log). */
  private total = 0;
  /** At-least-once: this incarnation's appends so far (its sequence numbers and notices). */
  private appends = 0;
  private readonly queue: { lines: string[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushing = false;
  /** Appends under way (drained() waits for them). */
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly o: TaskDestOptions) {}

  /** The task stopped: nothing more is appended (what is queued is refused); appends under way finish. */
  close(): void {
    this.closed = true;
    for (const g of this.queue.splice(0)) g.reject(new TaskGone(`task ${this.o.job}/${this.o.stage}/${this.o.index} stopped`));
  }

  /** Resolves once no append is under way (each then has told its notice, or failed). */
  async drained(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** One append to dest, tracked for drained(). */
  private store(text: string, seq: number): Promise<void> {
    if (this.closed) return Promise.reject(new TaskGone(`task ${this.o.job}/${this.o.stage}/${this.o.index} stopped`));
    const p = this.o.store.append(text, seq);
    this.inFlight.add(p);
    const done = () => void this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Exactly-once, after the log was read: its `records` records hold `outputs` results, all in
   * dest but maybe the last record's (the next record starts only once the previous one's append
   * is acknowledged), which is appended again under its own number. The leader hears of the
   * `recent` records (the last ones, oldest first) again: notices a crashed worker still held are
   * not lost (it drops those it has had).
   */
  async recover(records: number, outputs: number, recent: Answer[][]): Promise<void> {
    this.total = outputs;
    const lines = recent.map(resultLines);
    // Each record's running total: the log's, less the records after it.
    const totals: number[] = [];
    let total = outputs;
    for (let i = lines.length - 1; i >= 0; i--) {
      totals[i] = total;
      total -= lines[i]!.length;
    }
    const first = records - lines.length + 1;
    for (let i = 0; i < lines.length - 1; i++) if (lines[i]!.length > 0) this.notify(first + i, lines[i]!, totals[i]!, true);
    const last = lines.at(-1);
    if (last && last.length > 0) {
      await this.store(joinLines(last), records);
      this.notify(records, last, outputs, true);
    }
  }

  /**
   * Exactly-once: append the results of log record `record` under seq = record; resolves once
   * they are durable in dest.
   */
  async appendRecord(record: number, answers: Answer[]): Promise<void> {
    const lines = resultLines(answers);
    if (lines.length === 0) return;
    await this.store(joinLines(lines), record);
    this.total += lines.length;
    this.notify(record, lines, this.total);
  }

  /** At-least-once: append these results with whatever else is queued (group commit); resolves once they are in dest. */
  append(answers: Answer[]): Promise<void> {
    const lines = resultLines(answers);
    if (lines.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new TaskGone(`task ${this.o.job}/${this.o.stage}/${this.o.index} stopped`));
    const done = new Promise<void>((resolve, reject) => this.queue.push({ lines, resolve, reject }));
    if (!this.flushing) void this.flush();
    return done;
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0);
        const lines = group.flatMap((g) => g.lines);
        try {
          const seq = ++this.appends;
          await this.store(joinLines(lines), seq);
          this.total += lines.length;
          this.notify(seq, lines, this.total);
          for (const g of group) g.resolve();
        } catch (err) {
          // The batches are not acknowledged: their senders send them again (at-least-once).
          for (const g of group) g.reject(err as Error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private notify(seq: number, lines: string[], total: number, again = false): void {
    const { job, stage, index, from } = this.o;
    this.o.notify({ job, stage, index, from, seq, total, lines }, again);
  }
}

function joinLines(lines: string[]): string {
  return `${lines.join("\n")}\n`;
}
