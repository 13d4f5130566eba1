/**
 * The background work of a node, and merge: the driver of the reconcile core (reconcile.ts). It
 * gathers the participants' manifests, asks planReconcile what to do, and runs the actions
 * through the transport; the background pass merges dirty files, hands over copies this node no
 * longer owns (dropping them only once every owner confirmed) and runs chunk GC.
 */
import { validateRemoteName } from "./names.ts";
import type { HydfsNode } from "./node.ts";
import { HydfsError, type MergeResult } from "./node_types.ts";
import { gather } from "./read_path.ts";
import { agreedDigest, type DigestAnswer, fileTask, mayDropCopy, participantsOf, planReconcile, type ReconcileAction } from "./reconcile.ts";
import type { RingNode } from "./ring.ts";
import type { ChunkGcResult } from "./store.ts";

/**
 * Chunk GC runs in the maintenance pass at most this often, and at least once per grace period
 * (hydfs.chunk_gc_grace_ms) when that is shorter: a chunk is then gone within about two grace
 * periods of its last use. Each run reads every manifest's chunk list (loaded ones from memory)
 * and lists the chunk folders, so it is not run every 2 s pass.
 */
export const CHUNK_GC_EVERY_MS = 60_000;
/**
 * Most chunk files one GC run unlinks (4 GiB at full 4 MiB chunks). Bounds how long a run keeps
 * this single-threaded node from answering; a bigger backlog is worked off over later runs.
 */
export const CHUNK_GC_MAX_DELETES = 1000;

export type ReconcileOutcome = { deleted: true; confirmed: boolean } | { deleted: false; result: MergeResult };

/**
 * Make every replica of `name` hold the union of all copies, in canonical order. Returns the
 * merged digest and whether every participant confirmed it. 404 for a missing or deleted file
 * (after deleting what stale replicas still held of it).
 */
export async function mergeFile(node: HydfsNode, nameIn: unknown): Promise<MergeResult> {
  const name = validateRemoteName(nameIn);
  node.coordinate(name, "merge");
  const r = await node.reconcile(name);
  if (r.deleted) throw new HydfsError(`merge ${name}: no such file (deleted)`, 404);
  return r.result;
}

/** Run one action of a plan; false (logged) when the participant could not be reached or refused. */
async function runAction(node: HydfsNode, name: string, a: ReconcileAction): Promise<boolean> {
  const replica = node.at(a.node);
  try {
    if (a.kind === "delete") await replica.delete(name, a.floor);
    else if (a.kind === "tombstone") await replica.adopt(name, [], [], a.floor);
    else await replica.adopt(name, a.ops, a.sources, a.floor);
    return true;
  } catch (err) {
    node.log.warn(`merge ${name}: ${a.kind} at ${a.node.host} failed: ${(err as Error).message}`);
    return false;
  }
}

/**
 * merge, and the propagation of deletes (reconcile.ts planReconcile). With `includeSelf`, this
 * node's copy takes part even when it is not a replica (hand-over before GC).
 */
export async function reconcileFile(node: HydfsNode, name: string, includeSelf: boolean): Promise<ReconcileOutcome> {
  node.count("merge");
  const replicas = node.replicas(name);
  const participants = participantsOf(replicas, node.selfNode(), includeSelf);
  // Replicas that already agree (the usual case: writes go to all of them) are confirmed by
  // digests alone; only a disagreement fetches the manifests. Full manifests of a long-appended
  // file cost every replica milliseconds of JSON per merge, which showed up as append latency.
  const agreed = agreedDigest(await gatherDigests(node, name, participants), participants.length);
  if (agreed !== undefined) {
    node.metrics.merges++;
    return { deleted: false, result: { name, digest: agreed, updated: [], replicas: replicas.map((r) => r.host), confirmed: true } };
  }
  const answers = await gather(node, name, participants);
  const plan = planReconcile(replicas, answers);
  if (plan.kind === "missing") throw new HydfsError(`merge ${name}: no such file`, 404);
  let confirmed = answers.length === participants.length;
  const updated: string[] = [];
  // One at a time: a pass moves one file's chunks at a time, which bounds its transfer rate.
  for (const action of plan.actions) {
    if (await runAction(node, name, action)) {
      if (action.kind === "adopt") updated.push(action.node.host);
    } else confirmed = false;
  }
  node.metrics.merges++;
  if (plan.kind === "deleted") return { deleted: true, confirmed };
  return { deleted: false, result: { name, digest: plan.digest, updated, replicas: replicas.map((r) => r.host), confirmed } };
}

