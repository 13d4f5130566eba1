/**
 * The write path of a coordinator: create and append (the body to every replica, acknowledged at
 * a majority) and delete (a tombstone at every replica). What the answers mean is decided in
 * quorum.ts; a create's single decision per name is run by create_path.ts.
 */
import { FILE_MANIFEST_MAX_BYTES, MAX_CLIENT_ID_CHARS } from "./limits.ts";
import { type AppendOp, type ChunkRef, describeContent } from "./manifest.ts";
import { validateRemoteName } from "./names.ts";
import type { HydfsNode } from "./node.ts";
import { type DeleteResult, HydfsError, type WriteResult } from "./node_types.ts";
import { deleteWaitsForAll, isAck, judgeDelete, judgeWrite, type ReplicaAnswer, retryStoreIfMissing } from "./quorum.ts";
import type { RingNode } from "./ring.ts";
import { CHUNK_BYTES, chunkIdOf, chunkStream, TooLarge } from "./store.ts";
import type { WriteKind } from "./transport.ts";
import { decideCreate } from "./create_path.ts";
import { PushWindow } from "./push_window.ts";

/**
 * Chunks of one upload being stored by replicas at once (memory: this many x 4 MiB on the
 * coordinator). Each replica writes and fdatasyncs them off its event loop (putChunkAsync), so
 * this many syncs per replica overlap on the disk: 3 replicas x 6 in flight kept one shared disk
 * busy (a 4 MiB write + fdatasync alone runs at about 150 MB/s here; 6 at once at about 600).
 */
const WRITE_WINDOW_CHUNKS = 6;

/** Bodies up to this size go to the replicas inside the operation (one round trip, not two). */
export const INLINE_MAX_BYTES = 256 * 1024;

/**
 * Read up to `max` bytes of a body. `complete` when the body ended within them (then `bytes` is
 * all of it); otherwise `stream` yields the whole body, the part already read first.
 */
