/**
 * One task as a worker runs it: its operator (a process, or in the simulator an in-process
 * operator), its counters, its input concurrency and, under exactly-once, its log state.
 */
import type { TaskDest } from "./dest_writer.ts";
import type { LogRecord } from "./exactly_once.ts";
import type { Answer, Output } from "./operator_proc.ts";
import type { SeenIds } from "./seen_ids.ts";
import type { Batch, TaskStart } from "./worker.ts";
import type { AnswerWatch, OperatorProgress } from "./worker_guards.ts";

/** What a worker uses of an operator (operator_proc.ts OperatorProcess has exactly this). */
export interface TaskOperator {
  readonly pid: number;
  readonly alive: boolean;
  /** Resolves with the exit code when the operator is gone (killed, crashed or at end of input). */
  readonly exited: Promise<number>;
  processLines(lines: string, count: number): Promise<Answer[]>;
  snapshot(n: number, timeoutMs: number): Promise<unknown>;
  restore(state: unknown): void;
  /** Close the input and wait up to graceMs for the exit code (undefined: killed after it). */
  endInput(graceMs: number): Promise<number | undefined>;
  kill(): void;
  /** The last words of the operator's stderr, for a death report ("" when none). */
  stderrTail(): string;
  /**
   * Inputs pending and answers so far, for the hung-operator guard. An operator without it is not
   * watched (the simulator's in-process operators, which cannot hang).
   */
  progress?(): OperatorProgress;
}

/** A task's exactly-once log (exactly_once.ts TaskLog over HyDFS; in memory in the simulator). */
export interface TaskLogStore {
  /** The log's text, creating the (empty) log on the task's first start. */
  load(): Promise<string>;
  /**
   * Append record number `recordNo` (1, 2, ... in log order). It goes under the task's one stable
   * HyDFS client id with `recordNo` as its sequence number, so each number is written once: a
   * repeat of the same record is applied once, and another incarnation's different record under
   * the same number is refused (409). A task restarted while its predecessor's last append was
   * still on its way thus cannot log a record beside it under the same number: its own append is
   * refused, it stops, and its successor reads the log with that record in it.
   */
  append(record: LogRecord, recordNo: number): Promise<void>;
}

/** Exactly-once state of one task incarnation (see exactly_once.ts). */
export interface ExactlyOnceState {
  log: TaskLogStore;
  /** The inputs processed (logged): ids above the source's acknowledged position, and that position. */
  seen: SeenIds;
  /** Outputs of logged inputs not yet acknowledged downstream, by input id. */
  unacked: Map<string, Output[]>;
  /** Records in the log (every incarnation's): the last one's number (a last-stage task's dest sequence number). */
  records: number;
  /** Settles once the log is read and the operator's state restored. */
  ready: Promise<void>;
  /** Batches waiting for the exactly-once steps; a group goes through them at a time. */
  queue: { batch: Batch; resolve: () => void; reject: (e: Error) => void }[];
  pumping: boolean;
  /** When the last group started (clock ms), for rainstorm.log_flush_ms. */
  lastCommitMs: number;
  snapshots: number;
}

export interface TaskRunner {
  start: TaskStart;
  op: TaskOperator;
  logPath: string;
  inputs: number;
  outputs: number;
  batches: number;
  /** `inputs` at the last rate sample. */
  inputsAtSample: number;
  /** Inputs in the last full second, for list_tasks and the task log. */
  ratePerSec: number;
  stopping: boolean;
  active: number;
  waiters: (() => void)[];
  eo?: ExactlyOnceState;
  /** A task of the last stage: where its results go (it appends to dest itself). */
  dest?: TaskDest;
  /** The hung-operator guard's view of the operator (worker_guards.ts watchAnswers). */
  answers?: AnswerWatch;
  /** Why the worker killed the operator itself (it was hung): the death report says this. */
  killedBecause?: string;
}
