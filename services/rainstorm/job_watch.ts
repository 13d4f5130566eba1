/**
 * A job's event streams (NDJSON): the submitter's (POST /jobs) and the watchers' (GET
 * /jobs/:job/events, ctl watch_job). Both end after the job's final event (done, failed,
 * cancelled).
 *
 * The leader keeps each job's last RECENT_EVENTS_MAX events (results included), so a watcher
 * that attaches starts with the recent past. A watcher that reads more slowly than the job
 * produces must not make the leader hold more and more for it: its stream queues at most
 * WATCH_QUEUE_MAX events; past that, events are dropped and, once there is room again, one
 * `dropped` event says how many it missed. The final event always gets through (it may exceed the
 * bound by the note and itself), so a watch always ends. Bun's server pulls from the stream only
 * as the socket takes bytes, so what a stalled watcher costs is this queue plus the kernel's
 * socket buffers (tried on Bun 1.4.4: 200,000 events of 1 KB pushed to a watcher that read
 * nothing: the process stayed at 44 MB RSS; once it read, 10,014 lines reached it, 189,998
 * events counted in its `dropped` notes). The submitter's stream is not bounded
 * this way: it carries every result (as it always has), and its reader is the job's own ctl.
 */
import { admitBounded, type NdjsonStream, ndjsonStream } from "../shared/ndjson_stream.ts";
import { isFinalEvent } from "./client.ts";
import type { JobEvent } from "./model.ts";

/** Events the leader keeps per job for watchers that attach later (results count one per batch). */
export const RECENT_EVENTS_MAX = 200;

/** Events queued for one watcher that does not read; beyond it, events are dropped with a note. */
export const WATCH_QUEUE_MAX = 1000;

const droppedNote = (events: number): JobEvent => ({ event: "dropped", events });

/** One event for a watcher whose queue has `room` places left, after `dropped` it missed (see admitBounded). */
export function admit(ev: JobEvent, room: number, dropped: number): { queue: JobEvent[]; dropped: number } {
  return admitBounded(ev, room, dropped, isFinalEvent(ev), droppedNote);
}

/** A stream of a job's events and the function that feeds it; it ends after a final event or when its reader leaves. */
export type EventStream = NdjsonStream<JobEvent>;

/**
 * An NDJSON stream of job events. `bounded`: a watcher's (at most WATCH_QUEUE_MAX queued, see
 * admit); otherwise every event is queued. `onClose` runs once when it ends either way.
 */
export function eventStream(bounded: boolean, onClose: () => void = () => {}): EventStream {
  return ndjsonStream<JobEvent>({ maxQueued: WATCH_QUEUE_MAX, bounded, noteOf: droppedNote, isFinal: isFinalEvent, onClose });
}
