/**
 * What the leader's driver (leader.ts) keeps of a job beside the job machine's state: who
 * listens to its events and its recent past (for watch_job), and its dest, written in group
 * commits. Separate from the driver because it is per-job I/O state with its own rules (a
 * listener set that closes after the final event; one flush loop per job at a time), none of
 * which the machine or the rest of the driver needs to see.
 */
import { isFinalEvent } from "./client.ts";
import { LeaderError } from "./job_checks.ts";
import type { FileWriter } from "./job_files.ts";
import { RECENT_EVENTS_MAX } from "./job_watch.ts";
import type { JobEvent } from "./model.ts";

/** What the driver keeps of a job beside the machine's state: its listeners, recent events and dest writes. */
export interface JobRuntime {
  /** The submitter's stream and the watchers'; dropped once the job's final event is told. */
  listeners: Set<(ev: JobEvent) => void>;
  /** The job's last RECENT_EVENTS_MAX events (job_watch.ts), for a watcher that attaches later. */
  recent: JobEvent[];
  sinkQueue: { text: string; resolve: () => void; reject: (e: Error) => void }[];
  /** The running group-commit loop of the sink, if any; it ends when the queue is empty. */
  sinkFlush: Promise<void> | undefined;
  /** Writes dest as client `rainstorm-<job>`. */
  dest: FileWriter;
  /** Settles the submitter's request: undefined when accepted, else why the job could not start. */
  submitted?: (error: string | undefined) => void;
}

/** An event to the job's listeners and its recent past; after the final one, nobody listens any more. */
export function tell(rt: JobRuntime, ev: JobEvent): void {
  rt.recent.push(ev);
  if (rt.recent.length > RECENT_EVENTS_MAX) rt.recent.shift();
  // A copy: a watcher that attaches while this event is told has it among the recent ones already.
  for (const l of [...rt.listeners]) l(ev);
  if (isFinalEvent(ev)) rt.listeners.clear();
}

/** Queue `text` for dest; resolves once it is written (in a group with whatever else was queued). */
export function queueDestWrite(rt: JobRuntime, text: string): Promise<void> {
  return new Promise<void>((resolve, reject) => (rt.sinkQueue.push({ text, resolve, reject }), flushSink(rt)));
}

/** Group commit: everything queued goes to dest in one idempotent append. */
function flushSink(rt: JobRuntime): void {
  // With a non-empty queue the loop awaits before its finally, so the finally's reset always
  // comes after this assignment, in the same turn as the check that the queue is empty.
  if (rt.sinkFlush || rt.sinkQueue.length === 0) return;
  rt.sinkFlush = (async () => {
    try {
      while (rt.sinkQueue.length > 0) {
        const group = rt.sinkQueue.splice(0);
        try {
          await writeDest(rt, "append", group.map((g) => g.text).join(""));
          for (const g of group) g.resolve();
        } catch (err) {
          for (const g of group) g.reject(err as Error);
        }
      }
    } finally {
      rt.sinkFlush = undefined;
    }
  })();
}

/** create/append to dest, retried with the same sequence number (applied once). */
export async function writeDest(rt: JobRuntime, kind: "create" | "append", text: string): Promise<void> {
  try {
    await rt.dest.write(kind, text);
  } catch (err) {
    throw new LeaderError(`${(err as Error).message}`, 503);
  }
}
