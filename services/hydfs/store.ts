/**
 * One node's HyDFS storage: content-addressed chunks plus, per file, an append-only manifest
 * of operations. Every write is crash-safe:
 * - a chunk is written to a temp file, fdatasync'ed, then renamed into place (a crash leaves no
 *   partial chunk under its id); the directory fsync of a streamed upload's chunks is done once
 *   per directory before the op naming them is written (chunk_store.ts, syncDirsOf);
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
 * Retention: tombstones are kept forever. The cost, per deleted name, on every node that learned
 * the delete (its replicas, and best effort every other ring node): one file of about 100 bytes
 * plus the encoded name in tombstones/, and one map entry (the name and a number) in memory,
 * all loaded at start; a million deleted names cost about 200 MB of disk and memory per node.
 * An expiry would let a replica that was down longer than the retention bring a deleted file (or
 * its old ops into a re-created one) back, which is the failure tombstones exist for. A
 * tombstone's time comes from the wire and is bounded by the receiver's clock plus
 * MAX_CLOCK_SKEW_MS (replica.ts), so one can block a create of its name for at most that long.
 *
 * Duplicates: a (clientId, seq) names one operation's content for good. A retry with the same
 * content is a no-op ("duplicate"); one with other content is a conflict, reported with the op
 * already stored, and nothing is written (sameContent, manifest.ts).
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
} from "node:fs";
import { join } from "node:path";
import { type ChunkGcResult, type ChunkIo, ChunkStore, realChunkIo, writeAll, writeDurably } from "./chunk_store.ts";
import { FILE_MANIFEST_MAX_BYTES } from "./limits.ts";
import { type AppendOp, type ChunkRef, canonicalOrder, encodeOpLine, manifestDigest, opKey, opsAfter, parseOpLines, sameContent } from "./manifest.ts";
import type { AcceptorState } from "./create_decree.ts";
import { decodeNameFromDisk, encodeNameForDisk, validateRemoteName } from "./names.ts";

export { CHUNK_BYTES, type ChunkGcResult, chunkIdOf, chunkStream, TooLarge } from "./chunk_store.ts";

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

/** A copy's manifest digest and whether it holds a create (FileStore.digest). */
export interface CopyDigest {
  digest: string;
  hasCreate: boolean;
}

export class FileStore {
  readonly root: string;
  /** The chunks (chunk_store.ts). */
  readonly chunks: ChunkStore;
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
  /** digest() per file, computed once per change (dropped by remember, appendLine and delete). */
  private readonly digests = new Map<string, CopyDigest>();

  /** `chunkIo`: the file system calls of streamed chunk writes (tests inject a fake). */
  constructor(root: string, chunkIo: ChunkIo = realChunkIo) {
    this.root = root;
    this.fileDir = join(root, "files");
    this.tmpDir = join(root, "tmp");
    this.tombDir = join(root, "tombstones");
    this.decreeDir = join(root, "decrees");
    for (const d of [this.fileDir, this.tmpDir, this.tombDir, this.decreeDir]) mkdirSync(d, { recursive: true });
    // Temp files are only ever half-written leftovers of a crash.
    for (const f of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, f), { force: true, recursive: true });
    this.chunks = new ChunkStore(join(root, "chunks"), this.tmpDir, chunkIo);
    this.loadTombstones();
    this.loadDecrees();
  }

  // ---- chunks (ChunkStore) -------------------------------------------------------------------

  chunkPath(id: string): string {
    return this.chunks.chunkPath(id);
  }
  hasChunk(id: string): boolean {
    return this.chunks.hasChunk(id);
  }
  missingChunks(chunks: ChunkRef[]): string[] {
    return this.chunks.missingChunks(chunks);
  }
  putChunk(bytes: Uint8Array, expectedId?: string): ChunkRef {
    return this.chunks.putChunk(bytes, expectedId);
  }
  putChunkAsync(bytes: Uint8Array, expectedId?: string): Promise<ChunkRef> {
    return this.chunks.putChunkAsync(bytes, expectedId);
  }
  pinChunks(ids: Iterable<string>): () => void {
    return this.chunks.pinChunks(ids);
  }
  readChunk(id: string): Uint8Array {
    return this.chunks.readChunk(id);
  }
  chunkFile(id: string): ReturnType<typeof Bun.file> {
    return this.chunks.chunkFile(id);
  }
  chunkBytes(): number {
    return this.chunks.chunkBytes();
  }

  /** Chunk GC: ChunkStore.collect, with every chunk any manifest of this store references kept. */
  collectChunks(opts: { nowMs: number; graceMs: number; maxDeletes: number }): ChunkGcResult {
    return this.chunks.collect(opts, this.referencedChunks());
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
    this.digests.delete(name);
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
    // The op line is durable below, so the chunks it names must be durable first.
    this.chunks.syncDirsOf(op.chunks.map((c) => c.id));
    const dir = this.dirOf(name);
    mkdirSync(dir, { recursive: true });
    writeDurably(this.tmpDir, join(dir, "name"), name);
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
    this.chunks.syncDirsOf(op.chunks.map((c) => c.id));
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
    this.digests.delete(name);
  }

  /**
   * This copy's manifest digest (manifest.ts manifestDigest) and whether it holds a create, or
   * undefined when there is no copy. Cached until the copy changes, so a background merge of
   * replicas that already agree costs each of them a hash lookup, not a manifest on the wire.
   */
  digest(name: string): CopyDigest | undefined {
    const cached = this.digests.get(name);
    if (cached) return cached;
    const ops = this.ops(name);
    if (!ops) return undefined;
    const d = { digest: manifestDigest(ops), hasCreate: ops.some((o) => o.kind === "create") };
    this.digests.set(name, d);
    return d;
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
    this.chunks.syncDirsOf(merged.flatMap((o) => o.chunks.map((c) => c.id)));
    const dir = this.dirOf(name);
    mkdirSync(dir, { recursive: true });
    // Rewritten every time: a crash during a create may have left it empty.
    writeDurably(this.tmpDir, join(dir, "name"), name);
    const ordered = canonicalOrder(merged);
    writeDurably(this.tmpDir, join(dir, "manifest.jsonl"), ordered.map(encodeOpLine).join(""));
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
    writeDurably(this.tmpDir, join(this.decreeDir, encodeNameForDisk(name)), JSON.stringify({ name, state }));
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
    if (!Number.isSafeInteger(deletedAtMs) || deletedAtMs < 0)
      throw new Error(`tombstone of ${name}: deletedAtMs ${deletedAtMs}: expected a non-negative integer of milliseconds`);
    writeDurably(this.tmpDir, join(this.tombDir, encodeNameForDisk(name)), JSON.stringify({ name, deletedAtMs }));
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
    this.digests.delete(name);
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
}
