/**
 * The exactly-once steps of one task on its worker (the protocol is in exactly_once.ts): recover
 * from the task log at start, then take input batches through them one group at a time; a task
 * of the last stage appends each record's results to dest (dest_writer.ts) where another
 * forwards them. Batches
 * that arrive while the task is busy wait in its queue and then go through the steps together
 * (group commit): one operator round, one snapshot, one log append and one forward for all of
 * them, so the cost of a HyDFS round trip is shared by as many batches as the pipeline keeps in
 * flight.
 */
import type { Clock } from "./clock.ts";
import { TaskGone } from "./errors.ts";
import { replayLog, splitSeen } from "./exactly_once.ts";
import type { Answer, Output } from "./operator_proc.ts";
import type { TaskDest } from "./dest_writer.ts";
import { RECENT_NOTICES_PER_TASK } from "./outputs.ts";
import type { BatchRouter } from "./router.ts";
import { SeenIds } from "./seen_ids.ts";
import { isStatelessOperator } from "../../ops/registry.ts";
import type { ExactlyOnceState, TaskLogStore, TaskRunner } from "./task.ts";
import type { Batch } from "./worker.ts";

/** How long a stateful operator may take to answer a snapshot request. */
const SNAPSHOT_TIMEOUT_MS = 10_000;

export interface PumpContext {
  router: BatchRouter;
  clock: Clock;
  /** rainstorm.log_flush_ms: at most one log append per this long. */
  logFlushMs: number;
  /** The failpoint to fire at this log append, if any (rainstorm.failpoint, tests only). */
  nextFailpoint(): string | undefined;
  /** A line in the task's local log. */
  note(t: TaskRunner, text: string): void;
  warn(text: string): void;
}

/** Exactly-once: read the task's log, restore the operator's state, remember processed inputs. */
export function recover(ctx: PumpContext, runner: TaskRunner, k: string, log: TaskLogStore): ExactlyOnceState {
  const { start, op } = runner;
  const eo: ExactlyOnceState = {
    log,
    seen: new SeenIds(),
    unacked: new Map<string, Output[]>(),
    records: 0,
    ready: Promise.resolve(),
    queue: [],
    pumping: false,
    lastCommitMs: 0,
    snapshots: 0,
  };
  eo.ready = (async () => {
    const { seen, state, records, outputs, recent, last } = replayLog(await log.load(), runner.dest ? RECENT_NOTICES_PER_TASK : 1);
    eo.seen = seen;
    eo.records = records;
    eo.unacked = new Map(last.map((a) => [a.id, a.outputs]));
    if (state !== undefined && state !== null) op.restore(state);
    const held = `${seen.size} processed inputs above source line ${seen.floor}`;
    ctx.note(runner, `task ${k}: recovered ${held} from ${records} log records${state ? " and restored the operator state" : ""}`);
    // The last record's outputs may not have been acknowledged: send them again first, so
    // they reach downstream before anything newer (to dest: under the record's own number,
    // which HyDFS applies once).
    if (runner.dest) await runner.dest.recover(records, outputs, recent);
    else if (last.length > 0) await ctx.router.forward({ job: start.job, stage: start.stage, index: start.index, count: 0, lines: "" }, last);
    eo.unacked.clear();
  })();
  eo.ready.catch((err: Error) => {
    // Without its log the task cannot promise exactly-once: let the leader restart it.
    ctx.warn(`task ${k}: recovery failed: ${err.message}`);
    op.kill();
  });
  return eo;
}

/** One input batch through the exactly-once steps; resolves once its outputs are acknowledged. */
export function handleExactlyOnce(ctx: PumpContext, t: TaskRunner, eo: ExactlyOnceState, batch: Batch): Promise<void> {
  const done = new Promise<void>((resolve, reject) => eo.queue.push({ batch, resolve, reject }));
  if (!eo.pumping) void pump(ctx, t, eo);
  return done;
}

