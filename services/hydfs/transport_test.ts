/**
 * The transport seam: routedTransport sends this node's own address to its local replica and
 * every other address to the remote factory; LocalReplica runs the replica side on this node's
 * store with the same answers a peer gives over HTTP (refusals are answers, a missing chunk
 * rejects, a delete records the tombstone).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import type { AppendOp } from "./manifest.ts";
import { HydfsNode } from "./node.ts";
import { chunkIdOf, FileStore } from "./store.ts";
import { type Replica, routedTransport } from "./transport.ts";

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const HOST = "127.0.47.251";

function localNode(): HydfsNode {
  const root = mkdtempSync(join(tmpdir(), "hydfs-transport-"));
  roots.push(root);
  const cfg = buildNodeConfig({ host: HOST, data_dir: root });
  const node = new HydfsNode(cfg, new FileStore(join(root, "hydfs")), makeLogger("transport-test", "silent"));
  node.stop();
  return node;
}

const bytes = new TextEncoder().encode("hello");
const op = (kind: "create" | "append", seq: number, tsMs = Date.now()): AppendOp => ({
  opId: `op-${seq}`,
  clientId: "c",
  seq,
  tsMs,
  chunks: [{ id: chunkIdOf(bytes), size: bytes.length }],
  size: bytes.length,
  kind,
});

describe("routedTransport", () => {
  test("this node's address goes to the local replica, any other to the remote factory", () => {
    const local = { address: { host: "a", hydfsPort: 1 } } as Replica;
    const asked: string[] = [];
    const t = routedTransport(local.address, local, (n) => {
      asked.push(`${n.host}:${n.hydfsPort}`);
      return { address: n } as Replica;
    });
    expect(t.for({ host: "a", hydfsPort: 1 })).toBe(local);
    expect(t.for({ host: "a", hydfsPort: 2 })).not.toBe(local);
    expect(t.for({ host: "b", hydfsPort: 1 })).not.toBe(local);
    expect(asked).toEqual(["a:2", "b:1"]);
  });
});

describe("LocalReplica (HydfsNode.at(self))", () => {
  test("apply with inline bytes stores the chunk and the op; refusals are answers", async () => {
    const node = localNode();
    const r = node.at(node.self);
    expect(await r.apply("append", "f", op("append", 1), false, bytes)).toBe("no_such_file");
    expect(await r.apply("create", "f", op("create", 1), false, bytes)).toBe("ok");
    expect(await r.apply("create", "f", op("create", 1), false, bytes)).toBe("duplicate");
    expect(await r.apply("append", "f", { ...op("append", 1), opId: "other" }, false, bytes)).toBe("conflict");
    expect((await r.manifest("f")).ops?.map((o) => o.opId)).toEqual(["op-1"]);
    expect(await r.getChunk(chunkIdOf(bytes))).toEqual(bytes);
  });

  test("a chunk that is not here rejects; a timestamp past the skew bound rejects", async () => {
    const node = localNode();
    const r = node.at(node.self);
    await expect(r.getChunk("0".repeat(64))).rejects.toThrow("not here");
    await expect(r.apply("create", "f", op("create", 1, Date.now() + 3_600_000), false, bytes)).rejects.toThrow("tsMs");
  });

  test("delete records the tombstone and drops the copy; abort takes back an append", async () => {
    const node = localNode();
    const r = node.at(node.self);
    await r.apply("create", "f", op("create", 1), false, bytes);
    await r.apply("append", "f", op("append", 2), false, bytes);
    await r.abort("f", "op-2");
    expect((await r.manifest("f")).ops?.map((o) => o.seq)).toEqual([1]);
    const at = Date.now();
    expect(await r.delete("f", at)).toEqual({ hadCopy: true, deletedAtMs: at });
    expect(await r.manifest("f")).toEqual({ ops: undefined, deletedAtMs: at });
  });
});
