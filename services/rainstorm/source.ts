/**
 * A job's source, on the leader: reads src line by line, gives each line the key `src:lineNo`,
 * partitions it to a stage-0 task (hash of the key mod the stage's task count) and sends batches
 * through this node's worker, at most `window` unacknowledged batches per task. Paced by
 * input_rate or --rate-schedule when the job has one. Resolves once every batch is acknowledged
 * (end to end, so every result is in dest), or early when the job stopped running.
 */
import { partitionOf } from "./plan.ts";
import { tupleLine } from "./operator_proc.ts";
import { rateAt, type RateStep, timeDueMs } from "./rate_schedule.ts";
import type { Batch } from "./worker.ts";

/** What a source needs of its job: its id and src, its pace, how many stage-0 tasks it has now, and whether it still runs. */
export interface SourceJob {
  id: string;
  src: string;
  /** Tuples per second (0: as fast as the pipeline takes them). */
  inputRate: number;
  rateSchedule?: RateStep[];
  /** Stage 0's task count now (autoscaling may change it while the source runs). */
  stage0Tasks(): number;
  running(): boolean;
}

export interface SourceContext {
  /** rainstorm.batch_size: most tuples per batch. */
  batchSize: number;
  /** rainstorm.window: most unacknowledged batches per stage-0 task. */
  window: number;
  /** src's lines. */
  lines: AsyncIterable<string>;
  /** Send a stage-0 batch until acknowledged (the router's sendWithRetry); rejects only when the job stopped. */
  send(batch: Batch): Promise<void>;
  /** Source progress: lines read so far. */
  progress(tuplesRead: number): void;
  /** Every line up to `pos` is acknowledged end to end (the journal's resume point); called as it grows. */
  acked?(pos: number): void;
  /** Lines up to this one were acknowledged under an earlier leader: skip them (0: start at the top). */
  fromLine?: number;
  /** False once the leader stepped down: the source stops reading. */
  live?(): boolean;
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}

/** Paced, a batch holds about this much input (ms), so a slow source still delivers promptly. */
const PACED_BATCH_MS = 50;
/** Pacing flushes and sleeps only when ahead of schedule by more than this (at least, at most ms). */
const PACE_AHEAD_MIN_MS = 5;
const PACE_AHEAD_MAX_MS = 50;

export function runSource(ctx: SourceContext, job: SourceJob): Promise<void> {
  return new SourceRun(ctx, job).run();
}

/** One run of a job's source: the batches it fills, the windows of those in flight, and its pace. */
class SourceRun {
  /** A constant input_rate is a one-step schedule (the last step's rate goes on forever). */
  private readonly steps: RateStep[];
  private readonly paced: boolean;
  private batchSize: number;
  /** Indexed by stage-0 task; autoscaling may change how many there are while the source runs. */
  private readonly pending = new Map<number, { lines: string; count: number; first: number }>();
  /** The first line of every batch sent and not yet acknowledged, by send number (the acked position is below the least). */
  private readonly unacked = new Map<number, number>();
  private sends = 0;
  private ackedPos = 0;
  private readonly inFlight = new Map<number, Set<Promise<void>>>();
  private readonly all = new Set<Promise<void>>();
  private failed: Error | undefined;
  private lineNo = 0;
  private taskCount: number;
  /** When line 1 was (or would have been) due: a resumed source's skipped lines count as sent on schedule. */
  private readonly t0: number;

  constructor(
    private readonly ctx: SourceContext,
    private readonly job: SourceJob,
  ) {
    this.steps = job.rateSchedule ?? (job.inputRate > 0 ? [{ ratePerSec: job.inputRate, durationMs: 1000 }] : []);
    this.paced = this.steps.length > 0;
    this.batchSize = this.batchSizeAt(this.steps[0]?.ratePerSec ?? 0);
    this.taskCount = job.stage0Tasks();
    // Resuming after line `fromLine`, the pace goes on from there rather than waiting for the skipped lines' time again.
    this.t0 = ctx.nowMs() - (this.paced && (ctx.fromLine ?? 0) > 0 ? timeDueMs(this.steps, ctx.fromLine!) : 0);
  }