/** Every participant's copy in brief; empty when one cannot answer digests (then the merge reads manifests). */
async function gatherDigests(node: HydfsNode, name: string, participants: readonly RingNode[]): Promise<DigestAnswer[]> {
  const replicas = participants.map((r) => node.at(r));
  if (!replicas.every((r) => typeof r.digest === "function")) return [];
  const settled = await Promise.allSettled(replicas.map((r) => r.digest!(name)));
  return settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
}

/**
 * One background pass, one file at a time (which bounds transfer rate): owners merge their
 * dirty files with the other replicas; a copy this node no longer owns is handed to the owners
 * and deleted only once every owner confirmed the merged state.
 */
export async function maintainPass(node: HydfsNode): Promise<void> {
  // Not on a view that may be partial: hand-over and GC of copies judge owners by the ring.
  if (node.maintaining || node.stopped || node.ring.size === 0 || !node.selfId || !node.viewReady) return node.scheduleMaintenance();
  node.maintaining = true;
  try {
    for (const name of node.store.list()) {
      if (node.stopped) return;
      const owners = node.replicas(name);
      const task = fileTask(owners, node.self, node.dirty.has(name));
      if (task === "merge") {
        node.dirty.delete(name);
        const r = await node.reconcile(name).catch((err) => {
          node.log.warn(`background merge of ${name}: ${(err as Error).message}`);
          return undefined;
        });
        const confirmed = r?.deleted ? r.confirmed : r?.result.confirmed;
        if (!confirmed) node.dirty.add(name);
      } else if (task === "handover") {
        const r = await node.reconcile(name, true).catch((err) => {
          node.log.warn(`hand-over of ${name}: ${(err as Error).message}`);
          return undefined;
        });
        // A deleted file: reconcile already deleted this node's stale copy.
        if (!r || r.deleted) continue;
        if (mayDropCopy(r.result.confirmed, r.result.digest, await gather(node, name, owners), owners.length)) {
          node.store.delete(name);
          node.metrics.gcDeleted++;
          node.log.info(`handed ${name} to ${owners.map((o) => o.host).join(", ")} and dropped the local copy`);
        }
      }
    }
    if (!node.stopped) node.maybeCollectChunks(node.env.nowMs());
  } finally {
    node.maintaining = false;
    node.scheduleMaintenance();
  }
}

/**
 * Chunk GC (FileStore.collectChunks), when CHUNK_GC_EVERY_MS (or the grace period, if shorter)
 * has passed since the last run. Returns the run's result, or undefined when it was not due.
 */
export function collectChunksIfDue(node: HydfsNode, nowMs: number): ChunkGcResult | undefined {
  const graceMs = node.cfg.hydfs.chunk_gc_grace_ms;
  if (node.lastChunkGcMs !== 0 && nowMs - node.lastChunkGcMs < Math.min(CHUNK_GC_EVERY_MS, graceMs)) return undefined;
  node.lastChunkGcMs = nowMs;
  try {
    const r = node.store.collectChunks({ nowMs, graceMs, maxDeletes: CHUNK_GC_MAX_DELETES });
    node.metrics.chunksDeleted += r.deleted;
    node.metrics.chunkBytesFreed += r.bytesFreed;
    if (r.deleted > 0) node.log.info(`chunk GC removed ${r.deleted} unreferenced chunks (${r.bytesFreed} bytes)${r.truncated ? "; more next run" : ""}`);
    return r;
  } catch (err) {
    // Nothing is unlinked unless the reference scan completed, so a failure here is only a delay.
    node.log.warn(`chunk GC: ${(err as Error).message}`);
    return undefined;
  }
}
