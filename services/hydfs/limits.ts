/**
 * Bounds on everything hydfsd takes from the wire, in one place: body sizes (enforced while the
 * body streams, never after reading it whole), the numbers inside an operation, and timestamps.
 *
 * Every ceiling is far above what a correct cluster produces, so only a buggy or hostile caller
 * meets one; what it gets then is a 400 or 413 whose message names the value and the bound.
 * Timestamps are bounded against the receiving node's own clock: a peer's clock may be ahead of
 * ours by at most MAX_CLOCK_SKEW_MS, so nothing stamped "in the future" can be stored, and a
 * tombstone can block a later create of its name for at most that long.
 */

/** Size at which an upload is cut into chunks. Bigger means fewer files, more memory per transfer. */
export const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Largest clock lead of another node accepted in a timestamp from the wire (an op's tsMs, a
 * tombstone's deletedAtMs), ms: anything later than this node's clock plus this is refused
 * (400). Default 30 s, the window of request MACs (AUTH_MAX_SKEW_MS). It must cover the skew
 * between nodes' clocks (NTP keeps them within milliseconds); a node whose clock runs further
 * ahead has its writes and deletes refused by the others until the clocks agree again. A
 * longer allowance lets a forged or misstamped tombstone block creates of its name for longer
 * (a create is refused while it is stamped at or before the tombstone).
 */
export const MAX_CLOCK_SKEW_MS = 30_000;

/**
 * Largest operation (bytes of one create or append): the most `hydfs.max_body_bytes` accepts,
 * 64 GiB. A node's own max_body_bytes bounds what it coordinates; this bounds what any op read
 * from a peer or a manifest may claim (16384 chunks).
 */
export const MAX_OP_BYTES = 64 * 1024 * 1024 * 1024;

/** Longest op id. Coordinators use UUIDs (36 characters). */
export const MAX_OP_ID_CHARS = 128;

/** Longest client id, as `/create` and `/append` accept it (`client=`). */
export const MAX_CLIENT_ID_CHARS = 200;

/**
 * Largest body of a replica write (`/internal/create`, `/internal/append`): one op as JSON, or
 * msgpack of the op and its inline data (at most INLINE_MAX_BYTES, 256 KiB). The largest op,
 * MAX_OP_BYTES in 16384 chunk refs, is about 1.4 MB of JSON. Read with this running bound, so a
 * bigger body is cut off at 2 MiB and never buffered.
 */
export const OP_BODY_MAX_BYTES = 2 * 1024 * 1024;

/**
 * Largest manifest on the wire: a peer's `/internal/manifest` answer and an `/internal/adopt`
 * body (the merged op list), read with this running bound. An op is about 230 bytes of JSON
 * plus 85 per chunk, so this is about 500,000 small appends, or 1.5 million chunks (6 TiB), in
 * one file. Larger means more memory for one merge (a parsed manifest takes several times its
 * JSON size).
 */
export const MANIFEST_MAX_BYTES = 128 * 1024 * 1024;

/**
 * A replica refuses appends to a file whose manifest on disk would pass this (the coordinator
 * answers 413: write to a new file), so every manifest stays readable and mergeable under
 * MANIFEST_MAX_BYTES. The 8 MiB of headroom (about 35,000 ops) is how far replicas' copies may
 * differ and still be merged in one adopt.
 */
export const FILE_MANIFEST_MAX_BYTES = MANIFEST_MAX_BYTES - 8 * 1024 * 1024;

/** An `/internal/adopt` body: the manifest plus the sources and the tombstone. */
export const ADOPT_BODY_MAX_BYTES = MANIFEST_MAX_BYTES + 64 * 1024;

/**
 * Largest small JSON answer read from a peer (a replica's write result, a delete's, an adopt's
 * digest): each is under 1 KiB; anything longer is a broken or hostile peer.
 */
export const SMALL_JSON_MAX_BYTES = 64 * 1024;

/** A timestamp or other number from the wire out of its bounds (maps to HTTP 400). */
export class WireValueError extends Error {
  readonly status = 400;
}

/**
 * Check a timestamp taken from the wire against this node's clock: a non-negative integer of
 * milliseconds not after `nowMs + MAX_CLOCK_SKEW_MS`. Returns it; throws WireValueError naming
 * `what`, the value and the bound.
 */
export function checkWireTime(value: unknown, nowMs: number, what: string, skewMs = MAX_CLOCK_SKEW_MS): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new WireValueError(`${what} ${JSON.stringify(value)}: expected a non-negative integer of milliseconds`);
  }
  if (value > nowMs + skewMs) {
    throw new WireValueError(
      `${what} ${value}: is ${value - nowMs} ms after this node's clock (${nowMs}); expected at most ${skewMs} ms ahead (MAX_CLOCK_SKEW_MS)`,
    );
  }
  return value;
}
