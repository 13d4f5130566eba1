/**
 * Streamed chunk writes (ChunkStore.putChunkAsync) and the batched directory fsyncs
 * (syncDirsOf), with the file system calls counted by a fake ChunkIo: no chunk directory is
 * fsync'ed per chunk, each unsynced directory is fsync'ed once before the op line that names its
 * chunks, and never after that line. The real ChunkIo (O_DIRECT with its page-cache fallback) is
 * checked on real files at the end.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChunkIo, chunkIdOf, ChunkStore, realChunkIo } from "./chunk_store.ts";
import type { AppendOp, ChunkRef } from "./manifest.ts";
import { FileStore } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), "hydfs-chunk-store-test-"));
  dirs.push(dir);
  return dir;
}

/** A ChunkIo that really writes (so renames and reads work) and logs every call in order. */
function countingIo(events: string[], manifestOf?: () => string): ChunkIo {
  return {
    async writeSynced(path, bytes) {
      writeFileSync(path, bytes);
      events.push("write");
    },
    rename(from, to) {
      renameSync(from, to);
      events.push("rename");
    },
    fsyncDir(dir) {
      // How many op lines the manifest holds when the directory is synced.
      events.push(`fsync ${dir.slice(-2)}${manifestOf ? ` at ${lines(manifestOf())} lines` : ""}`);
    },
  };
}

const lines = (path: string) => (existsSync(path) ? readFileSync(path, "utf8").split("\n").length - 1 : 0);

/** Bytes whose chunk id starts with the hex digit pair `prefix` (found by trying). */
function bytesInDir(prefix: string, salt: number): Uint8Array {
  for (let i = 0; ; i++) {
    const b = new TextEncoder().encode(`chunk ${salt} ${i}`);
    if (chunkIdOf(b).startsWith(prefix)) return b;
  }
}

let seqs = 0;
function op(chunks: ChunkRef[], kind: "create" | "append"): AppendOp {
  const seq = ++seqs;
  return { opId: `op-${seq}`, clientId: "c", seq, tsMs: 1000 + seq, chunks, size: chunks.reduce((n, c) => n + c.size, 0), kind };
}

test("streamed chunks: no directory fsync per chunk; one per unsynced directory at syncDirsOf, then none", async () => {
  const root = freshRoot();
  const events: string[] = [];
  const store = new ChunkStore(join(root, "chunks"), root, countingIo(events));
  const a = await store.putChunkAsync(bytesInDir("0a", 1));
  const b = await store.putChunkAsync(bytesInDir("0a", 2));
  const c = await store.putChunkAsync(bytesInDir("0b", 3));
  expect(events).toEqual(["write", "rename", "write", "rename", "write", "rename"]);
  expect(store.unsyncedDirCount()).toBe(2);
  expect([a, b, c].every((r) => store.hasChunk(r.id))).toBe(true);
  events.length = 0;
  store.syncDirsOf([a.id, b.id, c.id]);
  expect(events).toEqual(["fsync 0a", "fsync 0b"]);
  events.length = 0;
  store.syncDirsOf([a.id, b.id, c.id]);
  expect(events).toEqual([]);
  expect(store.unsyncedDirCount()).toBe(0);
});

test("a chunk stored again is only touched; the synchronous putChunk syncs a directory a streamed chunk left unsynced", async () => {
  const root = freshRoot();
  const events: string[] = [];
  const store = new ChunkStore(join(root, "chunks"), root, countingIo(events));
  const bytes = bytesInDir("1c", 4);
  await store.putChunkAsync(bytes);
  await store.putChunkAsync(bytes);
  expect(events).toEqual(["write", "rename"]);
  // putChunk promises a durable chunk on return, also when a streamed write put it there.
  store.putChunk(bytes);
  expect(events).toEqual(["write", "rename", "fsync 1c"]);
  expect(store.unsyncedDirCount()).toBe(0);
});

