/**
 * A worker's outgoing data plane: the routes of each job, and the batches that carry a task's
 * outputs to the next stage, by key (the last stage writes dest itself: dest_writer.ts). Outputs bound for one destination
 * are merged across input batches and sent until acknowledged, following route changes; each
 * caller's promise settles with the send that carried its tuples, so acknowledgement stays end
 * to end (see worker.ts).
 */
import type { Logger } from "../shared/log.ts";
import type { Clock } from "./clock.ts";
import { TaskGone } from "./errors.ts";
import { type Answer, tupleLine } from "./operator_proc.ts";
import { partitionOf } from "./plan.ts";
import type { RainstormTransport } from "./transport.ts";
import { checkJobId, checkRoutes, MAX_BATCH_TUPLES } from "./wire_checks.ts";
import type { Batch, Routes } from "./worker.ts";

/** How long outputs wait for more outputs to the same destination before they are sent. */
const OUTBOX_LINGER_MS = 2;
/** A batch nobody acknowledged is sent again after this long, doubling up to SEND_RETRY_MAX_MS. */
const SEND_RETRY_FIRST_MS = 50;
const SEND_RETRY_MAX_MS = 500;
/** A failing destination is logged (at debug) once every this many attempts. */
const SEND_RETRY_LOG_EVERY = 20;

interface Outbox {
  job: string;
  stage: number;
  index: number;
  lines: string;
  count: number;
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
  timer: { cancel(): void } | undefined;
}

export interface RouterOptions {
  transport: RainstormTransport;
  clock: Clock;
  log: Logger;
  /** rainstorm.batch_size: an outbox this full is sent at once. */
  batchSize: number;
  /** rainstorm.batch_timeout_ms: the deadline of one send. */
  batchTimeoutMs: number;
}

export class BatchRouter {
  private readonly routes = new Map<string, Routes>();
  private readonly stoppedJobs = new Set<string>();
  private readonly outboxes = new Map<string, Outbox>();
  /** Per job, the highest source floor heard of (Batch.floor); every batch sent carries it on. */
  private readonly floors = new Map<string, number>();

  constructor(private readonly opts: RouterOptions) {}

  /** Newer routes replace older ones (by term, then version: a new leader's come after its predecessor's); older or equal ones are ignored. */
  setRoutes(job: string, raw: Routes): void {
    checkJobId(job);
    const routes = checkRoutes(raw);
    const cur = this.routes.get(job);
    const newer = !cur || (routes.term ?? 0) > (cur.term ?? 0) || ((routes.term ?? 0) === (cur.term ?? 0) && routes.version > cur.version);
    if (newer) this.routes.set(job, routes);
  }

  routesOf(job: string): Routes | undefined {
    return this.routes.get(job);
  }

  /** A (re)started task's job runs here again. */
  jobStarted(job: string): void {
    this.stoppedJobs.delete(job);
  }

  /** The job stopped: its routes go, and its unsent batches give up (TaskGone). */
  jobStopped(job: string): void {
    this.stoppedJobs.add(job);
    this.routes.delete(job);
    this.floors.delete(job);
  }

  /** A batch came with the source's acknowledged position (a fact: only ever raised). */
  noteFloor(job: string, floor: number | undefined): void {
    if (floor !== undefined && floor > (this.floors.get(job) ?? 0)) this.floors.set(job, floor);
  }

  /** The highest source floor heard of for the job (0: none). */
  floorOf(job: string): number {
    return this.floors.get(job) ?? 0;
  }

  isStopped(job: string): boolean {
    return this.stoppedJobs.has(job);
  }

  /** Route the outputs of a batch by key to the next stage's tasks and wait for their acks. */
  async forward(batch: Batch, answers: Answer[]): Promise<void> {
    const routes = this.routes.get(batch.job);
    if (!routes) throw new TaskGone(`no routes for job ${batch.job}`);
    const next = batch.stage + 1;
    const nextTasks = routes.stages[next];
    if (!nextTasks) throw new Error(`job ${batch.job}: stage ${batch.stage} is the last; its task writes dest itself`);
    const groups = new Map<number, { lines: string; count: number }>();
    for (const { id, outputs } of answers) {
      outputs.forEach((o, j) => {
        // Deterministic ids: the same input always yields the same output ids (exactly-once later).
        const outId = outputs.length === 1 ? `${id}>` : `${id}>${j}`;
        const dest = partitionOf(o.key, nextTasks.length);
        let g = groups.get(dest);
        if (!g) groups.set(dest, (g = { lines: "", count: 0 }));
        g.lines += tupleLine(outId, o.key, o.value);
        g.count++;
      });
    }
    await Promise.all([...groups].map(([dest, g]) => this.enqueue(batch.job, next, dest, g.lines, g.count)));
  }

