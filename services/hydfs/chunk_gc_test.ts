/**
 * Chunk garbage collection on one node (FileStore.collectChunks, HydfsNode.maybeCollectChunks):
 * referenced chunks stay, unreferenced ones go once older than the grace period, pinned ones
 * stay, a deleted file's chunks go, a shared chunk stays until its last file is gone, a reused
 * leftover chunk counts as new again, deletions per run are bounded, and a coordinator's chunks
 * stay pinned while its upload is still streaming. Time is injected (nowMs) and chunk ages are
 * set with utimesSync: nothing here sleeps.
 *
 * Every test works in its own mkdtemp directory, removed in afterEach.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import { waitFor } from "../testing/cluster.ts";
import type { AppendOp, ChunkRef } from "./manifest.ts";
import { CHUNK_GC_EVERY_MS, CHUNK_GC_MAX_DELETES, HydfsNode, INLINE_MAX_BYTES } from "./node.ts";
import { CHUNK_BYTES, FileStore } from "./store.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), "hydfs-chunk-gc-test-"));
  dirs.push(dir);
  return dir;
}

const GRACE_MS = 60_000;
/** "Now" for collectChunks: the real clock, since chunk mtimes come from it. */
const now = () => Date.now();

let seqs = 0;
function op(chunks: ChunkRef[], kind: "create" | "append" = "append"): AppendOp {
  const seq = ++seqs;
  return { opId: `op-${seq}`, clientId: "c", seq, tsMs: 1000 + seq, chunks, size: chunks.reduce((n, c) => n + c.size, 0), kind };
}

/** Set a chunk file's mtime to `ageMs` before `nowMs`. */
function age(store: FileStore, id: string, ageMs: number, nowMs: number): void {
  const t = new Date(nowMs - ageMs);
  utimesSync(store.chunkPath(id), t, t);
}

function gc(store: FileStore, nowMs: number, maxDeletes = 1000) {
  return store.collectChunks({ nowMs, graceMs: GRACE_MS, maxDeletes });
}

/** Ids of all chunk files in the store. */
function chunkIds(root: string): string[] {
  const dir = join(root, "chunks");
  return readdirSync(dir)
    .flatMap((sub) => readdirSync(join(dir, sub)))
    .sort();
}

