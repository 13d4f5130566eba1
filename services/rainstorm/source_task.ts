/**
 * A job's source as a task on a worker (issue 14: the data plane leaves the leader). The leader
 * places it on a worker (POST /worker/source), like any task; it reads src from HyDFS through the
 * worker's own hydfsd, sends stage-0 batches through the worker's router, and reports its
 * progress to the leader of the moment: lines read, and the acknowledged position (every line up
 * to it has its results in dest), which the leader journals so that a restarted source, or a new
 * leader, resumes from there. Its end (done or failed) is reported until a leader takes it, so a
 * failover between the last acknowledgement and the report loses nothing.
 */
import type { Logger } from "../shared/log.ts";
import type { Clock } from "./clock.ts";
import type { Batch, SourceReport, SourceStart } from "./model.ts";
import { runSource } from "./source.ts";

export type { SourceReport, SourceStart };

/** A running source reports its progress at most this often. */
export const SOURCE_REPORT_MS = 500;
/** Its end is reported again this much later until a leader takes it. */
export const SOURCE_END_RETRY_MS = 500;

export interface SourceHost {
  clock: Clock;
  log: Logger;
  /** rainstorm.batch_size and rainstorm.window. */
  batchSize: number;
  window: number;
  /** src's lines, streamed (HyDFS through this worker's hydfsd first). */
  lines(src: string): Promise<AsyncIterable<string>>;
  /** Send a stage-0 batch until acknowledged (the router's sendWithRetry); rejects once the job stopped here. */
  send(batch: Batch): Promise<void>;
  /** The job's stage-0 task count in the routes this worker holds now. */
  stage0Tasks(job: string): number;
  /** This worker's address (reports say where the source runs). */
  selfAddr: string;
  /** Report to the current leader; rejects when no leader took it. */
  report(r: SourceReport): Promise<void>;
}

export class SourceRunner {
  private read = 0;
  private acked = 0;
  private stopped = false;
  private lastReportMs = -Infinity;
  private reporting = false;
  /** Its end, once it ended (told again to a new leader: retell). */
  private end: SourceReport | undefined;
  private tellingEnd = false;
  readonly done: Promise<void>;

  constructor(
    private readonly host: SourceHost,
    readonly start: SourceStart,
  ) {
    this.read = start.fromLine;
    this.acked = start.fromLine;
    this.done = this.run();
  }

  /** Stop reading and reporting (the job stopped here, or another start replaced this one). */
  stop(): void {
    this.stopped = true;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  progress(): { read: number; acked: number } {
    return { read: this.read, acked: this.acked };
  }

  private async run(): Promise<void> {
    const { start, host } = this;
    let end: SourceReport;
    try {
      await runSource(
        {
          batchSize: host.batchSize,
          window: host.window,
          lines: await host.lines(start.src),
          send: (batch) => host.send(batch),
          progress: (read) => this.onProgress(read, this.acked),
          acked: (pos) => this.onProgress(this.read, pos),
          fromLine: start.fromLine,
          live: () => !this.stopped,
          nowMs: () => host.clock.nowMs(),
          sleep: (ms) => host.clock.sleep(ms),
        },
        {
          id: start.job,
          src: start.src,
          inputRate: start.inputRate,
          ...(start.rateSchedule ? { rateSchedule: start.rateSchedule } : {}),
          stage0Tasks: () => host.stage0Tasks(start.job),
          running: () => !this.stopped,
        },
      );
      if (this.stopped) return;
      end = { job: start.job, addr: host.selfAddr, read: this.read, acked: this.read, state: "done" };
    } catch (err) {
      if (this.stopped) return;
      end = { job: start.job, addr: host.selfAddr, read: this.read, acked: this.acked, state: "failed", error: (err as Error).message };
    }
    await this.reportEnd(end);
  }

  private onProgress(read: number, acked: number): void {
    this.read = Math.max(this.read, read);
    this.acked = Math.max(this.acked, acked);
    const nowMs = this.host.clock.nowMs();
    if (this.reporting || nowMs - this.lastReportMs < SOURCE_REPORT_MS) return;
    this.lastReportMs = nowMs;
    this.reporting = true;
    // Progress is best effort: the next report carries the newer values anyway.
    void this.host
      .report({ job: this.start.job, addr: this.host.selfAddr, read: this.read, acked: this.acked, state: "running" })
      .catch(() => {})
      .finally(() => (this.reporting = false));
  }

  /**
   * A new leader took over (it adopted this worker): an end already taken by the old leader is
   * told again, since that leader may have died before the job ended (it journals only the end
   * of the job, not the source's); the new one would wait for it forever otherwise.
   */
  retell(): void {
    if (this.end && !this.tellingEnd && !this.stopped) void this.reportEnd(this.end);
  }

  /** The end goes to whichever node leads, again and again until one takes it (or the job stops here). */
  private async reportEnd(end: SourceReport): Promise<void> {
    this.end = end;
    this.tellingEnd = true;
    try {
      await this.tellEnd(end);
    } finally {
      this.tellingEnd = false;
    }
  }

  private async tellEnd(end: SourceReport): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.host.report(end);
        return;
      } catch (err) {
        if (attempt % 20 === 0) this.host.log.warn(`source of job ${end.job}: reporting it ${end.state} failed (${(err as Error).message}); retrying`);
      }
      await this.host.clock.sleep(SOURCE_END_RETRY_MS);
    }
  }
}

/** The sources a worker runs, by job: at most one per job (a new start replaces the old one). */
export class WorkerSources {
  private readonly runners = new Map<string, SourceRunner>();

  constructor(private readonly host: SourceHost) {}

  start(start: SourceStart): void {
    this.runners.get(start.job)?.stop();
    const runner = new SourceRunner(this.host, start);
    this.runners.set(start.job, runner);
    void runner.done.finally(() => {
      if (this.runners.get(start.job) === runner && runner.isStopped) this.runners.delete(start.job);
    });
  }

  /** The job stopped here: its source stops reading and reporting. */
  stop(job: string): boolean {
    const runner = this.runners.get(job);
    runner?.stop();
    this.runners.delete(job);
    return runner !== undefined;
  }

  /** A new leader adopted this worker: every source that ended tells its end again (SourceRunner.retell). */
  retellEnds(): void {
    for (const r of this.runners.values()) r.retell();
  }

  stopAll(): void {
    for (const job of [...this.runners.keys()]) this.stop(job);
  }

  /** The sources running here (a new leader adopts them). */
  list(): { job: string; read: number; acked: number }[] {
    return [...this.runners].filter(([, r]) => !r.isStopped).map(([job, r]) => ({ job, ...r.progress() }));
  }
}
