/**
 * The chunks of one node's HyDFS store: content-addressed files under chunks/<2 hex>/<sha256>,
 * each written to a temp file, fdatasync'ed, then renamed into place (a crash leaves no partial
 * chunk under its id). FileStore (store.ts) owns one and adds the manifests.
 *
 * Chunk GC (FileStore.collectChunks, then ChunkStore.collect): a chunk file is unlinked only when
 * no manifest on disk references it, no write in progress on this node has pinned it (pinChunks)
 * and its mtime is older than a grace period. putChunk refreshes the mtime of a chunk it already has, so the age is "time since this
 * node last received the chunk" and covers a replica that got a chunk by PUT and whose op is still
 * on its way (no in-memory pin can span those two requests, nor a restart). The reference scan and
 * the unlinks run synchronously, so no op can be applied between them; and create/append/
 * replaceOps check that every chunk exists before an op is written, so a manifest never points
 * to a chunk GC removed: the worst a too-short grace does is fail that write on this replica.
 *
 * Two ways in, one durability rule ("a chunk an op line names is durable before that line is"):
 * - putChunk (merges, inline bodies, accepts) is synchronous and returns with the chunk durable:
 *   data fdatasync'ed, renamed, and its directory fsync'ed.
 * - putChunkAsync (the chunks of a streamed upload, pushed several at a time by the coordinator)
 *   writes and fdatasyncs on the runtime's I/O threads, so the event loop goes on receiving the
 *   next chunks, and the disk sees several syncs at once (the journal commits them together).
 *   Its rename is not followed by a directory fsync: the directory is remembered as unsynced,
 *   and syncDirsOf (FileStore calls it before an op line or a rewritten manifest is written) fsyncs
 *   the unsynced directories of that op's chunks. One directory fsync per directory per commit
 *   instead of one per chunk; until then a power loss can only lose a chunk no durable manifest
 *   names yet (garbage, never a hole in a file), and an upload is acknowledged only after its op
 *   is durable at a write quorum, which is after this fsync.
 */
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { CHUNK_BYTES } from "./limits.ts";
import type { ChunkRef } from "./manifest.ts";

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

/** Temp file names are unique per process: pid and this counter. */
let tmpCounter = 0;

