/**
 * A HyDFS file is a manifest: the log of its append operations, each naming content-addressed
 * chunks (docs/ARCHITECTURE.md §3). Replicas may receive ops in different orders, miss some, or receive a
 * retry twice; every replica nevertheless computes the same file from the same SET of ops with
 * canonicalOrder, which is what makes merged replicas byte-identical (guarantee ii), retries
 * idempotent (iv) and each client's appends ordered (i).
 *
 * On disk a manifest is one JSON line per op (encodeOpLine), appended and synced one at a time,
 * so a crash can only tear the last line; parseOpLines drops that line and reports where the
 * valid prefix ends.
 */
import { CHUNK_BYTES, MAX_CLIENT_ID_CHARS, MAX_OP_BYTES, MAX_OP_ID_CHARS } from "./limits.ts";
import { describeValue } from "./names.ts";

export interface ChunkRef {
  /** Hex SHA-256 of the chunk bytes. */
  id: string;
  size: number;
}

export interface AppendOp {
  /** Unique per attempt (a retry through another coordinator gets a new one). */
  opId: string;
  /** Stable id of the appending user (docs/ARCHITECTURE.md §3), not of one process. */
  clientId: string;
  /** The client's own counter; (clientId, seq) identifies an append across retries. */
  seq: number;
  /** Coordinator's wall clock when it accepted the op; only an ordering hint between clients. */
  tsMs: number;
  chunks: ChunkRef[];
  /** Bytes this op adds: the sum of its chunk sizes. */
  size: number;
  kind: "create" | "append";
}

/** Identity for idempotence: a retried append with the same (clientId, seq) is applied once. */
export function opKey(op: Pick<AppendOp, "clientId" | "seq">): string {
  // seq is an integer (no "#"), so splitting at the last "#" is unambiguous whatever the client id.
  return `${op.clientId}#${op.seq}`;
}

/**
 * Digest of what an op writes: its kind and its chunk list (ids are SHA-256 of the bytes, and
 * one body is always cut into the same chunks), so two ops have equal digests exactly when
 * they write the same bytes the same way. A retry of a (clientId, seq) must have the digest of
 * the op already stored under it; other content is a reuse of the pair, refused (409).
 */
export function opContentDigest(op: Pick<AppendOp, "kind" | "size" | "chunks">): string {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(`${op.kind} ${op.size}\n`);
  for (const c of op.chunks) hasher.update(`${c.id} ${c.size}\n`);
  return hasher.digest("hex");
}

/** Whether two ops write the same content (kind, size and chunks), whatever their ids and times. */
export function sameContent(a: Pick<AppendOp, "kind" | "size" | "chunks">, b: Pick<AppendOp, "kind" | "size" | "chunks">): boolean {
  if (a.kind !== b.kind || a.size !== b.size || a.chunks.length !== b.chunks.length) return false;
  return a.chunks.every((c, i) => c.id === b.chunks[i]!.id && c.size === b.chunks[i]!.size);
}

/** "append of 12 bytes, content 0123abcd4567" for messages about an op's content. */
export function describeContent(op: Pick<AppendOp, "kind" | "size" | "chunks">): string {
  return `${op.kind} of ${op.size} bytes, content ${opContentDigest(op).slice(0, 16)}`;
}

