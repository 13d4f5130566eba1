/**
 * One node's HyDFS storage: content-addressed chunks plus, per file, an append-only manifest
 * of operations. Every write is crash-safe:
 * - a chunk is written to a temp file, fdatasync'ed, then renamed into place (a crash leaves no
 *   partial chunk under its id);
 * - an operation is one JSON line appended to the file's manifest and fdatasync'ed before the
 *   call returns; a torn last line from a crash is cut off on the next load;
 * - a merge rewrites a manifest through temp + fsync + rename;
 * - a delete writes a tombstone (temp + fsync + rename) before it removes the copy.
 * An append therefore costs O(its own size); nothing is rewritten or held whole in memory.
 *
 * Tombstones: a deleted name keeps one small file in tombstones/ holding `deletedAtMs`, the
 * "floor" of the name: every op with tsMs <= floor belongs to a deleted generation of the file
 * and is never stored here again, whichever peer offers it (merge, adopt, hand-over, read repair).
 * A later create of the name is a new generation: its op is stamped by its coordinator after the
 * delete, so its tsMs is above the floor and it is accepted, while a stale pre-delete copy on a
 * replica that missed the delete stays dead. That is how a create "clears" a tombstone: the name
 * is live again, but the floor stays so stale copies can never merge back into the new file.
 * Invariant: no copy in this store holds an op at or below its name's floor.
 *
 * Chunk GC (collectChunks): a chunk file is unlinked only when no manifest on disk references it,
 * no write in progress on this node has pinned it (pinChunks) and its mtime is older than a grace
 * period. putChunk refreshes the mtime of a chunk it already has, so the age is "time since this
 * node last received the chunk" and covers a replica that got a chunk by PUT and whose op is still
 * on its way (no in-memory pin can span those two requests, nor a restart). The reference scan and
 * the unlinks run synchronously, so no op can be applied between them; and create/append/
 * replaceOps check that every chunk exists before an op is written, so a manifest never points
 * to a chunk GC removed: the worst a too-short grace does is fail that write on this replica.
 *
 * Retention: tombstones are kept forever. The cost, per deleted name, on every node that learned
 * the delete (its replicas, and best effort every other ring node): one file of about 100 bytes
 * plus the encoded name in tombstones/, and one map entry (the name and a number) in memory,
 * all loaded at start; a million deleted names cost about 200 MB of disk and memory per node.
 * An expiry would let a replica that was down longer than the retention bring a deleted file (or
 * its old ops into a re-created one) back, which is the failure tombstones exist for. A
 * tombstone's time comes from the wire and is bounded by the receiver's clock plus
 * MAX_CLOCK_SKEW_MS (node.ts), so one can block a create of its name for at most that long.
 *
 * Duplicates: a (clientId, seq) names one operation's content for good. A retry with the same
 * content is a no-op ("duplicate"); one with other content is a conflict, reported with the op
 * already stored, and nothing is written (sameContent, manifest.ts).
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, utimesSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CHUNK_BYTES, FILE_MANIFEST_MAX_BYTES } from "./limits.ts";
import { type AppendOp, type ChunkRef, canonicalOrder, encodeOpLine, opKey, opsAfter, parseOpLines, sameContent } from "./manifest.ts";
import type { AcceptorState } from "./create_decree.ts";
import { decodeNameFromDisk, encodeNameForDisk, validateRemoteName } from "./names.ts";

export { CHUNK_BYTES };

const CHUNK_ID = /^[0-9a-f]{64}$/;

export function chunkIdOf(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

/** What one collectChunks pass did. */
export interface ChunkGcResult {
  /** Chunk files unlinked. */
  deleted: number;
  /** Their bytes. */
  bytesFreed: number;
  /** Unreferenced chunks kept: younger than the grace period, or pinned. */
  kept: number;
  /** True when the pass stopped at maxDeletes; the rest goes in a later pass. */
  truncated: boolean;
}

