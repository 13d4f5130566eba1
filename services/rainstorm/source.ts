/**
 * A job's source, on the leader: reads src line by line, gives each line the key `src:lineNo`,
 * partitions it to a stage-0 task (hash of the key mod the stage's task count) and sends batches
 * through this node's worker, at most `window` unacknowledged batches per task. Paced by
 * input_rate or --rate-schedule when the job has one. Resolves once every batch is acknowledged
 * (end to end, so every result is in dest), or early when the job stopped running.
 */
import type { MachineJob } from "./job_machine.ts";
import { partitionOf } from "./plan.ts";
import { inputLine } from "./operator_proc.ts";
import { rateAt, type RateStep, timeDueMs } from "./rate_schedule.ts";
import type { Batch } from "./worker.ts";

export interface SourceContext {
  /** rainstorm.batch_size: most tuples per batch. */
  batchSize: number;
  /** rainstorm.window: most unacknowledged batches per stage-0 task. */
  window: number;
  /** src's lines. */
  lines: AsyncIterable<string>;
  /** Send a stage-0 batch until acknowledged (worker.sendWithRetry); rejects only when the job stopped. */
  send(batch: Batch): Promise<void>;
  /** Source progress: lines read so far. */
  progress(tuplesRead: number): void;
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}

/** Paced, a batch holds about this much input (ms), so a slow source still delivers promptly. */
const PACED_BATCH_MS = 50;
/** Pacing flushes and sleeps only when ahead of schedule by more than this (at least, at most ms). */
const PACE_AHEAD_MIN_MS = 5;
const PACE_AHEAD_MAX_MS = 50;

export async function runSource(ctx: SourceContext, job: MachineJob): Promise<void> {
  const { spec } = job;
  // A constant input_rate is a one-step schedule (the last step's rate goes on forever).
  const steps: RateStep[] = spec.rateSchedule ?? (spec.inputRate > 0 ? [{ ratePerSec: spec.inputRate, durationMs: 1000 }] : []);
  const paced = steps.length > 0;
  const batchSizeAt = (ratePerSec: number) => (paced ? Math.max(1, Math.min(ctx.batchSize, Math.ceil(ratePerSec / (1000 / PACED_BATCH_MS)))) : ctx.batchSize);
  let batchSize = batchSizeAt(steps[0]?.ratePerSec ?? 0);
  // Indexed by stage-0 task; autoscaling may change how many there are while the source runs.
  const pending = new Map<number, { lines: string; count: number }>();
  const inFlight = new Map<number, Set<Promise<void>>>();
  const all = new Set<Promise<void>>();
  let failed: Error | undefined;
  let lineNo = 0;
  const send = async (index: number) => {
    const batch = pending.get(index);
    if (!batch || batch.count === 0) return;
    pending.delete(index);
    let window = inFlight.get(index);
    if (!window) inFlight.set(index, (window = new Set()));
    while (window.size >= ctx.window) await Promise.race(window);
    const p = ctx
      .send({ job: job.id, stage: 0, index, count: batch.count, lines: batch.lines })
      .catch((err) => {
        failed ??= err as Error;
      })
      .finally(() => {
        window.delete(p);
        all.delete(p);
      });
    window.add(p);
    all.add(p);
    ctx.progress(lineNo);
  };
  const sendAll = async () => {
    for (const index of [...pending.keys()]) await send(index);
  };
  const t0 = ctx.nowMs();
  let taskCount = job.tasks[0]!.length;
  // Pacing: flush and sleep only when this far ahead of schedule (a few batches' worth), so a
  // paced source still sends full batches.
  const pace = async () => {
    const nowMs = ctx.nowMs();
    const rate = rateAt(steps, nowMs - t0);
    batchSize = batchSizeAt(rate);
    const aheadMs = Math.max(PACE_AHEAD_MIN_MS, Math.min(PACE_AHEAD_MAX_MS, (batchSize * taskCount * 1000) / rate));
    const waitMs = t0 + timeDueMs(steps, lineNo) - nowMs;
    if (waitMs > aheadMs) {
      await sendAll();
      await ctx.sleep(waitMs);
    }
  };
  for await (const line of ctx.lines) {
    if (job.status !== "running") return;
    lineNo++;
    if (job.tasks[0]!.length !== taskCount) {
      // Stage 0 was rescaled: what waits for a removed task goes now (its sender re-routes it).
      taskCount = job.tasks[0]!.length;
      for (const index of [...pending.keys()]) if (index >= taskCount) await send(index);
    }
    const key = `${spec.src}:${lineNo}`;
    const index = partitionOf(key, taskCount);
    let batch = pending.get(index);
    if (!batch) pending.set(index, (batch = { lines: "", count: 0 }));
    batch.lines += inputLine(key, key, line.endsWith("\r") ? line.slice(0, -1) : line);
    // Await only when there is something to wait for: most lines are added synchronously.
    if (++batch.count >= batchSize) await send(index);
    if (paced) await pace();
  }
  ctx.progress(lineNo);
  await sendAll();
  while (all.size > 0) await Promise.race(all);
  if (failed) throw failed;
}