const CHUNK_ID = /^[0-9a-f]{64}$/;

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Check that `value` is a well-formed AppendOp and return a copy holding only its known fields
 * (unknown fields are dropped, so a newer writer's extra fields do not break an older reader).
 * `where` starts the error message, e.g. "manifest line 3". Every number is bounded (limits.ts):
 * ids by length, the size by MAX_OP_BYTES, each chunk by CHUNK_BYTES, and the chunk count is the
 * one an upload of `size` bytes is cut into, ceil(size / CHUNK_BYTES). Timestamps are bounded
 * separately, against the receiving node's clock (checkWireTime), since a manifest read from
 * disk is checked here too.
 */
export function validateAppendOp(value: unknown, where = "append op"): AppendOp {
  const bad = (field: string, got: unknown, expected: string): Error => new Error(`${where}: ${field} ${describeValue(got)}: expected ${expected}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("value", value, "an object");
  const v = value as Record<string, unknown>;
  const { opId, clientId, seq, tsMs, chunks, size, kind } = v;
  if (typeof opId !== "string" || opId.length === 0) throw bad("opId", opId, "a non-empty string");
  if (opId.length > MAX_OP_ID_CHARS) throw bad("opId", opId, `at most ${MAX_OP_ID_CHARS} characters, got ${opId.length}`);
  if (typeof clientId !== "string" || clientId.length === 0) throw bad("clientId", clientId, "a non-empty string");
  if (clientId.length > MAX_CLIENT_ID_CHARS) throw bad("clientId", clientId, `at most ${MAX_CLIENT_ID_CHARS} characters, got ${clientId.length}`);
  if (!isCount(seq)) throw bad("seq", seq, "a non-negative integer");
  if (!isCount(tsMs)) throw bad("tsMs", tsMs, "a non-negative integer of milliseconds");
  if (kind !== "create" && kind !== "append") throw bad("kind", kind, '"create" or "append"');
  if (!Array.isArray(chunks)) throw bad("chunks", chunks, "an array of {id, size}");
  if (!isCount(size)) throw bad("size", size, "a non-negative integer of bytes");
  if (size > MAX_OP_BYTES) throw bad("size", size, `at most ${MAX_OP_BYTES} bytes (MAX_OP_BYTES)`);
  // Checked before the chunks are looked at, so a huge list costs nothing.
  const wantChunks = Math.ceil(size / CHUNK_BYTES);
  if (chunks.length !== wantChunks) {
    throw new Error(`${where}: chunks: ${chunks.length} chunks for size ${size}: expected ${wantChunks} (an upload is cut every ${CHUNK_BYTES} bytes)`);
  }
  const refs: ChunkRef[] = [];
  let sum = 0;
  for (const [i, c] of chunks.entries()) {
    if (typeof c !== "object" || c === null || Array.isArray(c)) throw bad(`chunks[${i}]`, c, "an object {id, size}");
    const { id, size: chunkSize } = c as Record<string, unknown>;
    if (typeof id !== "string" || !CHUNK_ID.test(id)) throw bad(`chunks[${i}].id`, id, "64 lowercase hex digits");
    if (!isCount(chunkSize)) throw bad(`chunks[${i}].size`, chunkSize, "a non-negative integer of bytes");
    if (chunkSize < 1 || chunkSize > CHUNK_BYTES) throw bad(`chunks[${i}].size`, chunkSize, `1 to ${CHUNK_BYTES} bytes (CHUNK_BYTES)`);
    refs.push({ id, size: chunkSize });
    sum += chunkSize;
  }
  // A size that disagrees with the chunks would make offsets and `ls` sizes lie.
  if (size !== sum) throw bad("size", size, `the sum of the chunk sizes, ${sum}`);
  return { opId, clientId, seq, tsMs, chunks: refs, size, kind };
}

/** Code-unit order: never localeCompare, which could differ between replicas. */
function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Which of two copies of one op (same opKey) or of two creates survives: smallest (tsMs, opId).
 * Copies equal on both are compared by their encoded line, so the winner never depends on input
 * order even when a buggy peer sends two different bodies under one opId.
 */
function preferCopy(a: AppendOp, b: AppendOp): number {
  if (a.tsMs !== b.tsMs) return a.tsMs - b.tsMs;
  const byId = cmpStr(a.opId, b.opId);
  if (byId !== 0) return byId;
  return cmpStr(JSON.stringify(encodeFields(a)), JSON.stringify(encodeFields(b)));
}

/** Order of the non-create ops before per-client order is imposed. */
function compareRest(a: AppendOp, b: AppendOp): number {
  if (a.tsMs !== b.tsMs) return a.tsMs - b.tsMs;
  const byClient = cmpStr(a.clientId, b.clientId);
  if (byClient !== 0) return byClient;
  if (a.seq !== b.seq) return a.seq - b.seq;
  return cmpStr(a.opId, b.opId);
}

/**
 * The order every replica computes from the same set of ops, whatever the input order:
 * 1. one op per opKey, the copy with the smallest (tsMs, opId);
 * 2. the create first (of several creates only the smallest (tsMs, opId) survives: create is
 *    exclusive, so the others were never acknowledged);
 * 3. the rest by (tsMs, clientId, seq, opId);
 * 4. each client's ops re-dealt into the positions that client occupies, in seq order, because
 *    coordinators' clocks disagree and a later seq may carry an earlier timestamp.
 */
export function canonicalOrder(ops: readonly AppendOp[]): AppendOp[] {
  const byKey = new Map<string, AppendOp>();
  for (const op of ops) {
    const key = opKey(op);
    const seen = byKey.get(key);
    if (seen === undefined || preferCopy(op, seen) < 0) byKey.set(key, op);
  }
  let create: AppendOp | undefined;
  const rest: AppendOp[] = [];
  for (const op of byKey.values()) {
    if (op.kind !== "create") rest.push(op);
    else if (create === undefined || preferCopy(op, create) < 0) create = op;
  }
  rest.sort(compareRest);

  const positionsByClient = new Map<string, number[]>();
  for (const [i, op] of rest.entries()) {
    const positions = positionsByClient.get(op.clientId);
    if (positions) positions.push(i);
    else positionsByClient.set(op.clientId, [i]);
  }
  const out = rest.slice();
  for (const positions of positionsByClient.values()) {
    // After step 1 a client's seqs are distinct, so this order is total.
    const mine = positions.map((p) => rest[p]!).sort((a, b) => a.seq - b.seq);
    for (const [j, p] of positions.entries()) out[p] = mine[j]!;
  }
  return create === undefined ? out : [create, ...out];
}

/** Canonical order of the union of replicas' op lists. */
export function mergeManifests(...lists: readonly (readonly AppendOp[])[]): AppendOp[] {
  return canonicalOrder(lists.flat());
}

/** Ops that survive a tombstone: those stamped after it (all of them when there is none). */
export function opsAfter(ops: readonly AppendOp[], floor: number | undefined): AppendOp[] {
  return floor === undefined ? [...ops] : ops.filter((o) => o.tsMs > floor);
}

/** The newest tombstone (deletedAtMs) among replicas' answers, or undefined when none has one. */
export function newestFloor(answers: readonly { deletedAtMs?: number | undefined }[]): number | undefined {
  let floor: number | undefined;
  for (const a of answers) if (a.deletedAtMs !== undefined && (floor === undefined || a.deletedAtMs > floor)) floor = a.deletedAtMs;
  return floor;
}

/**
 * The file that replicas' op lists make together, given the newest tombstone `floor`: the
 * canonical order of their union without every op stamped at or before the floor, or undefined
 * when there is no file. Without a tombstone any copy is a file. With one, the name lives again
 * only through a create stamped after it; ops after the floor without such a create are appends
 * a stale replica took after the delete, and they die with it. The filter runs before the union
 * is ordered, because canonicalOrder keeps only the oldest create, which would be the dead one.
 */
export function liveMerge(lists: readonly (readonly AppendOp[])[], floor: number | undefined): AppendOp[] | undefined {
  if (floor === undefined) return lists.length > 0 ? mergeManifests(...lists) : undefined;
  const live = opsAfter(lists.flat(), floor);
  return live.some((o) => o.kind === "create") ? canonicalOrder(live) : undefined;
}

/**
 * Hex SHA-256 over the canonical order's encoded lines. Equal digests mean equal files AND equal
 * future merges: it covers timestamps and op ids, not only keys and chunks, because two replicas
 * holding different copies of one opKey would order a later op differently.
 */
export function manifestDigest(ops: readonly AppendOp[]): string {
  // Bun's native SHA-256 is ~10x noble's, and a long-lived file's manifest can be megabytes.
  const hasher = new Bun.CryptoHasher("sha256");
  for (const op of canonicalOrder(ops)) hasher.update(encodeOpLine(op));
  return hasher.digest("hex");
}

/** Ops of `want` whose opKey `have` lacks (in `want`'s order): what a replica must be sent. */
export function missingOps(have: readonly AppendOp[], want: readonly AppendOp[]): AppendOp[] {
  const present = new Set(have.map(opKey));
  return want.filter((op) => !present.has(opKey(op)));
}

/** Bytes of a file whose ops (already in canonical order, duplicates removed) are `ops`. */
export function totalSize(ops: readonly AppendOp[]): number {
  let total = 0;
  for (const op of ops) total += op.size;
  return total;
}

/** The op's fields in the fixed key order of the manifest file. */
function encodeFields(op: AppendOp): AppendOp {
  return {
    opId: op.opId,
    clientId: op.clientId,
    seq: op.seq,
    tsMs: op.tsMs,
    kind: op.kind,
    size: op.size,
    chunks: op.chunks.map((c) => ({ id: c.id, size: c.size })),
  };
}

/**
 * One manifest line: JSON with a fixed key order, newline-terminated. The op is validated first,
 * because a bad line written now would be a corrupt middle line, fatal, on the next load.
 */
export function encodeOpLine(op: AppendOp): string {
  return `${JSON.stringify(encodeFields(validateAppendOp(op)))}\n`;
}

/**
 * Parse a manifest file. Only newline-terminated lines count; an unterminated tail, or a corrupt
 * last line, is what a crash mid-write leaves and is ignored, and `validBytes` (UTF-8 bytes of the
 * valid prefix) tells the caller where to truncate. A corrupt line followed by others is real
 * corruption and throws, naming the 1-based line number.
 */
export function parseOpLines(text: string): { ops: AppendOp[]; validBytes: number } {
  const ops: AppendOp[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    const end = text.indexOf("\n", start);
    if (end === -1) break;
    lineNo++;
    const line = text.slice(start, end);
    let op: AppendOp;
    try {
      op = validateAppendOp(JSON.parse(line) as unknown, `manifest line ${lineNo}`);
    } catch (err) {
      if (end === text.length - 1) break;
      if (err instanceof SyntaxError) {
        throw new Error(`manifest line ${lineNo}: ${describeValue(line)}: expected one JSON append op per line, only the last may be torn (${err.message})`);
      }
      throw new Error(`${(err as Error).message} (only the last line may be torn)`);
    }
    ops.push(op);
    start = end + 1;
  }
  return { ops, validBytes: Buffer.byteLength(text.slice(0, start), "utf8") };
}