describe("FileStore.collectChunks", () => {
  test("referenced chunks are kept, however old", () => {
    const store = new FileStore(freshRoot());
    const a = store.putChunk(new TextEncoder().encode("create"));
    const b = store.putChunk(new TextEncoder().encode("append"));
    expect(store.create("f", op([a], "create"))).toBe("created");
    expect(store.append("f", op([b]))).toBe("applied");
    const t = now();
    age(store, a.id, 10 * GRACE_MS, t);
    age(store, b.id, 10 * GRACE_MS, t);
    expect(gc(store, t)).toEqual({ deleted: 0, bytesFreed: 0, kept: 0, truncated: false });
    expect(store.hasChunk(a.id) && store.hasChunk(b.id)).toBe(true);
  });

  test("references are read from disk too: a freshly opened store (nothing loaded) keeps them", () => {
    const root = freshRoot();
    const first = new FileStore(root);
    const a = first.putChunk(new TextEncoder().encode("on disk"));
    expect(first.create("f", op([a], "create"))).toBe("created");
    const reopened = new FileStore(root);
    const t = now();
    age(reopened, a.id, 10 * GRACE_MS, t);
    expect(gc(reopened, t).deleted).toBe(0);
    expect(reopened.hasChunk(a.id)).toBe(true);
  });

  test("unreferenced chunks older than the grace period are deleted, counted with their bytes", () => {
    const root = freshRoot();
    const store = new FileStore(root);
    const a = store.putChunk(new Uint8Array(1000).fill(1));
    const b = store.putChunk(new Uint8Array(234).fill(2));
    const t = now();
    age(store, a.id, GRACE_MS, t);
    age(store, b.id, GRACE_MS + 1, t);
    expect(gc(store, t)).toEqual({ deleted: 2, bytesFreed: 1234, kept: 0, truncated: false });
    expect(chunkIds(root)).toEqual([]);
  });

  test("unreferenced chunks younger than the grace period are kept (an op may still be on its way)", () => {
    const store = new FileStore(freshRoot());
    const a = store.putChunk(new TextEncoder().encode("young"));
    const t = now();
    age(store, a.id, GRACE_MS - 1, t);
    expect(gc(store, t)).toEqual({ deleted: 0, bytesFreed: 0, kept: 1, truncated: false });
    // A chunk dated in the future (the clock went back) is young too.
    age(store, a.id, -GRACE_MS, t);
    expect(gc(store, t).deleted).toBe(0);
    // Once old enough, its op never came: it goes.
    expect(gc(store, t + 2 * GRACE_MS).deleted).toBe(1);
    expect(store.hasChunk(a.id)).toBe(false);
  });

  test("pinned chunks are kept until every pin is released", () => {
    const store = new FileStore(freshRoot());
    const a = store.putChunk(new TextEncoder().encode("pinned"));
    const t = now();
    age(store, a.id, 10 * GRACE_MS, t);
    const release1 = store.pinChunks([a.id]);
    const release2 = store.pinChunks([a.id]);
    expect(gc(store, t)).toEqual({ deleted: 0, bytesFreed: 0, kept: 1, truncated: false });
    release1();
    release1(); // a second call must not drop the other pin
    expect(gc(store, t).deleted).toBe(0);
    release2();
    expect(gc(store, t).deleted).toBe(1);
  });

  test("after a delete, the file's chunks go (once old enough)", () => {
    const root = freshRoot();
    const store = new FileStore(root);
    const a = store.putChunk(new TextEncoder().encode("file body"));
    const b = store.putChunk(new TextEncoder().encode("appended"));
    expect(store.create("f", op([a], "create"))).toBe("created");
    expect(store.append("f", op([b]))).toBe("applied");
    store.deleteFile("f", 10_000);
    const t = now();
    expect(gc(store, t).deleted).toBe(0); // just written: within the grace period
    age(store, a.id, GRACE_MS, t);
    age(store, b.id, GRACE_MS, t);
    expect(gc(store, t).deleted).toBe(2);
    expect(chunkIds(root)).toEqual([]);
  });

  test("a chunk shared by two files stays until both are gone", () => {
    const store = new FileStore(freshRoot());
    const shared = store.putChunk(new TextEncoder().encode("same bytes in two files"));
    expect(store.create("f", op([shared], "create"))).toBe("created");
    expect(store.create("g", op([shared], "create"))).toBe("created");
    const t = now();
    age(store, shared.id, 10 * GRACE_MS, t);
    store.deleteFile("f", 10_000);
    expect(gc(store, t).deleted).toBe(0);
    expect(store.view("g")).toHaveLength(1);
    // A hand-over drop (no tombstone) unreferences it as well.
    store.delete("g");
    expect(gc(store, t).deleted).toBe(1);
    expect(store.hasChunk(shared.id)).toBe(false);
  });

  test("storing a chunk that already exists makes it young again (a new write reuses a leftover)", () => {
    const store = new FileStore(freshRoot());
    const bytes = new TextEncoder().encode("leftover of a deleted file");
    const a = store.putChunk(bytes);
    const t = now();
    age(store, a.id, 10 * GRACE_MS, t);
    store.putChunk(bytes, a.id);
    expect(statSync(store.chunkPath(a.id)).mtimeMs).toBeGreaterThan(t - GRACE_MS);
    expect(gc(store, now()).deleted).toBe(0);
    expect(store.create("f", op([a], "create"))).toBe("created");
  });

  test("at most maxDeletes per run; the rest goes in the next run", () => {
    const root = freshRoot();
    const store = new FileStore(root);
    const t = now();
    for (let i = 0; i < 5; i++) age(store, store.putChunk(new Uint8Array([i])).id, GRACE_MS, t);
    expect(gc(store, t, 3)).toMatchObject({ deleted: 3, truncated: true });
    expect(chunkIds(root)).toHaveLength(2);
    expect(gc(store, t, 3)).toMatchObject({ deleted: 2, truncated: false });
    expect(chunkIds(root)).toEqual([]);
  });

  test("files in the chunk folders that are not chunks are left alone", () => {
    const root = freshRoot();
    const store = new FileStore(root);
    const a = store.putChunk(new TextEncoder().encode("x"));
    const stray = join(root, "chunks", a.id.slice(0, 2), "README");
    writeFileSync(stray, "not a chunk");
    const t = now();
    age(store, a.id, GRACE_MS, t);
    utimesSync(stray, new Date(t - 10 * GRACE_MS), new Date(t - 10 * GRACE_MS));
    expect(gc(store, t).deleted).toBe(1);
    expect(existsSync(stray)).toBe(true);
  });

  test("a manifest that points to a chunk GC removed cannot be written: the op is refused", () => {
    const store = new FileStore(freshRoot());
    const a = store.putChunk(new TextEncoder().encode("op came too late"));
    const t = now();
    age(store, a.id, GRACE_MS, t);
    expect(gc(store, t).deleted).toBe(1);
    expect(store.create("f", op([a], "create"))).toEqual({ missingChunks: [a.id] });
    expect(store.exists("f")).toBe(false);
  });
});

