/**
 * A job's source, part of the job state machine (job_machine.ts) and pure like it: where the
 * source runs (a worker other than the leader's node when there is one, so the data plane stays
 * off the leader), its progress and acknowledged position (journaled at most every
 * SOURCE_JOURNAL_MS, so a successor resends at most that much), and moving it when its worker
 * goes or cannot start it. Its end is the job's end (job_end.ts). Progress and failure reports of
 * a source that has been moved elsewhere are ignored.
 */
import { failJob, jobDone } from "./job_end.ts";
import { hostOf, type JobInput, type MachineContext, type MachineJob } from "./job_events.ts";

/** The source's acknowledged position is journaled at most this often while it moves (a successor resends at most this much more). */
export const SOURCE_JOURNAL_MS = 500;

/** Start the job's source on the least loaded worker that is not the leader's node (if any other is alive), from `fromLine`. */
export function placeSource(ctx: MachineContext, job: MachineJob, fromLine: number, exclude: string[] = []): void {
  const addr = ctx.leastLoaded([ctx.cfg.selfAddr, ...exclude]);
  job.source = { addr, acked: fromLine, journaledMs: ctx.nowMs() };
  job.tuplesRead = Math.max(job.tuplesRead, fromLine);
  ctx.emit({ cmd: "run_source", job: job.id, addr, fromLine });
  ctx.emit({ cmd: "log", level: "info", text: `job ${job.id}: its source runs on ${addr}${fromLine > 0 ? ` from line ${fromLine + 1}` : ""}` });
}

/** Whether a report comes from where the job's source runs now (a report without an address is the source's). */
function fromCurrent(job: MachineJob, addr: string | undefined): boolean {
  return addr === undefined || job.source?.addr === addr;
}

export function sourceProgress(ctx: MachineContext, job: MachineJob, ev: Extract<JobInput, { type: "source_progress" }>): void {
  if (!fromCurrent(job, ev.addr)) return;
  job.tuplesRead = Math.max(job.tuplesRead, ev.tuplesRead);
  const src = job.source;
  if (!src || ev.acked === undefined || ev.acked <= src.acked) return;
  src.acked = ev.acked;
  if (ctx.nowMs() - src.journaledMs < SOURCE_JOURNAL_MS) return;
  src.journaledMs = ctx.nowMs();
  ctx.emit({ cmd: "journal", job: job.id, record: { k: "source", term: ctx.cfg.term, pos: src.acked } });
}

/**
 * Done from any source of the job, the current one or one it replaced: each reads the same src, and
 * it reports done only once every line is acknowledged end to end (a source lost after that but
 * before its report reached the leader is replaced by one that has nothing left to send).
 */
export function sourceDone(ctx: MachineContext, job: MachineJob): void {
  jobDone(ctx, job);
}

export function sourceFailed(ctx: MachineContext, job: MachineJob, ev: Extract<JobInput, { type: "source_failed" }>): void {
  if (fromCurrent(job, ev.addr)) failJob(ctx, job, `source: ${ev.error}`);
}

/** The source could not start at `addr`, or its worker went: it starts again elsewhere from its acknowledged position. */
export function sourceLost(ctx: MachineContext, job: MachineJob, ev: Extract<JobInput, { type: "source_lost" }>): void {
  if (job.status !== "running" || job.source?.addr !== ev.addr || ctx.workers().length === 0) return;
  const from = job.source.acked;
  ctx.emit({ cmd: "log", level: "warn", text: `job ${job.id}: its source on ${ev.addr} is lost (${ev.reason}); it starts again after line ${from}` });
  placeSource(ctx, job, from, [ev.addr]);
}

/** Membership changed: a source on a worker that is gone moves. */
export function sourceWorkerGone(ctx: MachineContext, job: MachineJob, hostsUp: Set<string>): void {
  const src = job.source;
  if (job.status !== "running" || !src || hostsUp.has(hostOf(src.addr))) return;
  sourceLost(ctx, job, { type: "source_lost", job: job.id, addr: src.addr, reason: `worker ${hostOf(src.addr)} failed` });
}