/** temp file, fdatasync, rename, fsync of the directory: all or nothing under `path`. */
export function writeDurably(tmpDir: string, path: string, bytes: Uint8Array | string): void {
  const tmp = join(tmpDir, `${process.pid}-${++tmpCounter}`);
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

/**
 * The file system calls of putChunkAsync and syncDirsOf: real by default (realChunkIo); tests
 * inject a fake to count syncs and hold writes in flight.
 */
export interface ChunkIo {
  /** Write `bytes` to a new file at `path` and fdatasync it, off the event loop. */
  writeSynced(path: string, bytes: Uint8Array): Promise<void>;
  rename(from: string, to: string): void;
  fsyncDir(dir: string): void;
}

/**
 * Sizes that go through O_DIRECT: whole 4 KiB blocks (every full chunk; a file's last, partial
 * chunk is written through the page cache). O_DIRECT needs the buffer, offset and length aligned
 * to the device's block; large JS buffers are page-aligned, and anything else (a buffer at an odd
 * address, a file system without O_DIRECT) fails with EINVAL before a byte is written and is
 * written again through the page cache.
 */
const DIRECT_ALIGN_BYTES = 4096;

/**
 * Write all of `bytes` to a new file and fdatasync it. Full chunks skip the page cache (O_DIRECT):
 * measured here, a 4 MiB buffered write of a new file costs about 10 ms of kernel CPU (page
 * allocation and copy), an O_DIRECT one well under 1 ms, and with 3 replicas on 2 cores that CPU
 * was the limit of a create. O_DIRECT does not make the data durable by itself (the device may
 * cache it, and the file's size and blocks are metadata): the fdatasync after it does.
 */
async function writeFileSynced(path: string, bytes: Uint8Array): Promise<void> {
  const direct = bytes.length > 0 && bytes.length % DIRECT_ALIGN_BYTES === 0;
  if (direct) {
    try {
      return await writeWith(path, bytes, fsConstants.O_DIRECT);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
    }
  }
  await writeWith(path, bytes, 0);
}

async function writeWith(path: string, bytes: Uint8Array, extraFlags: number): Promise<void> {
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | extraFlags, 0o644);
  try {
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
      if (bytesWritten <= 0) throw new Error("write made no progress");
      off += bytesWritten;
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

export const realChunkIo: ChunkIo = {
  writeSynced: writeFileSynced,
  rename: renameSync,
  fsyncDir: (dir) => fsyncDir(dir),
};

export class ChunkStore {
  /** Chunk ids pinned by writes and adopts in progress on this node, with a count per id. */
  private readonly pins = new Map<string, number>();
  /** Chunk directories (chunks/<2 hex>) that putChunkAsync renamed into and no fsync covered since. */
  private readonly unsyncedDirs = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly tmpDir: string,
    private readonly io: ChunkIo = realChunkIo,
  ) {
    mkdirSync(dir, { recursive: true });
    // A previous run may have renamed chunks in and died before a commit fsync'ed their
    // directory (the kernel still has the rename; a power loss would not): every existing chunk
    // directory counts as unsynced until its first commit here.
    for (const sub of readdirSync(dir)) if (/^[0-9a-f]{2}$/.test(sub)) this.unsyncedDirs.add(join(dir, sub));
  }

  private subdirOf(id: string): string {
    return join(this.dir, id.slice(0, 2));
  }

  chunkPath(id: string): string {
    if (!CHUNK_ID.test(id)) throw new Error(`chunk id ${JSON.stringify(id)}: expected 64 hex digits`);
    return join(this.dir, id.slice(0, 2), id);
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
      mkdirSync(this.subdirOf(id), { recursive: true });
      writeDurably(this.tmpDir, path, bytes);
    } else {
      this.touch(path);
      // It may be putChunkAsync's, not yet covered by a directory fsync: this call promises durable.
      this.syncDirsOf([id]);
    }
    return { id, size: bytes.length };
  }

  /**
   * putChunk for streamed uploads: hashed here, written and fdatasync'ed on the I/O threads, then
   * renamed; the directory fsync is left to syncDirsOf before the op that names the chunk is
   * written (the file's header says why that is still durable).
   */
  async putChunkAsync(bytes: Uint8Array, expectedId?: string): Promise<ChunkRef> {
    const id = chunkIdOf(bytes);
    if (expectedId !== undefined && expectedId !== id) throw new Error(`chunk content does not match its id ${expectedId} (got ${id})`);
    const path = this.chunkPath(id);
    if (existsSync(path)) {
      this.touch(path);
      return { id, size: bytes.length };
    }
    mkdirSync(this.subdirOf(id), { recursive: true });
    const tmp = join(this.tmpDir, `${process.pid}-${++tmpCounter}`);
    try {
      await this.io.writeSynced(tmp, bytes);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    // Rename and mark in one synchronous step: no one can see the chunk (hasChunk) and find its
    // directory already synced.
    this.io.rename(tmp, path);
    this.unsyncedDirs.add(this.subdirOf(id));
    return { id, size: bytes.length };
  }

  /**
   * fsync the directories of these chunks that a putChunkAsync renamed into since their last
   * fsync (each once). Synchronous, so no rename can slip in between the fsync and the caller's
   * next write.
   */
  syncDirsOf(ids: Iterable<string>): void {
    for (const id of ids) {
      const dir = this.subdirOf(id);
      if (!this.unsyncedDirs.has(dir)) continue;
      this.io.fsyncDir(dir);
      this.unsyncedDirs.delete(dir);
    }
  }

  /** Directories waiting for a syncDirsOf (for tests and metrics). */
  unsyncedDirCount(): number {
    return this.unsyncedDirs.size;
  }

  /**
   * Chunk GC judges age by mtime: a chunk stored again (an unreferenced leftover that a new write
   * reuses) must look new, or GC could take it before that write's op arrives.
   */
  private touch(path: string): void {
    const now = new Date();
    utimesSync(path, now, now);
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

  /**
   * Unlink chunk files that no manifest references, no write in progress pinned and whose mtime
   * is at least `graceMs` before `nowMs` (`refs`: the chunk ids manifests reference); at most `maxDeletes` per call, so a pass over a huge
   * store stays short (the rest goes in the next pass). Synchronous on purpose: no op can be
   * applied between the reference scan and the unlinks. Each unlink is atomic, so a crash
   * mid-pass leaves only unreferenced chunks behind, for the next pass.
   */
  collect(opts: { nowMs: number; graceMs: number; maxDeletes: number }, refs: ReadonlySet<string>): ChunkGcResult {
    const result: ChunkGcResult = { deleted: 0, bytesFreed: 0, kept: 0, truncated: false };
    for (const sub of readdirSync(this.dir)) {
      const dir = join(this.dir, sub);
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

  /** Bytes stored in chunks (shared chunks counted once). */
  chunkBytes(): number {
    let total = 0;
    for (const sub of readdirSync(this.dir)) {
      const dir = join(this.dir, sub);
      if (!statSync(dir).isDirectory()) continue;
      for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
    }
    return total;
  }
}

/** writeSync may write less than asked (a full disk, a signal): loop until all is written. */
export function writeAll(fd: number, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  let off = 0;
  while (off < bytes.length) {
    const n = writeSync(fd, bytes, off, bytes.length - off);
    if (n <= 0) throw new Error("write made no progress");
    off += n;
  }
}

/** fsync a directory so a rename into it survives a power loss. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Cut a byte stream into chunks of CHUNK_BYTES and hand each to `sink` as it fills, so a file of
 * any size passes with one chunk in memory. Returns the chunk list and total size. Each chunk is
 * filled in a buffer of CHUNK_BYTES from `newBuffer` (a fresh one by default; a pool's, so the
 * sink can hand buffers back once it is done with them); the sink owns the one it is given.
 */
export async function chunkStream(
  stream: ReadableStream<Uint8Array> | null,
  sink: (chunk: Uint8Array) => Promise<ChunkRef>,
  maxBytes: number,
  newBuffer: () => Uint8Array = () => new Uint8Array(CHUNK_BYTES),
): Promise<{ chunks: ChunkRef[]; size: number }> {
  const chunks: ChunkRef[] = [];
  let size = 0;
  if (!stream) return { chunks, size };
  let buf = newBuffer();
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
        buf = newBuffer();
        fill = 0;
      }
    }
  }
  if (fill > 0) chunks.push(await sink(buf.subarray(0, fill)));
  return { chunks, size };
}

export class TooLarge extends Error {}