  /**
   * Outputs bound for one destination are merged across input batches (a filter shrinks every
   * batch) and sent when they reach batch_size or after OUTBOX_LINGER_MS.
   */
  private enqueue(job: string, stage: number, index: number, lines: string, count: number): Promise<void> {
    const key = `${job}/${stage}/${index}`;
    let box = this.outboxes.get(key);
    if (!box) this.outboxes.set(key, (box = { job, stage, index, lines: "", count: 0, waiters: [], timer: undefined }));
    box.lines += lines;
    box.count += count;
    const done = new Promise<void>((resolve, reject) => box.waiters.push({ resolve, reject }));
    if (box.count >= this.opts.batchSize) this.flush(key);
    else box.timer ??= this.opts.clock.after(OUTBOX_LINGER_MS, () => this.flush(key));
    return done;
  }

  private flush(key: string): void {
    const box = this.outboxes.get(key);
    if (!box) return;
    this.outboxes.delete(key);
    box.timer?.cancel();
    // Over MAX_BATCH_TUPLES (receivers refuse more): several batches, one after the other, in order.
    const floor = this.floorOf(box.job);
    const batch: Batch = { job: box.job, stage: box.stage, index: box.index, count: box.count, lines: box.lines, ...(floor > 0 ? { floor } : {}) };
    const parts = splitBatch(batch, MAX_BATCH_TUPLES);
    parts
      .reduce((prev: Promise<void>, part) => prev.then(() => this.sendWithRetry(box.job, part)), Promise.resolve())
      .then(
        () => {
          for (const w of box.waiters) w.resolve();
        },
        (err: Error) => {
          for (const w of box.waiters) w.reject(err);
        },
      );
  }

  /** Send until acknowledged, following route changes; gives up only when the job stops. */
  async sendWithRetry(job: string, batch: Batch): Promise<void> {
    let delayMs = SEND_RETRY_FIRST_MS;
    for (let attempt = 0; ; attempt++) {
      if (this.stoppedJobs.has(job)) throw new TaskGone(`job ${job} stopped`);
      const routes = this.routes.get(job);
      const tasks = routes?.stages[batch.stage];
      // A stage that autoscaling shrank: the batch goes to a remaining task (only stateless
      // stages are rescaled, so any task of the stage may take any tuple).
      if (tasks && tasks.length > 0 && batch.index >= tasks.length) batch = { ...batch, index: batch.index % tasks.length };
      const target = tasks?.[batch.index];
      if (target) {
        try {
          await this.opts.transport.sendBatch(target, batch, this.opts.batchTimeoutMs);
          return;
        } catch (err) {
          if (attempt % SEND_RETRY_LOG_EVERY === 0)
            this.opts.log.debug?.(`batch for ${job} stage ${batch.stage} task ${batch.index} at ${target}: ${(err as Error).message}; retrying`);
        }
      }
      await this.opts.clock.sleep(delayMs);
      delayMs = Math.min(delayMs * 2, SEND_RETRY_MAX_MS);
    }
  }
}

/**
 * A result as a line of dest: `key\tvalue`. dest holds one result per line, so a line break
 * inside a key or value (only an operator of your own can make one) is written as the two
 * characters \n (or \r).
 */
export function destLine(key: string, value: string): string {
  const flat = (s: string) => (s.includes("\n") || s.includes("\r") ? s.replaceAll("\n", "\\n").replaceAll("\r", "\\r") : s);
  return `${flat(key)}\t${flat(value)}\n`;
}

/** A batch of `max` tuples or fewer as it is, a larger one cut into consecutive batches of at most `max`. */
export function splitBatch(batch: Batch, max: number): Batch[] {
  if (batch.count <= max) return [batch];
  const parts: Batch[] = [];
  let from = 0;
  for (let done = 0; done < batch.count; done += max) {
    let to = from;
    const n = Math.min(max, batch.count - done);
    for (let i = 0; i < n; i++) to = batch.lines.indexOf("\n", to) + 1;
    parts.push({ ...batch, count: n, lines: batch.lines.slice(from, to) });
    from = to;
  }
  return parts;
}