async function pump(ctx: PumpContext, t: TaskRunner, eo: ExactlyOnceState): Promise<void> {
  eo.pumping = true;
  try {
    await eo.ready.catch(() => {});
    while (eo.queue.length > 0) {
      // At most one log append per log_flush_ms: what arrives meanwhile joins this group.
      const waitMs = eo.lastCommitMs + ctx.logFlushMs - ctx.clock.nowMs();
      if (waitMs > 0) await ctx.clock.sleep(waitMs);
      eo.lastCommitMs = ctx.clock.nowMs();
      const group = eo.queue.splice(0);
      try {
        await commitGroup(
          ctx,
          t,
          eo,
          group.map((g) => g.batch),
        );
        for (const g of group) g.resolve();
      } catch (err) {
        for (const g of group) g.reject(err as Error);
      }
    }
  } finally {
    eo.pumping = false;
  }
}

async function commitGroup(ctx: PumpContext, t: TaskRunner, eo: ExactlyOnceState, batches: Batch[]): Promise<void> {
  const first = batches[0]!;
  await eo.ready;
  if (t.stopping || !t.op.alive) throw new TaskGone(`task ${first.job}/${first.stage}/${first.index} stopped`);
  // Inputs from source lines every stage has acknowledged are repeats without a lookup (seen_ids.ts).
  eo.seen.raiseFloor(ctx.router.floorOf(first.job));
  const { fresh, freshCount, repeated } = splitSeen(batches.map((b) => b.lines).join(""), eo.seen);
  let answers: Answer[] = [];
  if (freshCount > 0) {
    answers = await t.op.processLines(fresh, freshCount);
    try {
      // A stateless built-in (a last-stage grep, transform or echo) has no state to log: no round trip to ask it.
      const state = isStatelessOperator(t.start.op) ? null : await t.op.snapshot(++eo.snapshots, SNAPSHOT_TIMEOUT_MS);
      const failpoint = ctx.nextFailpoint();
      if (failpoint === "crash_before_log_append") throw new Error(`failpoint ${failpoint}`);
      await eo.log.append({ answers, state, floor: eo.seen.floor }, eo.records + 1);
      eo.records++;
      if (failpoint === "crash_after_log_append") throw new Error(`failpoint ${failpoint}`);
    } catch (err) {
      // The operator's state now holds inputs the log does not: only a restart from the
      // log is consistent again.
      t.op.kill();
      throw new TaskGone(`task log append failed: ${(err as Error).message}`);
    }
    for (const a of answers) {
      eo.seen.add(a.id);
      eo.unacked.set(a.id, a.outputs);
    }
    t.inputs += freshCount;
    t.batches += batches.length;
    for (const a of answers) t.outputs += a.outputs.length;
  }
  if (t.dest) return appendRecord(t, eo, t.dest, answers);
  // Repeated inputs: forward again what may not have arrived (downstream drops known ids).
  for (const id of repeated) answers.push({ id, outputs: eo.unacked.get(id) ?? [] });
  await ctx.router.forward(first, answers);
  for (const a of answers) eo.unacked.delete(a.id);
}

/**
 * A last-stage task: the new record's results to dest under its record number. A repeated input
 * needs nothing: its record's results are in dest, since a failed append stops the task (below)
 * and a restarted one appends its last record again before it takes any input.
 */
async function appendRecord(t: TaskRunner, eo: ExactlyOnceState, dest: TaskDest, answers: Answer[]): Promise<void> {
  if (answers.length === 0) return;
  try {
    await dest.appendRecord(eo.records, answers);
  } catch (err) {
    // The record is logged but its results may not be in dest: only a restart (which appends the
    // last record again, under the same number) can tell.
    t.op.kill();
    throw new TaskGone(`dest append failed: ${(err as Error).message}`);
  }
  for (const a of answers) eo.unacked.delete(a.id);
}
