/**
 * Which events of a followed job ctl prints, so that a job followed across a leader failover
 * prints every result line once. After a failover ctl reattaches to the new leader
 * (GET /jobs/:job/events), whose answer replays the job's recent events: some of them were
 * printed already. Pure: events in, "print it or not" out; no clock, no I/O.
 *
 * - An `output` event carrying `from` (the task that produced the batch) and `seq` (its batch
 *   number; a task's seqs only grow) is printed only if its seq is above the highest printed for
 *   that `from`: a new leader may send a batch again, never one out of order. Memory: one number
 *   per producer task.
 * - An `output` without from/seq (a leader from before failover) is printed as it comes: there
 *   is nothing to tell a repeat by.
 * - `accepted`, `task_restarted` and `scaled` are printed unless the same event (every field
 *   equal) is among the last REMEMBERED_EVENTS of them printed: a replay repeats them whole. A
 *   task restarted twice differs in its pid, so equal means repeated.
 * - `watching`, `dropped` and the final events are about this stream, never a repeat: printed.
 */
import type { JobEvent } from "../rainstorm/model.ts";

/**
 * How many non-output events ctl remembers to recognize a replayed one. A leader replays at most
 * its last 200 events of a job (RECENT_EVENTS_MAX), so remembering more of them than that catches
 * every repeat; a bound keeps a long job with many restarts or rescales from growing ctl.
 */
export const REMEMBERED_EVENTS = 256;

/** The output event with its optional batch identity (model.ts may not declare them yet). */
type OutputBatch = { event: "output"; lines: string[]; from?: unknown; seq?: unknown };

/** One event's identity for comparison: its fields in sorted order, so key order does not matter. */
export function eventKey(ev: JobEvent): string {
  return JSON.stringify(ev, (_key, value: unknown) =>
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** The (from, seq) of an output batch, when it carries both. */
export function batchId(ev: JobEvent): { from: string; seq: number } | undefined {
  if (ev.event !== "output") return undefined;
  const { from, seq } = ev as OutputBatch;
  return typeof from === "string" && Number.isSafeInteger(seq) ? { from, seq: seq as number } : undefined;
}

export class ReplayFilter {
  /** The highest seq printed per producer. */
  private readonly printedSeq = new Map<string, number>();
  /** Keys of the non-output events printed, oldest first (at most REMEMBERED_EVENTS). */
  private readonly recent: string[] = [];
  private readonly recentSet = new Set<string>();

  constructor(private readonly remembered = REMEMBERED_EVENTS) {}

  /** Whether to print `ev`; if so, it counts as printed from now on. */
  admit(ev: JobEvent): boolean {
    switch (ev.event) {
      case "output": {
        const id = batchId(ev);
        if (id === undefined) return true;
        if (id.seq <= (this.printedSeq.get(id.from) ?? -Infinity)) return false;
        this.printedSeq.set(id.from, id.seq);
        return true;
      }
      case "accepted":
      case "task_restarted":
      case "scaled": {
        const key = eventKey(ev);
        if (this.recentSet.has(key)) return false;
        this.recent.push(key);
        this.recentSet.add(key);
        if (this.recent.length > this.remembered) this.recentSet.delete(this.recent.shift()!);
        return true;
      }
      default:
        return true;
    }
  }
}
