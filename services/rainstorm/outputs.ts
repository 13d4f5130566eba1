/**
 * A worker's output notices: after a last-stage task appended results to dest (dest_writer.ts),
 * it tells the leader (POST /outputs), so the submitter's stream and watch_job still print every
 * result and list_jobs counts them. The leader only listens: dest is written already, so a notice
 * is never on the data path. Notices go out in order (one call at a time, per worker, so each
 * task's in order), retried with backoff to whichever address `leaderAddr()` names at that moment
 * (the elected leader). A task's consecutive notices waiting together go in one call (their lines
 * joined, the last one's seq and total), so the notices keep up with the appends whatever the
 * round trip to the leader; the leader tells lines apart by `total` (job_outputs.ts). The queue is bounded: past NOTICE_QUEUE_MAX a notice keeps its counts and
 * loses its lines (a watcher misses those lines, the counts stay right), so a leader that is
 * down or slow can never make a task wait or a worker's memory grow with the outputs.
 *
 * Each task's last RECENT_NOTICES_PER_TASK notices are kept, so that a new leader can hear them
 * again (resendRecent): a stream reattached to it misses nothing. The leader drops a `seq` it
 * has had, so a repeat costs nothing but the call.
 */
import type { Logger } from "../shared/log.ts";
import type { Clock } from "./clock.ts";
import type { OutputsNotice } from "./model.ts";

/** Most notices a worker holds for the leader; beyond it a notice keeps its counts and drops its lines. */
export const NOTICE_QUEUE_MAX = 1000;
/** Notices kept per task for a new leader (resendRecent). */
export const RECENT_NOTICES_PER_TASK = 64;
/** A notice the leader did not take is sent again after this long, doubling up to NOTICE_RETRY_MAX_MS. */
const NOTICE_RETRY_FIRST_MS = 50;
const NOTICE_RETRY_MAX_MS = 2000;
/** Most lines of one call when a task's waiting notices are sent together. */
const NOTICE_MERGE_MAX_LINES = 50_000;
/** How often flush() looks whether a job's notices are gone. */
const FLUSH_POLL_MS = 5;

export interface OutputNoticesOptions {
  /**
   * One attempt to deliver a notice; rejects when the leader did not take it (an error with a 4xx
   * `status` but 421 is final). Resolves whether the job's next notices should carry their lines
   * (false: nobody watches the job, counts are enough).
   */
  send(leaderAddr: string, notice: OutputsNotice): Promise<boolean | void>;
  /** The leader's "host:port" now, or undefined while there is none. */
  leaderAddr(): string | undefined;
  clock: Clock;
  log: Logger;
}

export class OutputNotices {
  private readonly queue: OutputsNotice[] = [];
  /** Each task's last notices, by `job/from`. */
  private readonly recent = new Map<string, OutputsNotice[]>();
  /** The notices being sent (never merged into: their counts are on their way already). */
  private readonly inFlight = new Set<OutputsNotice>();
  /**
   * Notices sent again (resendRecent): never merged, so each reaches a new leader, and through
   * it ctl (ctl/replay_filter.ts, which prints a seq once per `from`), with its own seq and lines.
   */
  private readonly resent = new WeakSet<OutputsNotice>();
  /** A call that failed is tried again as it was (the same notices merged the same way): a leader may have taken it. */
  private retry: OutputsNotice[] | undefined;
  private draining = false;
  private stopped = false;
  private overflowLogged = false;
  /** Jobs whose leader said nobody watches them: their new notices go with counts only (the ring keeps the lines). */
  private readonly countsOnly = new Set<string>();

  constructor(private readonly opts: OutputNoticesOptions) {}

  /** How many notices wait (the one being sent included). */
  get size(): number {
    return this.queue.length;
  }

  /**
   * Queue a notice for the leader; never waits. `again`: a restarted task tells an earlier
   * incarnation's record again; like a resent one it is never merged, so a leader that has not
   * heard it (a new one) passes it on with its own seq, and ctl, which has printed that seq, drops it.
   */
  push(notice: OutputsNotice, again = false): void {
    if (again) this.resent.add(notice);
    const k = `${notice.job}/${notice.from}`;
    const mine = this.recent.get(k) ?? [];
    mine.push(notice);
    if (mine.length > RECENT_NOTICES_PER_TASK) mine.shift();
    this.recent.set(k, mine);
    this.enqueue(this.countsOnly.has(notice.job) ? { ...notice, lines: [] } : notice);
  }

  /** A new leader took over (`job`: that job): every task's recent notices go again, in order (it drops what it has had). */
  resendRecent(job?: string): void {
    // A new leader: the calls the old one may have taken are not its concern.
    this.retry = undefined;
    for (const [k, ring] of this.recent) {
      if (job !== undefined && !k.startsWith(`${job}/`)) continue;
      // Each task's ring goes before its notices still waiting (the ring ends with them), so the
      // new leader hears that task's seqs in order; older waiting ones keep their places.
      const inRing = new Set(ring);
      for (let i = this.queue.length - 1; i >= 0; i--) if (inRing.has(this.queue[i]!) && !this.inFlight.has(this.queue[i]!)) this.queue.splice(i, 1);
      for (const n of ring) {
        this.resent.add(n);
        this.enqueue(n);
      }
    }
  }