/**
 * `duplicate`: this (clientId, seq) is stored with the same content (a retry; nothing written).
 * `conflict`: it is stored with other content, `stored` (nothing written). `manifest_full`: the
 * file's manifest would pass FILE_MANIFEST_MAX_BYTES.
 */
export type AppendResult = "applied" | "duplicate" | "no_such_file" | "manifest_full" | { conflict: AppendOp } | { missingChunks: string[] };

/**
 * `deleted_later`: a create whose timestamp is not after the name's tombstone (coordinator clocks
 * disagree). `duplicate` and `conflict` as for append, about the file's create.
 */
export type CreateResult = "created" | "duplicate" | "exists" | "deleted_later" | { conflict: AppendOp } | { missingChunks: string[] };

export class FileStore {
  readonly root: string;
  private readonly chunkDir: string;
  private readonly fileDir: string;
  private readonly tmpDir: string;
  private readonly tombDir: string;
  /** Acceptor state of the create decree (create_decree.ts), one small file per name being created. */
  private readonly decreeDir: string;
  /**
   * Every decree state on disk, by name (loaded at start, kept in step by setDecree and
   * clearDecree), so prepares, accepts, creates and merges touch the disk only when they change it.
   */
  private readonly decrees = new Map<string, AcceptorState>();
  /** Tombstones by name: the deletedAtMs floor (all loaded at start; one small file each). */
  private readonly tombstones = new Map<string, number>();
  /** Loaded manifests (arrival order on this replica), by file name. */
  private readonly cache = new Map<string, AppendOp[]>();
  /** The op under each opKey per loaded file, so the idempotence check of an append is O(1), not O(ops). */
  private readonly keys = new Map<string, Map<string, AppendOp>>();
  private tmpCounter = 0;
  /** Chunk ids pinned by writes and adopts in progress on this node, with a count per id. */
  private readonly pins = new Map<string, number>();

