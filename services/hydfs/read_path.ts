/**
 * The read path: manifests gathered from the replicas, judged by quorum.ts readView (a majority
 * of answers; the merge of what they hold; a tombstone hides what it deleted), and the file's
 * bytes streamed chunk by chunk from whichever holder has them.
 */
import { type AppendOp, totalSize } from "./manifest.ts";
import { validateRemoteName } from "./names.ts";
import type { HydfsNode } from "./node.ts";
import { HydfsError } from "./node_types.ts";
import { readView } from "./quorum.ts";
import type { ManifestAnswer } from "./reconcile.ts";
import type { NodeAddress, RingNode } from "./ring.ts";

/**
 * Chunks of one download fetched ahead of the reader (memory: this many x 4 MiB on the
 * coordinator), so the replica's disk, the network and the client's writes overlap. 4 ahead
 * gained nothing measurable (the get is CPU-bound here) and took the coordinator's peak RSS of a
 * 1 GB get past 200 MB in one run.
 */
const READ_AHEAD_CHUNKS = 3;

/** A chunk from this node or, failing that, from any of `sources` (in order). */
export async function fetchChunk(node: HydfsNode, id: string, sources: readonly NodeAddress[]): Promise<Uint8Array> {
  if (node.store.hasChunk(id)) return node.store.readChunk(id);
  const errors: string[] = [];
  // A source that is this node is asked too (its store again: harmless, and it may have the chunk by now).
  for (const src of sources) {
    try {
      return await node.at(src).getChunk(id);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  throw new Error(`chunk ${id.slice(0, 12)} unavailable (${errors.join("; ") || "no source"})`);
}

/** Ops and tombstone of every participant that answered (ops undefined = answered, no copy). */
export async function gather(node: HydfsNode, name: string, participants: readonly RingNode[]): Promise<ManifestAnswer[]> {
  const settled = await Promise.allSettled(participants.map((r) => node.at(r).manifest(name)));
  const out: ManifestAnswer[] = [];
  settled.forEach((s, i) => {
    if (s.status === "fulfilled") out.push({ node: participants[i]!, ...s.value });
    else node.log.warn(`manifest of ${name} from ${participants[i]!.host}: ${(s.reason as Error).message}`);
  });
  return out;
}

/**
 * The file as a majority of its replicas hold it (404 when missing or deleted). Replicas found
 * to differ (ops or tombstone) are repaired by a merge off the request path.
 */
async function quorumView(node: HydfsNode, name: string, what: string): Promise<{ ops: AppendOp[]; holders: RingNode[] }> {
  const { replicas, need } = node.coordinate(name, what);
  const view = readView(await gather(node, name, replicas), replicas.length, need);
  if (view.kind === "unavailable") throw new HydfsError(`${what} ${name}: only ${view.answered} of ${replicas.length} replicas answered, need ${need}`, 503);
  if (view.repair) void node.reconcile(name).catch((err) => node.log.warn(`read repair of ${name}: ${(err as Error).message}`));
  if (view.kind === "missing") throw new HydfsError(`${what} ${name}: no such file`, 404);
  return view;
}

/** Quorum read: the merged ops and a stream of the file's bytes. */
export async function quorumRead(node: HydfsNode, nameIn: unknown): Promise<{ name: string; ops: AppendOp[]; size: number; body: ReadableStream<Uint8Array> }> {
  const name = validateRemoteName(nameIn);
  node.count("get");
  const { ops, holders } = await quorumView(node, name, "get");
  const size = totalSize(ops);
  node.metrics.bytesRead += size;
  return { name, ops, size, body: streamOps(node, name, ops, holders) };
}

/** Size and op count by a quorum read of the manifests only; no chunk moves. */
export async function quorumStat(node: HydfsNode, nameIn: unknown, what: string): Promise<{ name: string; size: number; ops: number }> {
  const name = validateRemoteName(nameIn);
  node.count(what);
  const { ops } = await quorumView(node, name, what);
  return { name, size: totalSize(ops), ops: ops.length };
}

/** This node's own copy, as `getfromreplica` shows it. */
export function readOwnCopy(node: HydfsNode, nameIn: unknown): { name: string; ops: AppendOp[]; size: number; body: ReadableStream<Uint8Array> } {
  const name = validateRemoteName(nameIn);
  const ops = node.store.view(name);
  if (!ops) throw new HydfsError(`this node (${node.cfg.host}) holds no replica of ${name}`, 404);
  return { name, ops, size: totalSize(ops), body: streamOps(node, name, ops, []) };
}

function streamOps(node: HydfsNode, name: string, ops: AppendOp[], holders: RingNode[]): ReadableStream<Uint8Array> {
  const ids = ops.flatMap((o) => o.chunks.map((c) => c.id));
  let next = 0;
  // Fetch a few chunks ahead so the network and the replicas' disks work while the client reads.
  const ahead: Promise<Uint8Array>[] = [];
  const fill = () => {
    while (ahead.length < READ_AHEAD_CHUNKS && next < ids.length) {
      const p = fetchChunk(node, ids[next++]!, holders);
      p.catch(() => {});
      ahead.push(p);
    }
  };
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      fill();
      const p = ahead.shift();
      if (!p) return controller.close();
      try {
        controller.enqueue(await p);
      } catch (err) {
        controller.error(new Error(`read of ${name}: ${(err as Error).message}`));
      }
    },
  });
}