  /** The job ended here: its notices are no longer of use. */
  forgetJob(job: string): void {
    this.countsOnly.delete(job);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.job === job && !this.inFlight.has(this.queue[i]!)) this.queue.splice(i, 1);
    for (const k of [...this.recent.keys()]) if (k.startsWith(`${job}/`)) this.recent.delete(k);
  }

  /** Whether a notice of `job` still waits. */
  holds(job: string): boolean {
    return this.queue.some((n) => n.job === job);
  }

  /** Resolves true once no notice of `job` waits, false if some still do after `timeoutMs`. */
  async flush(job: string, timeoutMs: number): Promise<boolean> {
    const deadline = this.opts.clock.nowMs() + timeoutMs;
    while (this.holds(job)) {
      if (this.stopped || this.opts.clock.nowMs() >= deadline) return false;
      await this.opts.clock.sleep(FLUSH_POLL_MS);
    }
    return true;
  }

  stop(): void {
    this.stopped = true;
  }

  private enqueue(notice: OutputsNotice): void {
    if (this.queue.length >= NOTICE_QUEUE_MAX) {
      if (!this.overflowLogged) {
        this.overflowLogged = true;
        this.opts.log.warn(
          `output notices: ${NOTICE_QUEUE_MAX} wait for the leader; further ones carry counts only (watchers miss those lines; dest has them)`,
        );
      }
      const counts = { ...notice, lines: [] };
      // A count-only notice of the same task still waiting is replaced by the newer counts.
      for (let i = this.queue.length - 1; i >= 0; i--) {
        const q = this.queue[i]!;
        if (q.job !== notice.job || q.from !== notice.from) continue;
        if (q.lines.length === 0 && !this.inFlight.has(q) && q.seq < notice.seq) return void (this.queue[i] = counts);
        break;
      }
      this.queue.push(counts);
    } else this.queue.push(notice);
    if (!this.draining) void this.drain();
  }

  /** Send the queue's head until the leader takes it (or refuses it for good), then the next. */
  private async drain(): Promise<void> {
    this.draining = true;
    let pauseMs = NOTICE_RETRY_FIRST_MS;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const queued = this.retry && new Set(this.queue);
        const batch = this.retry?.filter((n) => queued!.has(n)) ?? this.nextCall();
        this.retry = undefined;
        if (batch.length === 0) continue;
        const head = mergeNotices(batch);
        const addr = this.opts.leaderAddr();
        let done = false;
        if (addr !== undefined) {
          for (const n of batch) this.inFlight.add(n);
          try {
            const lines = await this.opts.send(addr, head);
            if (lines === false) this.countsOnly.add(head.job);
            else this.countsOnly.delete(head.job);
            done = true;
          } catch (err) {
            const status = (err as { status?: unknown }).status;
            // 421: that node is not the leader (any more): the next attempt asks leaderAddr() again.
            if (typeof status === "number" && status >= 400 && status < 500 && status !== 421) {
              // The leader will never take it (a job it does not know, a malformed notice): retrying cannot help.
              this.opts.log.debug?.(`output notice ${head.from}#${head.seq} of ${head.job} refused by ${addr}: ${(err as Error).message}`);
              done = true;
            }
          } finally {
            this.inFlight.clear();
          }
        }
        if (done) {
          const sent = new Set(batch);
          for (let i = this.queue.length - 1; i >= 0; i--) if (sent.has(this.queue[i]!)) this.queue.splice(i, 1);
          pauseMs = NOTICE_RETRY_FIRST_MS;
          if (this.queue.length < NOTICE_QUEUE_MAX / 2) this.overflowLogged = false;
        } else {
          if (addr !== undefined) this.retry = batch;
          await this.opts.clock.sleep(pauseMs);
          pauseMs = Math.min(pauseMs * 2, NOTICE_RETRY_MAX_MS);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** The queue's head and the notices of the same task right behind it that continue it (see mergeNotices). */
  private nextCall(): OutputsNotice[] {
    const batch = [this.queue[0]!];
    let lines = batch[0]!.lines.length;
    for (let i = 1; i < this.queue.length; i++) {
      const prev = batch.at(-1)!;
      const n = this.queue[i]!;
      if (!continues(prev, n) || this.resent.has(prev) || this.resent.has(n) || lines + n.lines.length > NOTICE_MERGE_MAX_LINES) break;
      batch.push(n);
      lines += n.lines.length;
    }
    return batch;
  }
}

/** Whether `next` is the notice right after `prev` of the same task, with every line since (not a count-only one). */
function continues(prev: OutputsNotice, next: OutputsNotice): boolean {
  return (
    next.job === prev.job &&
    next.from === prev.from &&
    next.seq > prev.seq &&
    prev.lines.length > 0 &&
    next.lines.length > 0 &&
    next.total - prev.total === next.lines.length
  );
}

/** Consecutive notices of one task as one: every line, in order, with the last one's seq and total. */
export function mergeNotices(notices: OutputsNotice[]): OutputsNotice {
  if (notices.length === 1) return notices[0]!;
  const last = notices.at(-1)!;
  return { ...last, lines: notices.flatMap((n) => n.lines) };
}
