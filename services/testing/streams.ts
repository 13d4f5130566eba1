/**
 * Test bodies: a stream of `pieces` pieces of `size` bytes (each byte `fill`) that counts what the
 * reader pulled and notes whether it cancelled, so a test can tell a body read within its limit
 * from one buffered whole.
 */
export function countedStream(pieces: number, size: number, fill = 1): { stream: ReadableStream<Uint8Array>; state: { pulled: number; cancelled: boolean } } {
  const state = { pulled: 0, cancelled: false };
  let left = pieces;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left-- <= 0) return controller.close();
      state.pulled += size;
      controller.enqueue(new Uint8Array(size).fill(fill));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}