test("a chunk whose write fails is not stored, leaves no temp file and no unsynced directory", async () => {
  const root = freshRoot();
  const tmp = join(root, "tmp");
  const store = new ChunkStore(join(root, "chunks"), tmp, {
    ...realChunkIo,
    async writeSynced(path) {
      writeFileSync(path, "partial");
      throw new Error("no space left on device");
    },
  });
  rmSync(tmp, { recursive: true, force: true });
  require("node:fs").mkdirSync(tmp);
  const bytes = bytesInDir("2d", 5);
  await expect(store.putChunkAsync(bytes)).rejects.toThrow("no space left on device");
  expect(store.hasChunk(chunkIdOf(bytes))).toBe(false);
  expect(readdirSync(tmp)).toEqual([]);
  expect(store.unsyncedDirCount()).toBe(0);
});

test("content that does not match the id it was sent under is refused before anything is written", async () => {
  const root = freshRoot();
  const events: string[] = [];
  const store = new ChunkStore(join(root, "chunks"), root, countingIo(events));
  await expect(store.putChunkAsync(new TextEncoder().encode("x"), "0".repeat(64))).rejects.toThrow("does not match its id");
  expect(events).toEqual([]);
});

test.each(["create", "append", "replaceOps"] as const)("%s: the op's unsynced chunk directories are fsync'ed before its line is written", async (how) => {
  const root = freshRoot();
  const events: string[] = [];
  const manifest = () => join(root, "files", readdirSync(join(root, "files"))[0] ?? "none", "manifest.jsonl");
  const store = new FileStore(root, countingIo(events, manifest));
  if (how === "append") expect(store.create("f", op([], "create"))).toBe("created");
  const a = await store.putChunkAsync(bytesInDir("3e", 6));
  // Another upload's chunk in another directory: not this op's business.
  await store.putChunkAsync(bytesInDir("3f", 7));
  events.length = 0;
  const theOp = op([a], how === "append" ? "append" : "create");
  if (how === "create") expect(store.create("f", theOp)).toBe("created");
  else if (how === "append") expect(store.append("f", theOp)).toBe("applied");
  else store.replaceOps("f", [theOp]);
  // Synced while the manifest still held only the lines before this op.
  expect(events).toEqual([`fsync 3e at ${how === "append" ? 1 : 0} lines`]);
  expect(lines(manifest())).toBe(how === "append" ? 2 : 1);
  expect(store.chunks.unsyncedDirCount()).toBe(1);
  expect(store.view("f")!.at(-1)!.opId).toBe(theOp.opId);
});

test("the real ChunkIo: full chunks (O_DIRECT), a partial one and a misaligned buffer (page cache) all read back", async () => {
  const root = freshRoot();
  const store = new ChunkStore(join(root, "chunks"), root);
  const full = new Uint8Array(1 << 20);
  crypto.getRandomValues(full.subarray(0, 65536));
  full[full.length - 1] = 7;
  const backing = new Uint8Array(8193);
  crypto.getRandomValues(backing);
  // 8192 bytes (a multiple of the block) starting one byte into its buffer: O_DIRECT refuses it.
  const misaligned = backing.subarray(1);
  const partial = new TextEncoder().encode("the last, partial chunk of a file");
  for (const bytes of [full, misaligned, partial]) {
    const ref = await store.putChunkAsync(bytes);
    expect(ref.size).toBe(bytes.length);
    expect(Buffer.compare(store.readChunk(ref.id), bytes)).toBe(0);
  }
  expect(store.unsyncedDirCount()).toBeGreaterThan(0);
});

test("after a restart every existing chunk directory counts as unsynced until a commit syncs it", async () => {
  const root = freshRoot();
  const events: string[] = [];
  const first = new ChunkStore(join(root, "chunks"), root, countingIo(events));
  const a = await first.putChunkAsync(bytesInDir("4a", 8));
  first.syncDirsOf([a.id]);
  // A new process over the same directory cannot know that fsync happened.
  const second = new ChunkStore(join(root, "chunks"), root, countingIo(events));
  expect(second.unsyncedDirCount()).toBe(1);
  events.length = 0;
  second.syncDirsOf([a.id]);
  expect(events).toEqual(["fsync 4a"]);
});
