/**
 * Tombstones of deleted HyDFS files (store.ts, manifest.ts liveMerge): durable across a reopen,
 * surviving a crash between the tombstone and the removal of the copy, blocking every way a
 * stale copy's ops could come back (create, append, replaceOps, a peer's tombstone), and
 * superseded by a later create, whose new generation stays apart from the old one.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AppendOp, liveMerge, newestFloor } from "./manifest.ts";
import { encodeNameForDisk } from "./names.ts";
import { FileStore } from "./store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), "hydfs-tombstone-test-"));
  dirs.push(dir);
  return dir;
}

/** An op without chunks (no chunk files needed) stamped at `tsMs`. */
function op(clientId: string, seq: number, tsMs: number, kind: "create" | "append" = "append"): AppendOp {
  return { opId: `op-${clientId}-${seq}-${tsMs}`, clientId, seq, tsMs, chunks: [], size: 0, kind };
}

/** A store holding "f" created at t=100 with appends at t=200 and t=300. */
function storeWithFile(root = freshRoot()): { root: string; store: FileStore; old: AppendOp[] } {
  const store = new FileStore(root);
  const old = [op("c", 1, 100, "create"), op("c", 2, 200), op("c", 3, 300)];
  expect(store.create("f", old[0]!)).toBe("created");
  expect(store.append("f", old[1]!)).toBe("applied");
  expect(store.append("f", old[2]!)).toBe("applied");
  return { root, store, old };
}

describe("FileStore tombstones", () => {
  test("deleteFile removes the copy and records a tombstone that survives a reopen", () => {
    const { root, store } = storeWithFile();
    expect(store.deleteFile("f", 1000)).toEqual({ hadCopy: true, deletedAtMs: 1000 });
    expect(store.exists("f")).toBe(false);
    expect(store.list()).toEqual([]);
    expect(store.view("f")).toBeUndefined();
    expect(store.deletedAt("f")).toBe(1000);
    const reopened = new FileStore(root);
    expect(reopened.deletedAt("f")).toBe(1000);
    expect(reopened.exists("f")).toBe(false);
    expect(readdirSync(join(root, "tombstones"))).toEqual([encodeNameForDisk("f")]);
  });

  test("the floor covers every op the copy held, even when the coordinator's clock is behind", () => {
    const { store } = storeWithFile();
    expect(store.deleteFile("f", 250).deletedAtMs).toBe(300);
  });

  test("a delete without a copy still records the tombstone; the floor never goes down", () => {
    const store = new FileStore(freshRoot());
    expect(store.deleteFile("g", 500)).toEqual({ hadCopy: false, deletedAtMs: 500 });
    expect(store.deleteFile("g", 400).deletedAtMs).toBe(500);
    store.applyTombstone("g", 450);
    expect(store.deletedAt("g")).toBe(500);
    store.applyTombstone("g", 600);
    expect(store.deletedAt("g")).toBe(600);
  });

  test("ops of the deleted generation are not adopted, appended or created again", () => {
    const { root, store, old } = storeWithFile();
    store.deleteFile("f", 1000);
    // A merge offering a stale replica's copy.
    expect(store.replaceOps("f", old)).toEqual([]);
    expect(store.exists("f")).toBe(false);
    // The old create retried, or a create stamped before the delete by a lagging clock.
    expect(store.create("f", old[0]!)).toBe("deleted_later");
    expect(store.create("f", op("d", 1, 1000, "create"))).toBe("deleted_later");
    expect(store.exists("f")).toBe(false);
    expect(new FileStore(root).list()).toEqual([]);
  });

  test("a peer's tombstone drops a stale copy here, but keeps ops stamped after it", () => {
    const { store, old } = storeWithFile();
    store.applyTombstone("f", 1000);
    expect(store.exists("f")).toBe(false);
    expect(store.deletedAt("f")).toBe(1000);

    const other = new FileStore(freshRoot());
    // A copy mixing the old generation's appends with a new create (no tombstone here yet).
    expect(other.replaceOps("f", [op("n", 1, 2000, "create"), old[1]!, old[2]!])).toHaveLength(3);
    other.applyTombstone("f", 1000);
    expect(other.ops("f")).toEqual([op("n", 1, 2000, "create")]);
  });

  test("a create after the delete is a new file; stale ops stay out of it, also after a reopen", () => {
    const { root, store, old } = storeWithFile();
    store.deleteFile("f", 1000);
    const fresh = op("n", 1, 2000, "create");
    expect(store.create("f", fresh)).toBe("created");
    expect(store.list()).toEqual(["f"]);
    expect(store.append("f", op("n", 2, 2100))).toBe("applied");
    // An append of the old generation (a retry from before the delete) does not land in it.
    expect(store.append("f", op("c", 4, 400))).toBe("no_such_file");
    // A stale replica's ops merged with the new file: only the new generation is stored.
    const stored = store.replaceOps("f", [...old, ...store.ops("f")!]);
    expect(stored.map((o) => o.tsMs)).toEqual([2000, 2100]);
    const reopened = new FileStore(root);
    expect(reopened.view("f")!.map((o) => o.tsMs)).toEqual([2000, 2100]);
    expect(reopened.deletedAt("f")).toBe(1000);
  });

  test("a crash after the tombstone but before the copy was removed: the next start drops the copy", () => {
    const { root } = storeWithFile();
    // What deleteFile writes first, without the removal that follows it.
    writeFileSync(join(root, "tombstones", encodeNameForDisk("f")), JSON.stringify({ name: "f", deletedAtMs: 1000 }));
    const reopened = new FileStore(root);
    expect(reopened.exists("f")).toBe(false);
    expect(existsSync(join(root, "files", encodeNameForDisk("f")))).toBe(false);
  });

  test("a file in tombstones/ that is not a tombstone is ignored, not fatal", () => {
    const { root } = storeWithFile();
    writeFileSync(join(root, "tombstones", "junk"), "not json");
    writeFileSync(join(root, "tombstones", encodeNameForDisk("g")), JSON.stringify({ name: "f", deletedAtMs: 5 }));
    const reopened = new FileStore(root);
    expect(reopened.exists("f")).toBe(true);
    expect(reopened.deletedAt("f")).toBeUndefined();
    expect(reopened.deletedAt("g")).toBeUndefined();
  });
});

describe("liveMerge and newestFloor", () => {
  const old = [op("c", 1, 100, "create"), op("c", 2, 200)];
  const fresh = [op("n", 1, 2000, "create"), op("n", 2, 2100)];

  test("newestFloor is the largest tombstone reported", () => {
    expect(newestFloor([{}, { deletedAtMs: undefined }])).toBeUndefined();
    expect(newestFloor([{ deletedAtMs: 5 }, {}, { deletedAtMs: 9 }, { deletedAtMs: 7 }])).toBe(9);
  });

  test("without a tombstone any copy is a file; no copy is no file", () => {
    expect(liveMerge([old], undefined)).toEqual(old);
    expect(liveMerge([], undefined)).toBeUndefined();
  });

  test("a stale copy alone is a deleted file", () => {
    expect(liveMerge([old], 1000)).toBeUndefined();
  });

  test("appends a stale replica took after the delete, without a new create, are no file", () => {
    expect(liveMerge([[...old, op("s", 1, 1500)]], 1000)).toBeUndefined();
  });

  test("a re-created file keeps its own create, not the older dead one", () => {
    expect(liveMerge([old, fresh], 1000)).toEqual(fresh);
  });
});