export async function readHead(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<{ complete: true; bytes: Uint8Array } | { complete: false; stream: ReadableStream<Uint8Array> }> {
  if (!body) return { complete: true, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { complete: true, bytes: Buffer.concat(parts) };
    parts.push(value);
    total += value.length;
    if (total > max) break;
  }
  const stream = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const next = parts.shift();
      if (next) return controller.enqueue(next);
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return { complete: false, stream };
}

/**
 * Resolve once `need` of the promises satisfy `ok`, or once all have settled. Answers still
 * pending at that moment are undefined in the result.
 */
export function settleQuorum<T>(promises: Promise<T>[], need: number, ok: (v: T | undefined) => boolean): Promise<(T | undefined)[]> {
  const answers: (T | undefined)[] = promises.map(() => undefined);
  return new Promise((resolve) => {
    let settled = 0;
    let good = 0;
    if (promises.length === 0) resolve(answers);
    promises.forEach((p, i) =>
      p.then((v) => {
        answers[i] = v;
        settled++;
        if (ok(v)) good++;
        if (good >= need || settled === promises.length) resolve(answers.slice());
      }),
    );
  });
}

/** create or append: stream the body to every replica, acknowledge at a majority. */
export async function coordinateWrite(
  node: HydfsNode,
  kind: WriteKind,
  nameIn: unknown,
  body: ReadableStream<Uint8Array> | null,
  clientId: string,
  seq: number,
): Promise<WriteResult> {
  const name = validateRemoteName(nameIn);
  if (!clientId || clientId.length > MAX_CLIENT_ID_CHARS)
    throw new HydfsError(`client: expected a client id of 1..${MAX_CLIENT_ID_CHARS} characters, got ${JSON.stringify(clientId)}`, 400);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new HydfsError(`seq: expected a non-negative integer, got ${JSON.stringify(seq)}`, 400);
  node.count(kind);
  // This node's copies of the upload's chunks stay pinned against chunk GC until the op is
  // applied here, however long the upload takes.
  const releases: (() => void)[] = [];
  try {
    return await writePinned(node, kind, name, body, clientId, seq, (id) => releases.push(node.store.pinChunks([id])));
  } finally {
    for (const release of releases) release();
  }
}

/** A body as the replicas received it: its chunks, and the bytes themselves when small enough to travel inline. */
interface Upload {
  chunks: ChunkRef[];
  size: number;
  inline: Uint8Array | undefined;
}

/**
 * Read the body. A small one stays in memory and travels inside the operation; a large one
 * streams chunk by chunk to the `reachable` replicas (a replica that fails is dropped from it).
 */
async function receiveBody(
  node: HydfsNode,
  what: string,
  body: ReadableStream<Uint8Array> | null,
  reachable: Set<RingNode>,
  need: number,
  pin: (chunkId: string) => void,
): Promise<Upload> {
  const maxBytes = node.cfg.hydfs.max_body_bytes;
  const head = await readHead(body, INLINE_MAX_BYTES);
  if (head.complete) {
    // A small body travels inside the operation itself: one round trip per replica, not two.
    if (head.bytes.length > maxBytes) throw new HydfsError(`${what}: body over the limit of ${maxBytes} bytes`, 413);
    const size = head.bytes.length;
    return { inline: head.bytes, size, chunks: size > 0 ? [{ id: chunkIdOf(head.bytes), size }] : [] };
  }
  // Large bodies stream chunk by chunk; up to WRITE_WINDOW_CHUNKS chunks are being stored by
  // the replicas while the next is read, so disk syncs overlap with the transfer.
  const replicaCount = reachable.size;
  const window = new PushWindow(WRITE_WINDOW_CHUNKS);
  const push = async (bytes: Uint8Array, id: string) => {
    await Promise.all(
      [...reachable].map(async (r) => {
        try {
          await node.at(r).putChunk(id, bytes);
        } catch (err) {
          node.log.warn(`${what}: replica ${r.host} failed: ${(err as Error).message}`);
          reachable.delete(r);
        }
      }),
    );
    if (reachable.size < need) throw new HydfsError(`${what}: only ${reachable.size} of ${replicaCount} replicas reachable, need ${need}`, 503);
  };
  // Chunk buffers come back once every replica answered for them: the coordinator's memory stays
  // at about WRITE_WINDOW_CHUNKS + 1 buffers, not a trail of 4 MiB garbage waiting for a GC.
  const spare: Uint8Array[] = [];
  const sink = async (bytes: Uint8Array) => {
    const id = chunkIdOf(bytes);
    pin(id);
    await window.add(() => push(bytes, id).finally(() => spare.push(new Uint8Array(bytes.buffer))));
    return { id, size: bytes.length };
  };
  let received: { chunks: ChunkRef[]; size: number };
  try {
    received = await chunkStream(head.stream, sink, maxBytes, () => spare.pop() ?? new Uint8Array(CHUNK_BYTES));
  } catch (err) {
    // Nothing of this upload may still be running when it fails (its pins are released next).
    await window.drain().catch(() => {});
    if (err instanceof TooLarge) throw new HydfsError(`${what}: ${err.message}`, 413);
    throw err;
  }
  await window.drain();
  return { ...received, inline: undefined };
}

async function writePinned(
  node: HydfsNode,
  kind: WriteKind,
  name: string,
  body: ReadableStream<Uint8Array> | null,
  clientId: string,
  seq: number,
  pin: (chunkId: string) => void,
): Promise<WriteResult> {
  const { replicas, need } = node.coordinate(name, kind);
  const reachable = new Set(replicas);
  const { chunks, size, inline } = await receiveBody(node, `${kind} ${name}`, body, reachable, need, pin);
  const op: AppendOp = { opId: node.env.newId(), clientId, seq, tsMs: node.env.nowMs(), chunks, size, kind };
  const targets = [...reachable];
  if (kind === "create") return decideCreate(node, name, op, inline, replicas, targets, need);
  return appendQuorum(node, name, op, inline, replicas, targets, need);
}

/** Apply the op at `r`; a failure to reach it is the answer "error". */
export async function applyAt(
  node: HydfsNode,
  r: RingNode,
  kind: WriteKind,
  name: string,
  op: AppendOp,
  storeIfMissing: boolean,
  inline?: Uint8Array,
): Promise<ReplicaAnswer> {
  try {
    return await node.at(r).apply(kind, name, op, storeIfMissing, inline);
  } catch (err) {
    node.log.warn(`${kind} ${name} at ${r.host}: ${(err as Error).message}`);
    return "error";
  }
}

async function abortAt(node: HydfsNode, r: RingNode, name: string, opId: string): Promise<void> {
  try {
    await node.at(r).abort(name, opId);
  } catch (err) {
    node.log.warn(`abort of ${opId} of ${name} at ${r.host}: ${(err as Error).message}`);
  }
}

/** An append at every target, acknowledged at a majority (quorum.ts judgeWrite). */
async function appendQuorum(
  node: HydfsNode,
  name: string,
  op: AppendOp,
  inline: Uint8Array | undefined,
  replicas: RingNode[],
  targets: RingNode[],
  need: number,
): Promise<WriteResult> {
  // Acknowledge at a majority; a slower replica finishes in the background (or merge repairs it).
  const pending = targets.map((r) => applyAt(node, r, "append", name, op, false, inline));
  let answers = await settleQuorum(pending, need, isAck);
  if (retryStoreIfMissing(answers, need)) {
    const first = answers;
    answers = await Promise.all(
      targets.map((r, i) => (first[i] === "no_such_file" ? applyAt(node, r, "append", name, op, true, inline) : Promise.resolve(first[i]))),
    );
  }
  const verdict = judgeWrite(answers, need);
  const abort = (at: number[]) => Promise.all(at.map((i) => abortAt(node, targets[i]!, name, op.opId)));
  switch (verdict.kind) {
    case "conflict": {
      // The (client, seq) names other bytes on some replica: nothing is written. Replicas that
      // applied this op take it back, so the file stays what the first use made it.
      await abort(verdict.abortAt);
      const holders = verdict.holders.map((i) => targets[i]!.host);
      throw new HydfsError(
        `client ${op.clientId} seq ${op.seq} of ${name} was already used for different bytes (this ${describeContent(op)}; ${holders.join(", ")} hold other content under that client and seq); nothing was written: send new bytes with a new seq`,
        409,
      );
    }
    case "acked":
      node.failpointBeforeAck();
      node.metrics.bytesWritten += op.size;
      node.dirty.add(name);
      // A replica answering after the majority may still report a reuse of (client, seq): it
      // cannot undo this acknowledgement (README: the first use reached only that replica and was
      // never acknowledged), but it is logged and the replicas are merged at once.
      void Promise.all(pending).then((all) => {
        if (!all.includes("conflict")) return;
        node.log.warn(`append ${name}: client ${op.clientId} seq ${op.seq} was acknowledged, then a slower replica reported other content under it; merging`);
        void node.reconcile(name).catch((err) => node.log.warn(`merge of ${name}: ${(err as Error).message}`));
      });
      return { name, size: op.size, replicas: replicas.map((r) => r.host), acked: verdict.acked.map((i) => targets[i]!.host), duplicate: verdict.duplicate };
    case "full":
      await abort(verdict.abortAt);
      throw new HydfsError(
        `append ${name}: the file's manifest reached its limit of ${FILE_MANIFEST_MAX_BYTES} bytes (FILE_MANIFEST_MAX_BYTES); nothing was written: append to a new file`,
        413,
      );
    case "no_such_file":
      // "No such file" only when a quorum of the replicas says so; fewer is a 503 (retryable).
      throw new HydfsError(`append ${name}: no such file (create it first)`, 404);
    case "unavailable":
      throw new HydfsError(`append ${name}: only ${verdict.acked} of ${replicas.length} replicas acknowledged, need ${need}`, 503);
  }
}

/**
 * Delete a file: every replica records a tombstone and drops its copy. Answers once a majority
 * confirmed and one of them had a copy; before a 404 it waits for every replica (each call is
 * bounded by request_timeout_ms), so a file held by one replica only is still found.
 */
export async function coordinateDelete(node: HydfsNode, nameIn: unknown): Promise<DeleteResult> {
  const name = validateRemoteName(nameIn);
  node.count("delete");
  const { replicas, need } = node.coordinate(name, "delete");
  const atMs = node.env.nowMs();
  const tell = (r: RingNode) =>
    node
      .at(r)
      .delete(name, atMs)
      .catch((err) => {
        node.log.warn(`delete ${name} at ${r.host}: ${(err as Error).message}`);
        return undefined;
      });
  // The other ring nodes are told too, best effort and not waited for: one may still hold a
  // copy from before a ring change, and its tombstone keeps that copy from coming back.
  for (const n of node.ring.nodes) if (!replicas.includes(n)) void tell(n);
  const pending = replicas.map(tell);
  let answers = await settleQuorum(pending, need, (a) => a !== undefined);
  if (deleteWaitsForAll(answers)) answers = await Promise.all(pending);
  const verdict = judgeDelete(answers, need);
  if (verdict.kind === "unavailable")
    throw new HydfsError(`delete ${name}: only ${verdict.confirmed} of ${replicas.length} replicas answered, need ${need}`, 503);
  if (verdict.kind === "missing") throw new HydfsError(`delete ${name}: no such file`, 404);
  return { name, deleted: true, replicas: verdict.confirmed.map((i) => `${replicas[i]!.host}:${replicas[i]!.hydfsPort}`) };
}
