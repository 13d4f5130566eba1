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
import { isFinalEvent } from "./client.ts";
import type { JobEvent } from "./model.ts";

/** Events the leader keeps per job for watchers that attach later (results count one per batch). */
export const RECENT_EVENTS_MAX = 200;

/** Events queued for one watcher that does not read; beyond it, events are dropped with a note. */
export const WATCH_QUEUE_MAX = 1000;

/**
 * One event for a watcher whose queue has `room` places left, after `dropped` events it missed:
 * what to queue now, and how many are missed after it. The note goes first, so the reader sees
 * where the gap is.
 */
export function admit(ev: JobEvent, room: number, dropped: number): { queue: JobEvent[]; dropped: number } {
  const note: JobEvent[] = dropped > 0 ? [{ event: "dropped", events: dropped }] : [];
  if (isFinalEvent(ev)) return { queue: [...note, ev], dropped: 0 };
  if (room >= note.length + 1) return { queue: [...note, ev], dropped: 0 };
  return { queue: [], dropped: dropped + 1 };
}

/** A stream of a job's events and the function that feeds it; it ends after a final event or when its reader leaves. */
export interface EventStream {
  stream: ReadableStream<Uint8Array>;
  /** Queue one event; false once the stream is over (ended or abandoned by its reader). */
  push: (ev: JobEvent) => boolean;
}

/**
 * An NDJSON stream of job events. `bounded`: a watcher's (at most WATCH_QUEUE_MAX queued, see
 * admit); otherwise every event is queued. `onClose` runs once when it ends either way.
 */
export function eventStream(bounded: boolean, onClose: () => void = () => {}): EventStream {
  const enc = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  let dropped = 0;
  const close = () => {
    if (!open) return;
    open = false;
    onClose();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      cancel: close,
    },
    // Count events, not bytes: the bound is on how many a slow watcher can hold back.
    { highWaterMark: WATCH_QUEUE_MAX, size: () => 1 },
  );
  const push = (ev: JobEvent): boolean => {
    if (!open) return false;
    try {
      const room = bounded ? (controller.desiredSize ?? 0) : Infinity;
      const admitted = admit(ev, room, dropped);
      dropped = admitted.dropped;
      for (const e of admitted.queue) controller.enqueue(enc.encode(`${JSON.stringify(e)}\n`));
      if (isFinalEvent(ev)) {
        controller.close();
        close();
      }
    } catch {
      close();
    }
    return open;
  };
  return { stream, push };
}
