/**
 * The replica side of HyDFS: what this node does with its own copies when a coordinator (a peer's
 * through http.ts, or its own through LocalReplica) asks. Everything from the wire is checked
 * before anything is stored: timestamps against this node's clock (limits.ts), an op's kind and
 * inline bytes against the op, chunk sources against the ring.
 */
import { type AcceptReply, type Ballot, onAccept, onPrepare, type PrepareReply } from "./create_decree.ts";
import { checkWireTime, WireValueError } from "./limits.ts";
import { type AppendOp, manifestDigest, mergeManifests, opsAfter } from "./manifest.ts";
import type { HydfsNode } from "./node.ts";
import { HydfsError } from "./node_types.ts";
import type { DeleteAnswer, ReplicaAnswer } from "./quorum.ts";
import { fetchChunk } from "./read_path.ts";
import { type NodeAddress, type RingNode, sameAddress } from "./ring.ts";
import type { FileStore } from "./store.ts";
import type { WriteKind } from "./transport.ts";

/** A caller-named chunk source that is not a hydfsd of the current ring. */
export function foreignSources(sources: readonly NodeAddress[], ring: readonly NodeAddress[]): NodeAddress[] {
  return sources.filter((s) => !ring.some((n) => sameAddress(n, s)));
}

/** A timestamp from the wire, bounded by the clock `nowMs` (limits.ts); HydfsError 400 otherwise. */
export function checkTime(nowMs: number, value: unknown, what: string): number {
  try {
    return checkWireTime(value, nowMs, what);
  } catch (err) {
    if (err instanceof WireValueError) throw new HydfsError(err.message, 400);
    throw err;
  }
}

/**
 * Replica side of create/append. The op's timestamp comes from the wire: one more than
 * MAX_CLOCK_SKEW_MS after this node's clock is refused (HydfsError 400), as it would sort after
 * every later write and outlive a delete.
 */
export function applyLocal(node: HydfsNode, kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean): ReplicaAnswer {
  node.checkTime(op.tsMs, `${kind} ${name}: op tsMs`);
  if (kind !== op.kind) throw new HydfsError(`${kind} ${name}: op kind ${JSON.stringify(op.kind)}: expected ${JSON.stringify(kind)}`, 400);
  const store = node.store;
  if (kind === "create") {
    const r = store.create(name, op);
    if (r === "created") {
      node.dirty.add(name);
      return "ok";
    }
    if (r === "exists" || r === "deleted_later" || r === "duplicate") return r;
    if ("conflict" in r) return "conflict";
    return "error";
  }
  let r = store.append(name, op);
  // Never on a deleted name: the replica that "proved" the file exists may be a stale one that
  // missed the delete, and storing here would bring the file back.
  if (r === "no_such_file" && storeIfMissing && store.deletedAt(name) === undefined) {
    store.replaceOps(name, [op]);
    r = "applied";
  }
  if (r === "applied") node.dirty.add(name);
  if (typeof r === "object") return "conflict" in r ? "conflict" : "error";
  return r === "applied" ? "ok" : r === "manifest_full" ? "full" : r;
}

/**
 * Undo an append this node coordinated and then refused (a conflict or a full manifest): it is
 * taken out of the manifest, or the copy goes if it was the copy's only op. A create is never
 * undone (creates are decided once, create_decree.ts). Op ids are unique per attempt, so only
 * that attempt's op is touched; false when it is not here.
 */
export function abortLocal(store: FileStore, name: string, opId: string): boolean {
  const ops = store.ops(name);
  const op = ops?.find((o) => o.opId === opId);
  if (!ops || !op) return false;
  if (ops.length === 1) {
    store.delete(name);
    return true;
  }
  if (op.kind === "create") return false;
  store.replaceOps(
    name,
    ops.filter((o) => o !== op),
  );
  return true;
}

/** The create of this replica's live copy of `name`, if it has one. */
function storedCreate(store: FileStore, name: string): AppendOp | undefined {
  return store.ops(name)?.find((o) => o.kind === "create");
}