  constructor(root: string) {
    this.root = root;
    this.chunkDir = join(root, "chunks");
    this.fileDir = join(root, "files");
    this.tmpDir = join(root, "tmp");
    this.tombDir = join(root, "tombstones");
    this.decreeDir = join(root, "decrees");
    for (const d of [this.chunkDir, this.fileDir, this.tmpDir, this.tombDir, this.decreeDir]) mkdirSync(d, { recursive: true });
    // Temp files are only ever half-written leftovers of a crash.
    for (const f of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, f), { force: true, recursive: true });
    this.loadTombstones();
    this.loadDecrees();
  }

  // ---- chunks --------------------------------------------------------------------------------

  chunkPath(id: string): string {
    if (!CHUNK_ID.test(id)) throw new Error(`chunk id ${JSON.stringify(id)}: expected 64 hex digits`);
    return join(this.chunkDir, id.slice(0, 2), id);
  }

  hasChunk(id: string): boolean {
    return existsSync(this.chunkPath(id));
  }

  missingChunks(chunks: ChunkRef[]): string[] {
    return [...new Set(chunks.map((c) => c.id))].filter((id) => !this.hasChunk(id));
  }

  /** Store bytes under their SHA-256; `expectedId` (from a peer) must match. */
  putChunk(bytes: Uint8Array, expectedId?: string): ChunkRef {
    const id = chunkIdOf(bytes);
    if (expectedId !== undefined && expectedId !== id) throw new Error(`chunk content does not match its id ${expectedId} (got ${id})`);
    const path = this.chunkPath(id);
    if (!existsSync(path)) {
      mkdirSync(join(this.chunkDir, id.slice(0, 2)), { recursive: true });
      this.writeDurably(path, bytes);
    } else {
      // Chunk GC judges age by mtime: a chunk stored again (an unreferenced leftover that a new
      // write reuses) must look new, or GC could take it before that write's op arrives.
      const now = new Date();
      utimesSync(path, now, now);
    }
    return { id, size: bytes.length };
  }

  /**
   * Keep these chunks from chunk GC until the returned release is called (once; more calls are
   * no-ops). For a write or adopt between storing or finding its chunks and applying its op.
   */
  pinChunks(ids: Iterable<string>): () => void {
    const list = [...ids];
    for (const id of list) this.pins.set(id, (this.pins.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const id of list) {
        const n = (this.pins.get(id) ?? 1) - 1;
        if (n <= 0) this.pins.delete(id);
        else this.pins.set(id, n);
      }
    };
  }

  /** Chunk ids referenced by any manifest of this store, on disk or loaded. */
  private referencedChunks(): Set<string> {
    const refs = new Set<string>();
    for (const ops of this.cache.values()) for (const op of ops) for (const c of op.chunks) refs.add(c.id);
    // Every manifest on disk counts, also one list() would skip (a folder whose name cannot be
    // read): GC must never judge a chunk unreferenced because it failed to read a reference.
    for (const entry of readdirSync(this.fileDir)) {
      const path = join(this.fileDir, entry, "manifest.jsonl");
      if (!existsSync(path)) continue;
      const name = decodeNameFromDisk(entry);
      if (name !== undefined && this.cache.has(name)) continue;
      // Errors propagate: the pass stops and deletes nothing rather than guess.
      for (const op of parseOpLines(readFileSync(path, "utf8")).ops) for (const c of op.chunks) refs.add(c.id);
    }
    return refs;
  }

  /**
   * Unlink chunk files that no manifest references, no write in progress pinned and whose mtime
   * is at least `graceMs` before `nowMs`; at most `maxDeletes` per call, so a pass over a huge
   * store stays short (the rest goes in the next pass). Synchronous on purpose: no op can be
   * applied between the reference scan and the unlinks. Each unlink is atomic, so a crash
   * mid-pass leaves only unreferenced chunks behind, for the next pass.
   */
  collectChunks(opts: { nowMs: number; graceMs: number; maxDeletes: number }): ChunkGcResult {
    const result: ChunkGcResult = { deleted: 0, bytesFreed: 0, kept: 0, truncated: false };
    const refs = this.referencedChunks();
    for (const sub of readdirSync(this.chunkDir)) {
      const dir = join(this.chunkDir, sub);
      if (!statSync(dir).isDirectory()) continue;
      for (const id of readdirSync(dir)) {
        // Only files this store names as chunks; anything else here is left alone.
        if (!CHUNK_ID.test(id) || id.slice(0, 2) !== sub || refs.has(id)) continue;
        const path = join(dir, id);
        const st = statSync(path);
        if (this.pins.has(id) || opts.nowMs - st.mtimeMs < opts.graceMs) {
          result.kept++;
          continue;
        }
        if (result.deleted >= opts.maxDeletes) {
          result.truncated = true;
          return result;
        }
        unlinkSync(path);
        result.deleted++;
        result.bytesFreed += st.size;
      }
    }
    return result;
  }

  readChunk(id: string): Uint8Array {
    return readFileSync(this.chunkPath(id));
  }

  chunkFile(id: string): ReturnType<typeof Bun.file> {
    return Bun.file(this.chunkPath(id));
  }

  /** temp file, fdatasync, rename, fsync of the directory: all or nothing under `path`. */
  private writeDurably(path: string, bytes: Uint8Array | string): void {
    const tmp = join(this.tmpDir, `${process.pid}-${++this.tmpCounter}`);
    const fd = openSync(tmp, "w");
    try {
      writeAll(fd, bytes);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    fsyncDir(join(path, ".."));
  }

  // ---- files ---------------------------------------------------------------------------------

  private dirOf(name: string): string {
    return join(this.fileDir, encodeNameForDisk(name));
  }

  exists(name: string): boolean {
    return this.cache.has(name) || existsSync(join(this.dirOf(name), "manifest.jsonl"));
  }

  /** Ops of a file in this replica's arrival order, or undefined when it has no copy. */
  ops(name: string): AppendOp[] | undefined {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const path = join(this.dirOf(name), "manifest.jsonl");
    if (!existsSync(path)) return undefined;
    const text = readFileSync(path, "utf8");
    const { ops, validBytes } = parseOpLines(text);
    if (validBytes < Buffer.byteLength(text)) truncateSync(path, validBytes);
    this.remember(name, ops);
    return ops;
  }

  private remember(name: string, ops: AppendOp[]): void {
    this.cache.set(name, ops);
    this.keys.set(name, new Map(ops.map((o) => [opKey(o), o])));
  }

  /** The file as this replica would serve it: canonical order of its ops. */
  view(name: string): AppendOp[] | undefined {
    const ops = this.ops(name);
    return ops && canonicalOrder(ops);
  }

  /** Exclusive create with the first operation (the initial content). */
  create(name: string, op: AppendOp): CreateResult {
    // A create after a delete is a new generation and must be stamped after the tombstone.
    const floor = this.tombstones.get(name);
    if (floor !== undefined && op.tsMs <= floor) return "deleted_later";
    if (this.exists(name)) {
      const existing = this.ops(name)!.find((o) => o.kind === "create");
      // The same create retried (same client, sequence and content) is not a conflict; the
      // same client and sequence with other content is.
      if (!existing || opKey(existing) !== opKey(op)) return "exists";
      return sameContent(existing, op) ? "duplicate" : { conflict: existing };
    }
    const missing = this.missingChunks(op.chunks);
    if (missing.length > 0) return { missingChunks: missing };
    const dir = this.dirOf(name);
    mkdirSync(dir, { recursive: true });
    this.writeDurably(join(dir, "name"), name);
    this.remember(name, []);
    this.appendLine(name, op, this.cache.get(name)!);
    this.clearDecree(name);
    return "created";
  }

  /** Apply one append; a retry of an applied (client, seq) is a no-op. */
  append(name: string, op: AppendOp): AppendResult {
    const ops = this.ops(name);
    if (!ops) return "no_such_file";
    // An op of a deleted generation (stamped before the tombstone) has no file to go to.
    const floor = this.tombstones.get(name);
    if (floor !== undefined && op.tsMs <= floor) return "no_such_file";
    const stored = this.keys.get(name)!.get(opKey(op));
    // The very same attempt (a merge brought it here first) is this write, not a retry of it.
    if (stored) return stored.opId === op.opId ? "applied" : sameContent(stored, op) ? "duplicate" : { conflict: stored };
    const missing = this.missingChunks(op.chunks);
    if (missing.length > 0) return { missingChunks: missing };
    if (this.manifestBytes(name) + Buffer.byteLength(encodeOpLine(op)) > FILE_MANIFEST_MAX_BYTES) return "manifest_full";
    this.appendLine(name, op, ops);
    return "applied";
  }

  /** Bytes of the file's manifest on disk (0 when it has none). */
  manifestBytes(name: string): number {
    try {
      return statSync(join(this.dirOf(name), "manifest.jsonl")).size;
    } catch {
      return 0;
    }
  }

  /**
   * One line, all of it or none: a short or failed write (a full disk) is cut back off before
   * the error propagates, so no torn fragment can end up in the middle of the manifest.
   */
  private appendLine(name: string, op: AppendOp, ops: AppendOp[]): void {
    const fd = openSync(join(this.dirOf(name), "manifest.jsonl"), "a");
    const sizeBefore = fstatSync(fd).size;
    try {
      writeAll(fd, encodeOpLine(op));
      fdatasyncSync(fd);
    } catch (err) {
      try {
        ftruncateSync(fd, sizeBefore);
      } catch {}
      throw err;
    } finally {
      closeSync(fd);
    }
    ops.push(op);
    this.keys.get(name)?.set(opKey(op), op);
  }

  /**
   * Adopt a merged op list (a superset of what this replica has): the manifest is rewritten in
   * canonical order, so after a merge the replicas' manifests are byte-identical too. Ops at or
   * below the name's tombstone are dropped first (a stale replica's copy never comes back); when
   * none remain the copy is removed. Returns the ops now stored (empty when none).
   */
  replaceOps(name: string, mergedIn: AppendOp[]): AppendOp[] {
    const merged = opsAfter(mergedIn, this.tombstones.get(name));
    if (merged.length === 0) {
      this.delete(name);
      return [];
    }
    const missing = this.missingChunks(merged.flatMap((o) => o.chunks));
    if (missing.length > 0) throw new Error(`cannot adopt manifest of ${name}: ${missing.length} chunks missing`);
    const dir = this.dirOf(name);
    mkdirSync(dir, { recursive: true });
    // Rewritten every time: a crash during a create may have left it empty.
    this.writeDurably(join(dir, "name"), name);
    const ordered = canonicalOrder(merged);
    this.writeDurably(join(dir, "manifest.jsonl"), ordered.map(encodeOpLine).join(""));
    this.remember(name, ordered);
    if (ordered[0]?.kind === "create") this.clearDecree(name);
    return ordered;
  }

  // ---- the create decree ---------------------------------------------------------------------

  /**
   * This replica's acceptor state for the create of `name` ({} when it took part in none). It is
   * written durably before the replica answers (setDecree): Paxos is safe across crashes only if
   * a promise or an acceptance, once sent, is never forgotten while it matters.
   */
  decree(name: string): AcceptorState {
    return this.decrees.get(name) ?? {};
  }

  setDecree(name: string, state: AcceptorState): void {
    this.writeDurably(join(this.decreeDir, encodeNameForDisk(name)), JSON.stringify({ name, state }));
    this.decrees.set(name, state);
  }

  private loadDecrees(): void {
    for (const entry of readdirSync(this.decreeDir)) {
      try {
        const saved = JSON.parse(readFileSync(join(this.decreeDir, entry), "utf8")) as { name: string; state: AcceptorState };
        if (encodeNameForDisk(validateRemoteName(saved.name)) === entry) this.decrees.set(saved.name, saved.state);
      } catch {
        // Written by temp file and rename, so never torn; unreadable means tampered: start over.
      }
    }
  }

  /**
   * Forget the decree once the chosen create is stored here: from then on this replica answers
   * every prepare and accept with its copy's create ("decided"), which no ballot can change.
   */
  private clearDecree(name: string): void {
    if (this.decrees.delete(name)) rmSync(join(this.decreeDir, encodeNameForDisk(name)), { force: true });
  }

  // ---- tombstones ----------------------------------------------------------------------------

  /** The name's tombstone floor (deletedAtMs), or undefined when it was never deleted here. */
  deletedAt(name: string): number | undefined {
    return this.tombstones.get(name);
  }

  /**
   * A delete on this replica: the tombstone's floor is the latest of `atMs` (the coordinator's
   * clock), any earlier floor and every op this copy holds, so no op of the deleted file survives
   * even when coordinators' clocks disagree. The tombstone is durable before the copy goes: a
   * crash in between leaves a copy that the next start drops (loadTombstones).
   */
  deleteFile(name: string, atMs: number): { hadCopy: boolean; deletedAtMs: number } {
    const ops = this.ops(name);
    let floor = Math.max(atMs, this.tombstones.get(name) ?? 0);
    for (const op of ops ?? []) floor = Math.max(floor, op.tsMs);
    this.writeTombstone(name, floor);
    if (ops) this.delete(name);
    return { hadCopy: ops !== undefined, deletedAtMs: floor };
  }

  /**
   * A tombstone learned from a peer (merge): the floor only ever rises, and ops of this copy at
   * or below it are dropped. Unlike deleteFile, ops stamped after it (a re-created file) stay.
   */
  applyTombstone(name: string, atMs: number): void {
    const current = this.tombstones.get(name);
    if (current === undefined || atMs > current) this.writeTombstone(name, atMs);
    this.dropDeadOps(name);
  }

  private dropDeadOps(name: string): void {
    const ops = this.ops(name);
    if (!ops) return;
    const live = opsAfter(ops, this.tombstones.get(name));
    if (live.length < ops.length) this.replaceOps(name, live);
  }

  private writeTombstone(name: string, deletedAtMs: number): void {
    if (!Number.isSafeInteger(deletedAtMs) || deletedAtMs < 0) throw new Error(`tombstone of ${name}: deletedAtMs ${deletedAtMs}: expected a non-negative integer of milliseconds`);
    this.writeDurably(join(this.tombDir, encodeNameForDisk(name)), JSON.stringify({ name, deletedAtMs }));
    this.tombstones.set(name, deletedAtMs);
  }

  /** Read every tombstone and drop what a crash mid-delete left of the deleted copies. */
  private loadTombstones(): void {
    for (const entry of readdirSync(this.tombDir)) {
      let name: string;
      let deletedAtMs: unknown;
      try {
        ({ name, deletedAtMs } = JSON.parse(readFileSync(join(this.tombDir, entry), "utf8")));
        if (encodeNameForDisk(validateRemoteName(name)) !== entry) continue;
      } catch {
        // Not a tombstone this store wrote (they are renamed into place whole): leave it alone.
        continue;
      }
      if (typeof deletedAtMs !== "number" || !Number.isSafeInteger(deletedAtMs) || deletedAtMs < 0) continue;
      this.tombstones.set(name, deletedAtMs);
      this.dropDeadOps(name);
    }
  }

  /**
   * Remove this node's copy without a tombstone (hand-over GC, an aborted create); its chunks
   * stay until a chunk GC, they may be shared.
   */
  delete(name: string): void {
    rmSync(this.dirOf(name), { recursive: true, force: true });
    this.cache.delete(name);
    this.keys.delete(name);
  }

  /** Names of all files this node holds. */
  list(): string[] {
    const names: string[] = [];
    for (const entry of readdirSync(this.fileDir)) {
      const dir = join(this.fileDir, entry);
      if (!existsSync(join(dir, "manifest.jsonl"))) continue;
      try {
        names.push(decodeNameFromDisk(entry) ?? readFileSync(join(dir, "name"), "utf8"));
      } catch {
        // Not a folder this store made: leave it alone rather than fail every listing.
      }
    }
    return names.sort();
  }

  /** Bytes stored in chunks (shared chunks counted once). */
  chunkBytes(): number {
    let total = 0;
    for (const sub of readdirSync(this.chunkDir)) {
      const dir = join(this.chunkDir, sub);
      if (!statSync(dir).isDirectory()) continue;
      for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
    }
    return total;
  }
}