  async run(): Promise<void> {
    const { job } = this;
    const fromLine = this.ctx.fromLine ?? 0;
    this.ackedPos = fromLine;
    for await (const line of this.ctx.lines) {
      if (!job.running() || this.ctx.live?.() === false) return;
      this.lineNo++;
      if (this.lineNo <= fromLine) continue;
      if (job.stage0Tasks() !== this.taskCount) {
        // Stage 0 was rescaled: what waits for a removed task goes now (its sender re-routes it).
        this.taskCount = job.stage0Tasks();
        for (const index of [...this.pending.keys()]) if (index >= this.taskCount) await this.send(index);
      }
      const key = `${job.src}:${this.lineNo}`;
      const index = partitionOf(key, this.taskCount);
      let batch = this.pending.get(index);
      if (!batch) this.pending.set(index, (batch = { lines: "", count: 0, first: this.lineNo }));
      batch.lines += tupleLine(key, key, line.endsWith("\r") ? line.slice(0, -1) : line);
      // Await only when there is something to wait for: most lines are added synchronously.
      if (++batch.count >= this.batchSize) await this.send(index);
      if (this.paced) await this.pace();
    }
    this.ctx.progress(this.lineNo);
    await this.sendAll();
    while (this.all.size > 0) await Promise.race(this.all);
    if (this.failed) throw this.failed;
  }

  /** Paced, a batch holds about PACED_BATCH_MS of input; unpaced, batch_size. */
  private batchSizeAt(ratePerSec: number): number {
    return this.paced ? Math.max(1, Math.min(this.ctx.batchSize, Math.ceil(ratePerSec / (1000 / PACED_BATCH_MS)))) : this.ctx.batchSize;
  }

  /** Send task `index`'s pending batch once its window has room. */
  private async send(index: number): Promise<void> {
    const batch = this.pending.get(index);
    if (!batch || batch.count === 0) return;
    this.pending.delete(index);
    let window = this.inFlight.get(index);
    if (!window) this.inFlight.set(index, (window = new Set()));
    // Unacknowledged from here on: while it waits for room its lines are in neither `pending` nor in flight.
    const sendNo = ++this.sends;
    this.unacked.set(sendNo, batch.first);
    while (window.size >= this.ctx.window) await Promise.race(window);
    // Each batch carries the acknowledged position on (Batch.floor): tasks forget the ids below it.
    const floor = this.ackedPos > 0 ? { floor: this.ackedPos } : {};
    const p: Promise<void> = this.ctx
      .send({ job: this.job.id, stage: 0, index, count: batch.count, lines: batch.lines, ...floor })
      .then(() => {
        this.unacked.delete(sendNo);
        this.reportAcked();
      })
      .catch((err) => {
        this.failed ??= err as Error;
      })
      .finally(() => {
        window.delete(p);
        this.all.delete(p);
      });
    window.add(p);
    this.all.add(p);
    this.ctx.progress(this.lineNo);
  }

  /** Lines below the first of every batch still pending or unacknowledged are all acknowledged. */
  private reportAcked(): void {
    let pos = this.lineNo;
    for (const first of this.unacked.values()) pos = Math.min(pos, first - 1);
    for (const b of this.pending.values()) pos = Math.min(pos, b.first - 1);
    if (pos <= this.ackedPos) return;
    this.ackedPos = pos;
    this.ctx.acked?.(pos);
  }

  private async sendAll(): Promise<void> {
    for (const index of [...this.pending.keys()]) await this.send(index);
  }

  /**
   * Pacing: flush and sleep only when this far ahead of schedule (a few batches' worth), so a
   * paced source still sends full batches.
   */
  private async pace(): Promise<void> {
    const nowMs = this.ctx.nowMs();
    const rate = rateAt(this.steps, nowMs - this.t0);
    this.batchSize = this.batchSizeAt(rate);
    const aheadMs = Math.max(PACE_AHEAD_MIN_MS, Math.min(PACE_AHEAD_MAX_MS, (this.batchSize * this.taskCount * 1000) / rate));
    const waitMs = this.t0 + timeDueMs(this.steps, this.lineNo) - nowMs;
    if (waitMs > aheadMs) {
      await this.sendAll();
      await this.ctx.sleep(waitMs);
    }
  }
}
