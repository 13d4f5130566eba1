/**
 * An NDJSON stream a daemon feeds to one reader (a job's watcher, a dashboard page), bounded so a
 * reader that does not read cannot make the daemon hold more and more for it: at most `maxQueued`
 * items wait; past that, items are dropped and, once there is room again, one note (`noteOf`)
 * says how many the reader missed. A final item always gets through (it may exceed the bound by
 * the note and itself) and ends the stream, so a reader always learns the end.
 */

/**
 * One item for a reader whose queue has `room` places left, after `dropped` it missed: what to
 * queue now, and how many are missed after it. The note goes first, so the reader sees where the
 * gap is.
 */
export function admitBounded<T>(item: T, room: number, dropped: number, final: boolean, noteOf: (dropped: number) => T): { queue: T[]; dropped: number } {
  const note = dropped > 0 ? [noteOf(dropped)] : [];
  if (final || room >= note.length + 1) return { queue: [...note, item], dropped: 0 };
  return { queue: [], dropped: dropped + 1 };
}

export interface NdjsonStreamOptions<T> {
  /** Most items queued for a reader that does not read (the stream's high-water mark, in items). */
  maxQueued: number;
  /** false: every item is queued however many wait (a reader that must see everything). */
  bounded: boolean;
  /** The note that stands for `dropped` missed items. */
  noteOf: (dropped: number) => T;
  /** An item after which the stream ends. Default: none. */
  isFinal?: (item: T) => boolean;
  /** Runs once when the stream ends: after a final item, when its reader leaves, or when it breaks. */
  onClose?: () => void;
}

export interface NdjsonStream<T> {
  stream: ReadableStream<Uint8Array>;
  /** Queue one item; false once the stream is over (ended or abandoned by its reader). */
  push: (item: T) => boolean;
}

export function ndjsonStream<T>(opts: NdjsonStreamOptions<T>): NdjsonStream<T> {
  const enc = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  let dropped = 0;
  const close = () => {
    if (!open) return;
    open = false;
    opts.onClose?.();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      cancel: close,
    },
    // Count items, not bytes: the bound is on how many a slow reader can hold back.
    { highWaterMark: opts.maxQueued, size: () => 1 },
  );
  const push = (item: T): boolean => {
    if (!open) return false;
    try {
      const final = opts.isFinal?.(item) ?? false;
      const room = opts.bounded ? (controller.desiredSize ?? 0) : Infinity;
      const admitted = admitBounded(item, room, dropped, final, opts.noteOf);
      dropped = admitted.dropped;
      for (const x of admitted.queue) controller.enqueue(enc.encode(`${JSON.stringify(x)}\n`));
      if (final) {
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