describe("HydfsNode chunk GC", () => {
  const HOST = `${testNet(47)}.250`;

  function node(graceMs = GRACE_MS): { node: HydfsNode; store: FileStore; root: string } {
    const root = freshRoot();
    const cfg = buildNodeConfig({ host: HOST, data_dir: root, hydfs: { chunk_gc_grace_ms: graceMs, replica_count: 1 } });
    const store = new FileStore(join(root, "hydfs"));
    const n = new HydfsNode(cfg, store, makeLogger("chunk-gc-test", "error"));
    n.setViewReady(true);
    return { node: n, store, root: join(root, "hydfs") };
  }

  test("maybeCollectChunks runs at once, then at most every min(CHUNK_GC_EVERY_MS, grace), and counts in metrics", () => {
    const { node: n, store } = node();
    const t = now();
    const a = store.putChunk(new Uint8Array(100));
    age(store, a.id, GRACE_MS, t);
    expect(n.maybeCollectChunks(t)?.deleted).toBe(1);
    expect(n.metrics).toMatchObject({ chunksDeleted: 1, chunkBytesFreed: 100 });
    const b = store.putChunk(new Uint8Array(50));
    age(store, b.id, GRACE_MS, t);
    const every = Math.min(CHUNK_GC_EVERY_MS, GRACE_MS);
    expect(n.maybeCollectChunks(t + every - 1)).toBeUndefined();
    expect(store.hasChunk(b.id)).toBe(true);
    expect(n.maybeCollectChunks(t + every)?.deleted).toBe(1);
    expect(n.metrics).toMatchObject({ chunksDeleted: 2, chunkBytesFreed: 150 });
    expect(CHUNK_GC_MAX_DELETES).toBeGreaterThan(0);
  });

  test("a coordinator's chunks stay pinned while its upload streams, and go after the file is deleted", async () => {
    const { node: n, store, root } = node();
    n.setMembers([{ id: `${HOST}:5000:1`, state: "alive", ports: { ...n.cfg.ports } } as never]);
    n.stop(); // no background pass: this test drives GC itself
    // A body bigger than one chunk, so it streams (not inline); the second part waits for us.
    const first = new Uint8Array(CHUNK_BYTES + INLINE_MAX_BYTES).fill(7);
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(first);
        await gate;
        controller.enqueue(new Uint8Array(10).fill(8));
        controller.close();
      },
    });
    const writing = n.write("create", "big", body, "client", 1);
    await waitFor(() => chunkIds(root).length > 0, scaled(10_000), "the upload's first chunk stored on the coordinator", 5);
    const [id] = chunkIds(root);
    const far = now() + 100 * GRACE_MS;
    expect(store.collectChunks({ nowMs: far, graceMs: GRACE_MS, maxDeletes: 1000 })).toMatchObject({ deleted: 0, kept: 1 });
    finish();
    const result = await writing;
    expect(result.size).toBe(first.length + 10);
    // Applied: now referenced, no longer pinned, still kept.
    expect(store.collectChunks({ nowMs: far, graceMs: GRACE_MS, maxDeletes: 1000 })).toMatchObject({ deleted: 0, kept: 0 });
    expect(store.hasChunk(id!)).toBe(true);
    n.deleteLocal("big", Date.now());
    expect(store.collectChunks({ nowMs: far, graceMs: GRACE_MS, maxDeletes: 1000 }).deleted).toBe(2);
    expect(chunkIds(root)).toEqual([]);
  });
});

describe("hydfs.chunk_gc_grace_ms", () => {
  test("defaults to one hour and accepts an integer from 1000 ms to 30 days", () => {
    expect(buildNodeConfig({}).hydfs.chunk_gc_grace_ms).toBe(3_600_000);
    expect(buildNodeConfig({ hydfs: { chunk_gc_grace_ms: 1000 } }).hydfs.chunk_gc_grace_ms).toBe(1000);
  });

  test.each([999, 1500.5, "2000", 31 * 24 * 3_600_000])("rejects %p, naming the setting and its range", (v) => {
    expect(() => buildNodeConfig({ hydfs: { chunk_gc_grace_ms: v } })).toThrow("hydfs.chunk_gc_grace_ms: expected an integer in [1000, 2592000000]");
  });
});