/** writeSync may write less than asked (a full disk, a signal): loop until all is written. */
function writeAll(fd: number, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  let off = 0;
  while (off < bytes.length) {
    const n = writeSync(fd, bytes, off, bytes.length - off);
    if (n <= 0) throw new Error("write made no progress");
    off += n;
  }
}

/** fsync a directory so a rename into it survives a power loss. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Cut a byte stream into chunks of CHUNK_BYTES and hand each to `sink` as it fills, so a file of
 * any size passes with one chunk in memory. Returns the chunk list and total size.
 */
export async function chunkStream(
  stream: ReadableStream<Uint8Array> | null,
  sink: (chunk: Uint8Array) => Promise<ChunkRef>,
  maxBytes: number,
): Promise<{ chunks: ChunkRef[]; size: number }> {
  const chunks: ChunkRef[] = [];
  let size = 0;
  if (!stream) return { chunks, size };
  let buf = new Uint8Array(CHUNK_BYTES);
  let fill = 0;
  for await (const piece of stream) {
    size += piece.length;
    if (size > maxBytes) throw new TooLarge(`body over the limit of ${maxBytes} bytes`);
    let off = 0;
    while (off < piece.length) {
      const n = Math.min(piece.length - off, CHUNK_BYTES - fill);
      buf.set(piece.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === CHUNK_BYTES) {
        chunks.push(await sink(buf));
        buf = new Uint8Array(CHUNK_BYTES);
        fill = 0;
      }
    }
  }
  if (fill > 0) chunks.push(await sink(buf.subarray(0, fill)));
  return { chunks, size };
}

export class TooLarge extends Error {}