/** Acceptor, phase 1 (from a peer's coordinator or this node's own). */
export function prepareLocal(store: FileStore, name: string, ballot: Ballot): PrepareReply {
  const before = store.decree(name);
  const { state, reply } = onPrepare(before, ballot, storedCreate(store, name), store.deletedAt(name));
  if (state !== before) store.setDecree(name, state);
  return reply;
}

/** Acceptor, phase 2. A small create's bytes come along and are stored before it is accepted. */
export function acceptLocal(node: HydfsNode, name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): AcceptReply {
  node.checkTime(op.tsMs, `accept of create ${name}: op tsMs`);
  if (op.kind !== "create") throw new HydfsError(`accept of create ${name}: op kind ${JSON.stringify(op.kind)}: expected "create"`, 400);
  const store = node.store;
  if (data && data.length > 0) {
    if (op.chunks.length !== 1 || op.chunks[0]!.size !== data.length)
      throw new HydfsError(`accept of create ${name}: inline data of ${data.length} bytes does not match the op's chunks`, 400);
    try {
      store.putChunk(data, op.chunks[0]!.id);
    } catch (err) {
      throw new HydfsError(`accept of create ${name}: ${(err as Error).message}`, 400);
    }
  }
  const before = store.decree(name);
  const { state, reply } = onAccept(before, ballot, op, storedCreate(store, name));
  if (state !== before) store.setDecree(name, state);
  return reply;
}

/**
 * Replica side of delete: a durable tombstone, then the copy goes. `atMs` comes from the wire:
 * more than MAX_CLOCK_SKEW_MS after this node's clock is refused (400), or one forged delete
 * would block every create of the name until that time.
 */
export function deleteLocal(node: HydfsNode, name: string, atMs: number): DeleteAnswer {
  node.checkTime(atMs, `delete ${name}: at`);
  const r = node.store.deleteFile(name, atMs);
  node.dirty.delete(name);
  return r;
}

/**
 * Replica side of merge: learn the tombstone, fetch missing chunks, then take the union of ours
 * and theirs without any op at or before the tombstone. Returns the stored manifest's digest.
 */
export async function adoptLocal(node: HydfsNode, name: string, ops: AppendOp[], sources: NodeAddress[], deletedAtMs?: number): Promise<string> {
  const t0 = node.env.monoMs();
  const store = node.store;
  // Everything is checked before anything is stored or fetched.
  if (deletedAtMs !== undefined) node.checkTime(deletedAtMs, `adopt ${name}: deletedAtMs`);
  ops.forEach((op, i) => node.checkTime(op.tsMs, `adopt ${name}: ops[${i}].tsMs`));
  // This node itself may be named (its own store is asked first anyway).
  const foreign = foreignSources(
    sources.filter((s) => !node.isSelf(s)),
    node.ring.nodes,
  );
  if (foreign.length > 0) {
    throw new HydfsError(
      `adopt ${name}: source ${foreign.map((s) => `${s.host}:${s.hydfsPort}`).join(", ")}: expected hydfsd of current ring members only (chunks are fetched from nowhere else)`,
      400,
    );
  }
  // The named sources (all ring members) first, then the file's replicas on this node's ring.
  const owners: RingNode[] = node.ring.replicasFor(name, node.cfg.hydfs.replica_count);
  const from = [...sources, ...owners.filter((r) => !sources.some((s) => sameAddress(s, r)))];
  if (deletedAtMs !== undefined) store.applyTombstone(name, deletedAtMs);
  const live = opsAfter(ops, store.deletedAt(name));
  // Chunks already here (perhaps unreferenced leftovers) and the ones fetched below must
  // survive chunk GC until the manifest that references them is written.
  const release = store.pinChunks(live.flatMap((o) => o.chunks.map((c) => c.id)));
  try {
    for (const id of store.missingChunks(live.flatMap((o) => o.chunks))) {
      const bytes = await fetchChunk(node, id, from);
      store.putChunk(bytes, id);
      node.metrics.rereplicatedBytes += bytes.length;
    }
    const stored = store.replaceOps(name, mergeManifests(store.ops(name) ?? [], live));
    node.metrics.rereplicationMs += node.env.monoMs() - t0;
    return manifestDigest(stored);
  } finally {
    release();
  }
}
