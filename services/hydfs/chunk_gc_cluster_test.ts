/**
 * Chunk GC on real processes (memberd + hydfsd per node, from the .ts sources) on testNet(47).k,
 * with a 2 s hydfs.chunk_gc_grace_ms: after a delete, no node keeps a chunk only the deleted file
 * used, a chunk it shared with a kept file stays exactly on the kept file's replicas, and the kept
 * file still reads back byte-identical. The cluster is removed in afterAll and killed at exit.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { CHUNK_BYTES, chunkIdOf } from "./store.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const NODES = [1, 2, 3, 4];
/** Short grace and passes so a deleted file's chunks go within seconds, not an hour. */
const HYDFS = { rereplicate_every_ms: 500, chunk_gc_grace_ms: 2000 };
/** How long the nodes may take to drop the chunks (a few grace periods plus passes). */
const GC_DEADLINE_MS = 30_000;

describe("HyDFS chunk GC on 4 nodes", () => {
  const c = new LocalCluster({ dir: tempPath("hydfs-chunk-gc-"), subnet: testNet(47), extra: { hydfs: HYDFS }, killOnExit: true, preferCompiled: false });
  const client = new HydfsTestClient(c);

  beforeAll(async () => {
    await c.up(NODES.length);
    await c.waitHydfsRing(NODES);
  });
  afterAll(async () => {
    await c.down(true);
  });

  const hasChunk = (k: number, id: string) => existsSync(join(c.dir, `node-${k}`, "data", "hydfs", "chunks", id.slice(0, 2), id));

  async function metric(k: number, name: string): Promise<number> {
    const res = await client.request(k, "GET", "/metrics");
    const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
    if (!line) throw new Error(`node ${k} /metrics has no ${name}`);
    return Number(line.split(" ")[1]);
  }

  test("a deleted file's chunks leave every replica; a chunk shared with a kept file stays where that file lives", async () => {
    // Both files are one full chunk A (shared) plus a random tail of their own (so no chunk is
    // shared by accident); both stream (not inline).
    const shared = randomBytes(CHUNK_BYTES);
    const doomedTail = randomBytes(1024 * 1024);
    const keptTail = randomBytes(1024 * 1024);
    const doomed = Buffer.concat([shared, doomedTail]);
    const kept = Buffer.concat([shared, keptTail]);
    const [a, b, k3] = [chunkIdOf(shared), chunkIdOf(doomedTail), chunkIdOf(keptTail)];

    await client.write(1, "create", "doomed.bin", doomed);
    await client.write(2, "create", "kept.bin", kept);
    const doomedOwners = (await client.ls(1, "doomed.bin")).replicas.map((r) => c.nodeOf(r.host));
    const keptOwners = (await client.ls(1, "kept.bin")).replicas.map((r) => c.nodeOf(r.host));
    // Quorum writes: wait for the third replica too (it may answer after the acknowledgement).
    await waitFor(() => doomedOwners.every((k) => hasChunk(k, a) && hasChunk(k, b)), scaled(GC_DEADLINE_MS), "doomed.bin's chunks on all its replicas");
    await waitFor(() => keptOwners.every((k) => hasChunk(k, a) && hasChunk(k, k3)), scaled(GC_DEADLINE_MS), "kept.bin's chunks on all its replicas");

    const freedBefore = await Promise.all(NODES.map((k) => metric(k, "hydfs_chunk_bytes_freed_total")));
    const del = await client.request(3, "POST", "/delete?name=doomed.bin");
    expect(del.status).toBe(200);
    await del.arrayBuffer();

    const where = () => NODES.map((k) => `node ${k}: A=${hasChunk(k, a)} B=${hasChunk(k, b)}`).join(", ");
    await waitFor(
      () => NODES.every((k) => !hasChunk(k, b) && hasChunk(k, a) === keptOwners.includes(k)),
      scaled(GC_DEADLINE_MS),
      `doomed.bin's own chunk to leave every node and the shared one to stay only on kept.bin's replicas ${JSON.stringify(keptOwners)}`,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; now ${where()}`);
    });

    // The metrics account for it: every node that held B freed at least B's bytes.
    for (const k of doomedOwners) {
      expect(await metric(k, "hydfs_chunks_deleted_total")).toBeGreaterThanOrEqual(1);
      expect((await metric(k, "hydfs_chunk_bytes_freed_total")) - freedBefore[k - 1]!).toBeGreaterThanOrEqual(doomedTail.length);
    }

    // The kept file is intact, through every coordinator and on each of its replicas.
    for (const k of NODES) expect(Buffer.from(await client.get(k, "kept.bin")).equals(kept)).toBe(true);
    for (const k of keptOwners) expect(Buffer.from((await client.fromReplica(k, "kept.bin"))!).equals(kept)).toBe(true);
    for (const k of keptOwners) expect(hasChunk(k, k3)).toBe(true);
  });
});
