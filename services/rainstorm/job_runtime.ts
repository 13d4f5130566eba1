/**
 * What the leader's driver (leader.ts) keeps of a job beside the job machine's state: who
 * listens to its events and its recent past (for watch_job), and the writer that creates its
 * dest (the last stage's tasks append to it themselves: dest_writer.ts). Separate from the
 * driver because it is per-job I/O state with its own rules (a listener set that closes after
 * the final event), none of which the machine or the rest of the driver needs to see.
 */
import { isFinalEvent } from "./client.ts";
import { LeaderError } from "./job_checks.ts";
import type { FileWriter } from "./job_files.ts";
import { RECENT_EVENTS_MAX } from "./job_watch.ts";
import type { JobEvent } from "./model.ts";

/** What the driver keeps of a job beside the machine's state: its listeners, recent events and dest's creation. */
export interface JobRuntime {
  /** The submitter's stream and the watchers'; dropped once the job's final event is told. */
  listeners: Set<(ev: JobEvent) => void>;
  /** The job's last RECENT_EVENTS_MAX events (job_watch.ts), for a watcher that attaches later. */
  recent: JobEvent[];
  /** The final event (done, failed, cancelled) has been told: nothing comes after it. */
  ended?: boolean;
  /**
   * Nobody listens: result lines are still asked for until then (after a takeover, for the streams
   * that reattach to this leader; after the last listener left, for one that comes back at once).
   * Undefined while someone listens.
   */
  linesUntilMs?: number;
  /** Creates dest as client `rainstorm-<job>`. */
  dest: FileWriter;
  /** Settles the submitter's request: undefined when accepted, else why the job could not start. */
  submitted?: (error: string | undefined) => void;
}

/**
 * After a takeover, a job's output notices carry their lines this long even with nobody listening:
 * ctl finds the new leader and reattaches within a few seconds (its quiet check is 5 s). Longer
 * covers a slower reattach; shorter stops the lines' traffic to the leader sooner.
 */
export const TAKEOVER_LINES_GRACE_MS = 10_000;
/** After the last listener of a job left, its notices carry lines this much longer (a stream that comes back at once). */
export const HANGUP_LINES_GRACE_MS = 2000;

/** Whether the job's output notices should carry their result lines: someone listens, or did a moment ago. */
export function wantsLines(rt: JobRuntime, nowMs: number): boolean {
  return rt.listeners.size > 0 || rt.linesUntilMs === undefined || nowMs < rt.linesUntilMs;
}

/** A listener joins (the submitter, or a watcher). */
export function listen(rt: JobRuntime, listener: (ev: JobEvent) => void): void {
  rt.listeners.add(listener);
  delete rt.linesUntilMs;
}

/** A listener leaves (its stream closed): when it was the last, the job's quiet time starts. */
export function unlisten(rt: JobRuntime, listener: (ev: JobEvent) => void, nowMs: number): void {
  if (rt.listeners.delete(listener) && rt.listeners.size === 0) rt.linesUntilMs = nowMs + HANGUP_LINES_GRACE_MS;
}

/** An event to the job's listeners and its recent past; after the final one, nobody listens any more. */
export function tell(rt: JobRuntime, ev: JobEvent): void {
  // A late output notice of an ended job: dest has its lines; its stream is over.
  if (rt.ended) return;
  rt.recent.push(ev);
  if (rt.recent.length > RECENT_EVENTS_MAX) rt.recent.shift();
  // A copy: a watcher that attaches while this event is told has it among the recent ones already.
  for (const l of [...rt.listeners]) l(ev);
  if (isFinalEvent(ev)) {
    rt.ended = true;
    rt.listeners.clear();
  }
}

/** create dest, retried with the same sequence number (applied once). */
export async function writeDest(rt: JobRuntime, kind: "create" | "append", text: string): Promise<void> {
  try {
    await rt.dest.write(kind, text);
  } catch (err) {
    throw new LeaderError(`${(err as Error).message}`, 503);
  }
}
