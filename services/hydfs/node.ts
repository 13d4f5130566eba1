/**
 * A HyDFS node: it coordinates client requests for any file and serves as a replica for the files
 * the ring gives it. It follows the ring from membership and, in the background, merges its
 * files with their other replicas, hands copies to new owners and drops copies that no longer
 * belong to it (only after the owners confirm theirs).
 *
 * Consistency: writes go to all replicas of a file and are acknowledged at a majority (2 of 3).
 * Reads ask every replica, need a majority of answers and return the merge of what they find, so
 * any write acknowledged before a read starts is visible to it, whoever wrote and through
 * whichever coordinator (read-my-writes and more). Replicas that differed are repaired afterwards.
 *
 * Delete: every replica records a durable tombstone (store.ts) and drops its copy; acknowledged
 * at a majority. Reads and merges take the newest tombstone any participant reports and ignore
 * every op stamped at or before it, so a replica that missed the delete cannot bring the file
 * back; merge then deletes that stale copy too.
 *
 * Input from the wire is bounded here, for calls from peers and from this node alike: op
 * timestamps and tombstones may be at most MAX_CLOCK_SKEW_MS after this node's clock
 * (limits.ts), an op's content is checked against what its (clientId, seq) already stored, and
 * chunks are fetched only from hydfsd of the current ring, never from an address a caller names.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeConfig } from "../node_config.ts";
import type { Logger } from "../shared/log.ts";
import type { WatchedMember } from "../member/watch.ts";
import { checkWireTime, FILE_MANIFEST_MAX_BYTES, MAX_CLIENT_ID_CHARS, WireValueError } from "./limits.ts";
import { type AcceptReply, type Ballot, CreateProposer, onAccept, onPrepare, type PrepareReply, type ProposerSend, roundBackoffMs } from "./create_decree.ts";
import { type AppendOp, type ChunkRef, describeContent, liveMerge, manifestDigest, mergeManifests, newestFloor, opKey, opsAfter, sameContent, totalSize } from "./manifest.ts";
import { resolveInside, validateRemoteName } from "./names.ts";
import { ClusterHttp } from "../shared/http.ts";
import { PeerClient, PeerError } from "./peers.ts";
import { Ring, type RingNode } from "./ring.ts";
import { type ChunkGcResult, chunkIdOf, chunkStream, FileStore, TooLarge } from "./store.ts";

export class HydfsError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export type WriteKind = "create" | "append";

export interface WriteResult {
  name: string;
  size: number;
  replicas: string[];
  acked: string[];
  duplicate: boolean;
}

/** What `POST /delete` answers: the replicas (host:port) that recorded the tombstone. */
export interface DeleteResult {
  name: string;
  deleted: true;
  replicas: string[];
}

/** One participant's answer to a manifest request: its ops (undefined = no copy) and tombstone. */
interface ManifestAnswer {
  node: RingNode;
  ops: AppendOp[] | undefined;
  deletedAtMs: number | undefined;
}

export interface MergeResult {
  name: string;
  digest: string;
  updated: string[];
  replicas: string[];
  confirmed: boolean;
}

export interface HydfsMetrics {
  ops: Record<string, number>;
  bytesWritten: number;
  bytesRead: number;
  rereplicatedBytes: number;
  rereplicationMs: number;
  merges: number;
  gcDeleted: number;
  /** Chunk files removed by chunk GC, and their bytes. */
  chunksDeleted: number;
  chunkBytesFreed: number;
}

/**
 * A replica's answer to a create or append. `conflict`: its (clientId, seq) is stored there with
 * other content; `full`: the file's manifest is at FILE_MANIFEST_MAX_BYTES.
 */
export type ReplicaAnswer = "ok" | "duplicate" | "exists" | "deleted_later" | "no_such_file" | "conflict" | "full" | "error";

/** A caller-named chunk source that is not a hydfsd of the current ring. */
export function foreignSources(sources: readonly { host: string; hydfsPort: number }[], ring: readonly Pick<RingNode, "host" | "hydfsPort">[]): { host: string; hydfsPort: number }[] {
  return sources.filter((s) => !ring.some((n) => n.host === s.host && n.hydfsPort === s.hydfsPort));
}

/**
 * Rounds one create's proposer tries before it answers 503 (create_decree.ts). Rounds fail only
 * while other creates of the same name compete or replicas are unreachable; with the random
 * backoff between rounds (roundBackoffMs, 10 ms doubling to 500 ms) this is a few seconds.
 */
const CREATE_MAX_ROUNDS = 12;

/** Chunks of one upload being stored by replicas at once (memory: this many x 4 MiB). */
const WRITE_WINDOW_CHUNKS = 3;
/** Chunks of one download fetched ahead of the reader. */
const READ_AHEAD_CHUNKS = 3;

/** Bodies up to this size go to the replicas inside the operation (one round trip, not two). */
export const INLINE_MAX_BYTES = 256 * 1024;

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

/**
 * Read up to `max` bytes of a body. `complete` when the body ended within them (then `bytes` is
 * all of it); otherwise `stream` yields the whole body, the part already read first.
 */
export async function readHead(body: ReadableStream<Uint8Array> | null, max: number): Promise<{ complete: true; bytes: Uint8Array } | { complete: false; stream: ReadableStream<Uint8Array> }> {
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

export class HydfsNode {
  ring = new Ring([]);
  selfId: string | undefined;
  readonly metrics: HydfsMetrics = { ops: {}, bytesWritten: 0, bytesRead: 0, rereplicatedBytes: 0, rereplicationMs: 0, merges: 0, gcDeleted: 0, chunksDeleted: 0, chunkBytesFreed: 0 };
  private readonly peers: PeerClient;
  /** Signs every call this node makes (peers, and the member watch in start.ts). */
  readonly http: ClusterHttp;
  private readonly localDir: string;
  private maintenanceTimer?: Timer;
  /** When the pending background pass is due (performance.now() ms). */
  private maintenanceDueMs = 0;
  private maintaining = false;
  /** When chunk GC last ran (0: not since start, so the first pass runs it). */
  private lastChunkGcMs = 0;
  private stopped = false;
  /** Writes this node coordinated that reached their quorum (for hydfs.failpoint). */
  private quorumWrites = 0;
  /** Files whose replicas may differ: written here, adopted, or all of them after a ring change. */
  private readonly dirty = new Set<string>();

  constructor(
    readonly cfg: NodeConfig,
    readonly store: FileStore,
    private readonly log: Logger,
  ) {
    this.http = new ClusterHttp(cfg.cluster_secret);
    this.peers = new PeerClient({ http: this.http, timeoutMs: cfg.hydfs.request_timeout_ms });
    this.localDir = cfg.hydfs.local_files_dir || join(cfg.data_dir, "local");
  }

  // ---- ring ----------------------------------------------------------------------------------

  setMembers(live: WatchedMember[]): void {
    const next = new Ring(live.filter((m) => m.ports?.hydfs).map((m) => ({ id: m.id, hydfsPort: m.ports.hydfs })));
    const changed = !next.equals(this.ring);
    this.ring = next;
    this.selfId = next.nodes.find((n) => this.isSelf(n))?.id;
    if (changed) {
      this.log.info(`ring now has ${next.size} nodes`);
      for (const name of this.store.list()) this.dirty.add(name);
      this.scheduleMaintenance(200);
    }
  }

  isSelf(node: Pick<RingNode, "host" | "hydfsPort">): boolean {
    return node.host === this.cfg.host && node.hydfsPort === this.cfg.ports.hydfs;
  }

  /**
   * Whether this node may coordinate: its memberd has joined and says its member list is current
   * (see README "Readiness"). Until then a ring it computes may be partial, and a write
   * acknowledged on it or a "no such file" read from it could be false; client calls get 503.
   * Replica-side calls (/internal/*) are served regardless: they touch only this node's copies.
   */
  viewReady = false;

  setViewReady(ready: boolean): void {
    if (ready !== this.viewReady) this.log.info(ready ? "membership view current: coordinating client requests" : "membership view not current: refusing client requests (503) until it is");
    // The background pass was skipped while the view was partial: run it soon, as after a ring change.
    if (ready && !this.viewReady) this.scheduleMaintenance(200);
    this.viewReady = ready;
  }

  /**
   * The replicas of a file, as the coordinator of a client call sees them, and the quorum: a
   * majority of replica_count (2 of 3), never of however many nodes happen to be known. Too few
   * known nodes, or a view that is not current, is a 503 with a message, never a weak answer.
   */
  coordinate(name: string, what: string): { replicas: RingNode[]; need: number } {
    if (!this.viewReady) throw new HydfsError(`${what} ${name}: this node (${this.cfg.host}) has not joined the cluster yet or its member list is not current; retry, or use another node`, 503);
    const replicas = this.replicas(name);
    const need = HydfsNode.quorum(this.cfg.hydfs.replica_count);
    if (replicas.length < need) {
      throw new HydfsError(`${what} ${name}: only ${replicas.length} live HyDFS node(s) known, need ${need} of the ${this.cfg.hydfs.replica_count} replicas (hydfs.replica_count) to answer`, 503);
    }
    return { replicas, need };
  }

  replicas(name: string): RingNode[] {
    const replicas = this.ring.replicasFor(name, this.cfg.hydfs.replica_count);
    if (replicas.length === 0) throw new HydfsError("no live HyDFS nodes known yet (is memberd running?)", 503);
    return replicas;
  }

  static quorum(n: number): number {
    return Math.floor(n / 2) + 1;
  }

  private count(op: string): void {
    this.metrics.ops[op] = (this.metrics.ops[op] ?? 0) + 1;
  }

  // ---- writes --------------------------------------------------------------------------------

  /** create or append: stream the body to every replica, acknowledge at a majority. */
  async write(kind: WriteKind, nameIn: unknown, body: ReadableStream<Uint8Array> | null, clientId: string, seq: number): Promise<WriteResult> {
    const name = validateRemoteName(nameIn);
    if (!clientId || clientId.length > MAX_CLIENT_ID_CHARS) throw new HydfsError(`client: expected a client id of 1..${MAX_CLIENT_ID_CHARS} characters, got ${JSON.stringify(clientId)}`, 400);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new HydfsError(`seq: expected a non-negative integer, got ${JSON.stringify(seq)}`, 400);
    this.count(kind);
    // This node's copies of the upload's chunks stay pinned against chunk GC until the op is
    // applied here, however long the upload takes.
    const releases: (() => void)[] = [];
    try {
      return await this.writePinned(kind, name, body, clientId, seq, (id) => releases.push(this.store.pinChunks([id])));
    } finally {
      for (const release of releases) release();
    }
  }

  private async writePinned(kind: WriteKind, name: string, body: ReadableStream<Uint8Array> | null, clientId: string, seq: number, pin: (chunkId: string) => void): Promise<WriteResult> {
    const { replicas, need } = this.coordinate(name, kind);
    const reachable = new Set(replicas);
    const maxBytes = this.cfg.hydfs.max_body_bytes;
    const head = await readHead(body, INLINE_MAX_BYTES);
    let chunks: ChunkRef[];
    let size: number;
    let inline: Uint8Array | undefined;
    if (head.complete) {
      // A small body travels inside the operation itself: one round trip per replica, not two.
      if (head.bytes.length > maxBytes) throw new HydfsError(`${kind} ${name}: body over the limit of ${maxBytes} bytes`, 413);
      inline = head.bytes;
      size = inline.length;
      chunks = size > 0 ? [{ id: chunkIdOf(inline), size }] : [];
    } else {
      // Large bodies stream chunk by chunk; up to WRITE_WINDOW_CHUNKS chunks are being stored by
      // the replicas while the next is read, so disk syncs overlap with the transfer.
      const inFlight = new Set<Promise<void>>();
      let failure: Error | undefined;
      const push = async (bytes: Uint8Array, id: string) => {
        await Promise.all(
          [...reachable].map(async (r) => {
            try {
              if (this.isSelf(r)) this.store.putChunk(bytes, id);
              else await this.peers.putChunk(r, id, bytes);
            } catch (err) {
              this.log.warn(`${kind} ${name}: replica ${r.host} failed: ${(err as Error).message}`);
              reachable.delete(r);
            }
          }),
        );
        if (reachable.size < need) throw new HydfsError(`${kind} ${name}: only ${reachable.size} of ${replicas.length} replicas reachable, need ${need}`, 503);
      };
      const sink = async (bytes: Uint8Array) => {
        if (failure) throw failure;
        const id = chunkIdOf(bytes);
        pin(id);
        while (inFlight.size >= WRITE_WINDOW_CHUNKS) await Promise.race(inFlight);
        const p: Promise<void> = push(bytes, id)
          .catch((err) => {
            failure ??= err as Error;
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
        return { id, size: bytes.length };
      };
      try {
        ({ chunks, size } = await chunkStream(head.stream, sink, maxBytes));
        await Promise.all(inFlight);
      } catch (err) {
        await Promise.all(inFlight);
        if (err instanceof TooLarge) throw new HydfsError(`${kind} ${name}: ${err.message}`, 413);
        throw err;
      }
      if (failure) throw failure;
    }
    const op: AppendOp = { opId: randomUUID(), clientId, seq, tsMs: Date.now(), chunks, size, kind };
    const targets = [...reachable];
    if (kind === "create") return this.decideCreate(name, op, inline, replicas, targets, need);
    const isAck = (a: ReplicaAnswer | undefined) => a === "ok" || a === "duplicate";
    // Acknowledge at a majority; a slower replica finishes in the background (or merge repairs it).
    const pending = targets.map((r) => this.applyAt(r, kind, name, op, false, inline));
    let answers = await settleQuorum(pending, need, isAck);
    if (answers.filter(isAck).length < need) {
      // A replica that has not received the file yet (re-replication in progress) stores the
      // append anyway once another replica proved the file exists; merge unifies them later.
      const exists = answers.some(isAck);
      if (exists && answers.includes("no_such_file")) {
        answers = await Promise.all(targets.map((r, i) => (answers[i] === "no_such_file" ? this.applyAt(r, kind, name, op, true, inline) : Promise.resolve(answers[i]))));
      }
    }
    const acked = targets.filter((_, i) => isAck(answers[i]));
    if (answers.includes("conflict")) {
      // The (client, seq) names other bytes on some replica: nothing is written. Replicas that
      // applied this op take it back, so the file stays what the first use made it.
      await Promise.all(targets.filter((_, i) => answers[i] === "ok").map((r) => this.abortOp(r, name, op.opId)));
      const holders = targets.filter((_, i) => answers[i] === "conflict").map((r) => r.host);
      throw new HydfsError(
        `client ${clientId} seq ${seq} of ${name} was already used for different bytes (this ${describeContent(op)}; ${holders.join(", ")} hold other content under that client and seq); nothing was written: send new bytes with a new seq`,
        409,
      );
    }
    if (acked.length >= need) {
      this.failpointBeforeAck();
      this.metrics.bytesWritten += size;
      this.dirty.add(name);
      // A replica answering after the majority may still report a reuse of (client, seq): it
      // cannot undo this acknowledgement (README: the first use reached only that replica and was
      // never acknowledged), but it is logged and the replicas are merged at once.
      void Promise.all(pending).then((all) => {
        if (!all.includes("conflict")) return;
        this.log.warn(`${kind} ${name}: client ${clientId} seq ${seq} was acknowledged, then a slower replica reported other content under it; merging`);
        void this.reconcile(name).catch((err) => this.log.warn(`merge of ${name}: ${(err as Error).message}`));
      });
      return { name, size, replicas: replicas.map((r) => r.host), acked: acked.map((r) => r.host), duplicate: answers.includes("duplicate") };
    }
    if (answers.includes("full")) {
      await Promise.all(targets.filter((_, i) => answers[i] === "ok").map((r) => this.abortOp(r, name, op.opId)));
      throw new HydfsError(`append ${name}: the file's manifest reached its limit of ${FILE_MANIFEST_MAX_BYTES} bytes (FILE_MANIFEST_MAX_BYTES); nothing was written: append to a new file`, 413);
    }
    // "No such file" only when a quorum of the replicas says so; fewer is a 503 (retryable).
    if (answers.filter((a) => a === "no_such_file").length >= need && !answers.some(isAck)) {
      throw new HydfsError(`append ${name}: no such file (create it first)`, 404);
    }
    throw new HydfsError(`${kind} ${name}: only ${acked.length} of ${replicas.length} replicas acknowledged, need ${need}`, 503);
  }

  // ---- create: one decision per name (create_decree.ts) ----------------------------------------

  /**
   * Decide who creates `name` with the replicas (single-decree Paxos), then store the chosen
   * create on them ("learn") and answer: this client's create won (or is its own retry), or the
   * name exists and holds another client's bytes (409, truthfully: the winner is stored at a
   * majority before the loser is told). Chunks of a large body are already on the replicas.
   */
  private async decideCreate(name: string, op: AppendOp, inline: Uint8Array | undefined, replicas: RingNode[], targets: RingNode[], need: number): Promise<WriteResult> {
    const byKey = new Map(targets.map((r) => [`${r.host}:${r.hydfsPort}`, r]));
    const proposer = new CreateProposer(op, [...byKey.keys()], need, `${this.cfg.host}:${this.cfg.ports.hydfs}/${randomUUID().slice(0, 8)}`);
    let last = "";
    for (let round = 1; round <= CREATE_MAX_ROUNDS; round++) {
      await this.runDecreeRound(name, proposer, proposer.nextRound(), byKey, op, inline);
      const outcome = proposer.outcome;
      if (outcome?.kind === "deleted_later") {
        throw new HydfsError(`create ${name}: the name was deleted at ${outcome.floor}, not before this create's timestamp ${op.tsMs} (coordinator clocks disagree); retry the create`, 409);
      }
      if (outcome?.kind === "chosen") return this.learnCreate(name, op, outcome.op, inline, replicas, targets, need);
      last = outcome?.reason ?? "no answer";
      await Bun.sleep(roundBackoffMs(round, Math.random()));
    }
    throw new HydfsError(`create ${name}: no decision after ${CREATE_MAX_ROUNDS} rounds (${last}); other creates of the name compete or replicas are unreachable: retry`, 503);
  }

  /** Send one round's messages to the replicas and feed every answer to the proposer until the round ends. */
  private runDecreeRound(name: string, proposer: CreateProposer, first: ProposerSend[], byKey: Map<string, RingNode>, own: AppendOp, inline: Uint8Array | undefined): Promise<void> {
    return new Promise((resolve) => {
      let pending = 0;
      const dispatch = (sends: ProposerSend[]) => {
        for (const s of sends) {
          pending++;
          const r = byKey.get(s.to)!;
          // An accept of this coordinator's own small create carries its bytes, so acceptors hold them.
          const data = s.msg.type === "accept" && s.msg.op.opId === own.opId ? inline : undefined;
          this.decreeCall(r, name, s.msg, data)
            .then(
              (reply) => dispatch(s.msg.type === "accept" ? proposer.onAcceptReply(s.to, reply as AcceptReply) : proposer.onPrepareReply(s.to, reply as PrepareReply)),
              (err) => {
                this.log.warn(`create ${name}: ${s.msg.type} at ${r.host}: ${(err as Error).message}`);
                dispatch(proposer.unreachable(s.to, s.msg.ballot));
              },
            )
            .finally(() => {
              pending--;
              if (proposer.outcome || pending === 0) resolve();
            });
        }
      };
      dispatch(first);
    });
  }

  private decreeCall(r: RingNode, name: string, msg: ProposerSend["msg"], data: Uint8Array | undefined): Promise<PrepareReply | AcceptReply> {
    if (this.isSelf(r)) {
      return Promise.resolve(msg.type === "prepare" ? this.prepareLocal(name, msg.ballot) : this.acceptLocal(name, msg.ballot, msg.op, data));
    }
    return msg.type === "prepare" ? this.peers.prepare(r, name, msg.ballot) : this.peers.accept(r, name, msg.ballot, msg.op, data);
  }

  /** Store the chosen create on the replicas (a majority before anyone is answered), then answer. */
  private async learnCreate(name: string, own: AppendOp, chosen: AppendOp, inline: Uint8Array | undefined, replicas: RingNode[], targets: RingNode[], need: number): Promise<WriteResult> {
    let data = chosen.opId === own.opId ? inline : undefined;
    if (!data && chosen.chunks.length === 1 && chosen.size <= INLINE_MAX_BYTES) {
      // Another coordinator's small create: its bytes went to the acceptors with its accept.
      data = await this.fetchChunk(chosen.chunks[0]!.id, targets).catch(() => undefined);
    }
    const isLearned = (a: ReplicaAnswer | undefined) => a === "ok" || a === "duplicate";
    const pending = targets.map((r) => this.applyAt(r, "create", name, chosen, false, data));
    const answers = await settleQuorum(pending, need, isLearned);
    const learned = targets.filter((_, i) => isLearned(answers[i]));
    if (learned.length < need) {
      throw new HydfsError(`create ${name}: decided, but stored on only ${learned.length} of ${replicas.length} replicas, need ${need}; retry with the same client and seq`, 503);
    }
    this.failpointBeforeAck();
    this.dirty.add(name);
    const result = { name, size: chosen.size, replicas: replicas.map((r) => r.host), acked: learned.map((r) => r.host) };
    if (chosen.opId === own.opId) {
      this.metrics.bytesWritten += chosen.size;
      return { ...result, duplicate: false };
    }
    if (opKey(chosen) === opKey(own)) {
      // This client's own create, decided in an earlier attempt (a retry through any coordinator).
      if (sameContent(chosen, own)) return { ...result, duplicate: true };
      throw new HydfsError(`client ${own.clientId} seq ${own.seq} of ${name} was already used for different bytes (this ${describeContent(own)}; the stored create is a ${describeContent(chosen)}); nothing was written: send new bytes with a new seq`, 409);
    }
    throw new HydfsError(`create ${name}: a file with that name already exists (created by client ${chosen.clientId})`, 409);
  }

  /** hydfs.failpoint `crash_before_ack:N` (tests only): die like a SIGKILL after the Nth quorum, before answering. */
  private failpointBeforeAck(): void {
    const m = /^crash_before_ack:(\d+)$/.exec(this.cfg.hydfs.failpoint);
    if (m && ++this.quorumWrites === Number(m[1])) {
      this.log.error(`failpoint ${this.cfg.hydfs.failpoint}: exiting before the answer`);
      process.exit(137);
    }
  }

  /** The create of this replica's live copy of `name`, if it has one. */
  private storedCreate(name: string): AppendOp | undefined {
    return this.store.ops(name)?.find((o) => o.kind === "create");
  }

  /** Acceptor, phase 1 (from a peer's coordinator or this node's own). */
  prepareLocal(name: string, ballot: Ballot): PrepareReply {
    const before = this.store.decree(name);
    const { state, reply } = onPrepare(before, ballot, this.storedCreate(name), this.store.deletedAt(name));
    if (state !== before) this.store.setDecree(name, state);
    return reply;
  }

  /** Acceptor, phase 2. A small create's bytes come along and are stored before it is accepted. */
  acceptLocal(name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): AcceptReply {
    this.checkTime(op.tsMs, `accept of create ${name}: op tsMs`);
    if (op.kind !== "create") throw new HydfsError(`accept of create ${name}: op kind ${JSON.stringify(op.kind)}: expected "create"`, 400);
    if (data && data.length > 0) {
      if (op.chunks.length !== 1 || op.chunks[0]!.size !== data.length) throw new HydfsError(`accept of create ${name}: inline data of ${data.length} bytes does not match the op's chunks`, 400);
      try {
        this.store.putChunk(data, op.chunks[0]!.id);
      } catch (err) {
        throw new HydfsError(`accept of create ${name}: ${(err as Error).message}`, 400);
      }
    }
    const before = this.store.decree(name);
    const { state, reply } = onAccept(before, ballot, op, this.storedCreate(name));
    if (state !== before) this.store.setDecree(name, state);
    return reply;
  }

  private async applyAt(r: RingNode, kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean, inline?: Uint8Array): Promise<ReplicaAnswer> {
    try {
      if (this.isSelf(r)) {
        if (inline && inline.length > 0) this.store.putChunk(inline, op.chunks[0]!.id);
        return this.applyLocal(kind, name, op, storeIfMissing);
      }
      const path = `/internal/${kind}?name=${encodeURIComponent(name)}&store_if_missing=${storeIfMissing}`;
      const res = inline
        ? await this.peers.json<{ result: ReplicaAnswer }>(r, `${path}&inline=1`, { method: "POST", msgpack: { op, data: inline } })
        : await this.peers.json<{ result: ReplicaAnswer }>(r, path, { method: "POST", json: op });
      return res.result;
    } catch (err) {
      if (err instanceof PeerError && (err.status === 409 || err.status === 404 || err.status === 413)) return err.body?.result ?? "error";
      this.log.warn(`${kind} ${name} at ${r.host}: ${(err as Error).message}`);
      return "error";
    }
  }

  /**
   * Replica side of create/append. The op's timestamp comes from the wire: one more than
   * MAX_CLOCK_SKEW_MS after this node's clock is refused (HydfsError 400), as it would sort after
   * every later write and outlive a delete.
   */
  applyLocal(kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean): ReplicaAnswer {
    this.checkTime(op.tsMs, `${kind} ${name}: op tsMs`);
    if (kind !== op.kind) throw new HydfsError(`${kind} ${name}: op kind ${JSON.stringify(op.kind)}: expected ${JSON.stringify(kind)}`, 400);
    if (kind === "create") {
      const r = this.store.create(name, op);
      if (r === "created") {
        this.dirty.add(name);
        return "ok";
      }
      if (r === "exists" || r === "deleted_later" || r === "duplicate") return r;
      if ("conflict" in r) return "conflict";
      return "error";
    }
    let r = this.store.append(name, op);
    // Never on a deleted name: the replica that "proved" the file exists may be a stale one that
    // missed the delete, and storing here would bring the file back.
    if (r === "no_such_file" && storeIfMissing && this.store.deletedAt(name) === undefined) {
      this.store.replaceOps(name, [op]);
      r = "applied";
    }
    if (r === "applied") this.dirty.add(name);
    if (typeof r === "object") return "conflict" in r ? "conflict" : "error";
    return r === "applied" ? "ok" : r === "manifest_full" ? "full" : r;
  }

  /** A timestamp from the wire, bounded by this node's clock (limits.ts); 400 otherwise. */
  private checkTime(value: unknown, what: string): number {
    try {
      return checkWireTime(value, Date.now(), what);
    } catch (err) {
      if (err instanceof WireValueError) throw new HydfsError(err.message, 400);
      throw err;
    }
  }

  private async abortOp(r: RingNode, name: string, opId: string): Promise<void> {
    try {
      if (this.isSelf(r)) this.abortLocal(name, opId);
      else await this.peers.json(r, `/internal/abort?name=${encodeURIComponent(name)}&op=${encodeURIComponent(opId)}`, { method: "POST" });
    } catch (err) {
      this.log.warn(`abort of ${opId} of ${name} at ${r.host}: ${(err as Error).message}`);
    }
  }

  /**
   * Undo an append this node coordinated and then refused (a conflict or a full manifest): it is
   * taken out of the manifest, or the copy goes if it was the copy's only op. A create is never
   * undone (creates are decided once, create_decree.ts). Op ids are unique per attempt, so only
   * that attempt's op is touched; false when it is not here.
   */
  abortLocal(name: string, opId: string): boolean {
    const ops = this.store.ops(name);
    const op = ops?.find((o) => o.opId === opId);
    if (!ops || !op) return false;
    if (ops.length === 1) {
      this.store.delete(name);
      return true;
    }
    if (op.kind === "create") return false;
    this.store.replaceOps(
      name,
      ops.filter((o) => o !== op),
    );
    return true;
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** Ops and tombstone of every participant that answered (ops undefined = answered, no copy). */
  private async gather(name: string, participants: RingNode[]): Promise<ManifestAnswer[]> {
    const settled = await Promise.allSettled(
      participants.map((r) => (this.isSelf(r) ? Promise.resolve({ ops: this.store.ops(name)?.slice(), deletedAtMs: this.store.deletedAt(name) }) : this.peers.manifest(r, name))),
    );
    const out: ManifestAnswer[] = [];
    settled.forEach((s, i) => {
      if (s.status === "fulfilled") out.push({ node: participants[i]!, ...s.value });
      else this.log.warn(`manifest of ${name} from ${participants[i]!.host}: ${(s.reason as Error).message}`);
    });
    return out;
  }

  /**
   * The file as a majority of its replicas hold it (404 when missing or deleted). Replicas found
   * to differ (ops or tombstone) are repaired by a merge off the request path.
   */
  private async quorumView(name: string, what: string): Promise<{ ops: AppendOp[]; holders: RingNode[] }> {
    const { replicas, need } = this.coordinate(name, what);
    const answers = await this.gather(name, replicas);
    if (answers.length < need) throw new HydfsError(`${what} ${name}: only ${answers.length} of ${replicas.length} replicas answered, need ${need}`, 503);
    const floor = newestFloor(answers);
    const ops = liveMerge(
      answers.flatMap((a) => (a.ops ? [a.ops] : [])),
      floor,
    );
    const digest = ops && manifestDigest(ops);
    const differ = answers.length < replicas.length || answers.some((a) => a.deletedAtMs !== floor || (a.ops ? manifestDigest(a.ops) !== digest : ops !== undefined));
    if (differ && (ops || answers.some((a) => a.ops))) {
      // Read repair; for a deleted file it deletes the copies a replica that missed it still has.
      void this.reconcile(name).catch((err) => this.log.warn(`read repair of ${name}: ${(err as Error).message}`));
    }
    if (!ops) throw new HydfsError(`${what} ${name}: no such file`, 404);
    return { ops, holders: answers.filter((a) => a.ops).map((a) => a.node) };
  }

  /** Quorum read: the merged ops and a stream of the file's bytes. */
  async read(nameIn: unknown): Promise<{ name: string; ops: AppendOp[]; size: number; body: ReadableStream<Uint8Array> }> {
    const name = validateRemoteName(nameIn);
    this.count("get");
    const { ops, holders } = await this.quorumView(name, "get");
    const size = totalSize(ops);
    this.metrics.bytesRead += size;
    return { name, ops, size, body: this.streamOps(name, ops, holders) };
  }

  /** Size and op count by a quorum read of the manifests only; no chunk moves. */
  async stat(nameIn: unknown, what = "stat"): Promise<{ name: string; size: number; ops: number }> {
    const name = validateRemoteName(nameIn);
    this.count(what);
    const { ops } = await this.quorumView(name, what);
    return { name, size: totalSize(ops), ops: ops.length };
  }

  /** This node's own copy, as `getfromreplica` shows it. */
  readLocal(nameIn: unknown): { name: string; ops: AppendOp[]; size: number; body: ReadableStream<Uint8Array> } {
    const name = validateRemoteName(nameIn);
    const ops = this.store.view(name);
    if (!ops) throw new HydfsError(`this node (${this.cfg.host}) holds no replica of ${name}`, 404);
    return { name, ops, size: totalSize(ops), body: this.streamOps(name, ops, []) };
  }

  private streamOps(name: string, ops: AppendOp[], holders: RingNode[]): ReadableStream<Uint8Array> {
    const ids = ops.flatMap((o) => o.chunks.map((c) => c.id));
    let next = 0;
    // Fetch a few chunks ahead so the network and the replicas' disks work while the client reads.
    const ahead: Promise<Uint8Array>[] = [];
    const fill = () => {
      while (ahead.length < READ_AHEAD_CHUNKS && next < ids.length) {
        const p = this.fetchChunk(ids[next++]!, holders);
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

  /** A chunk from this node or, failing that, from any of `sources`. */
  private async fetchChunk(id: string, sources: Pick<RingNode, "host" | "hydfsPort">[]): Promise<Uint8Array> {
    if (this.store.hasChunk(id)) return this.store.readChunk(id);
    const errors: string[] = [];
    for (const src of sources) {
      if (this.isSelf(src)) continue;
      try {
        return await this.peers.getChunk(src, id);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    throw new Error(`chunk ${id.slice(0, 12)} unavailable (${errors.join("; ") || "no source"})`);
  }

  // ---- merge, re-replication, GC -------------------------------------------------------------

  /**
   * Make every replica of `name` hold the union of all copies, in canonical order. With
   * `includeSelf`, this node's copy takes part even when it is not a replica (hand-over before GC).
   * Returns the merged digest and whether every participant confirmed it. 404 for a missing or
   * deleted file (after deleting what stale replicas still held of it).
   */
  async merge(nameIn: unknown): Promise<MergeResult> {
    const name = validateRemoteName(nameIn);
    this.coordinate(name, "merge");
    const r = await this.reconcile(name);
    if (r.deleted) throw new HydfsError(`merge ${name}: no such file (deleted)`, 404);
    return r.result;
  }

  /**
   * merge, and the propagation of deletes: ops at or before the newest tombstone any participant
   * reports are left out of the union. When nothing of a newer generation remains, the file is
   * deleted: participants holding a copy delete it (with a tombstone), the others learn the
   * tombstone; otherwise every replica adopts the union and the tombstone.
   */
  private async reconcile(name: string, includeSelf = false): Promise<{ deleted: true; confirmed: boolean } | { deleted: false; result: MergeResult }> {
    this.count("merge");
    const replicas = this.replicas(name);
    const participants = [...replicas];
    if (includeSelf && !replicas.some((r) => this.isSelf(r))) {
      const self = this.ring.nodes.find((n) => this.isSelf(n));
      participants.push(self ?? { id: "self", host: this.cfg.host, hydfsPort: this.cfg.ports.hydfs, token: 0n });
    }
    const answers = await this.gather(name, participants);
    const holders = answers.filter((a) => a.ops);
    const floor = newestFloor(answers);
    const merged = liveMerge(
      holders.map((a) => a.ops!),
      floor,
    );
    let confirmed = answers.length === participants.length;
    const update = async (node: RingNode, what: string, call: () => Promise<unknown>): Promise<boolean> => {
      try {
        await call();
        return true;
      } catch (err) {
        confirmed = false;
        this.log.warn(`merge ${name}: ${what} at ${node.host} failed: ${(err as Error).message}`);
        return false;
      }
    };
    if (!merged) {
      if (floor === undefined) throw new HydfsError(`merge ${name}: no such file`, 404);
      for (const a of answers) {
        // A copy goes with a full delete (its every op is dead); a participant without a copy only
        // learns the floor, so a create racing this pass is not deleted with it.
        if (a.ops) await update(a.node, "delete", () => this.deleteAt(a.node, name, floor));
        else if (a.deletedAtMs !== floor) await update(a.node, "tombstone", () => this.adoptAt(a.node, name, [], [], floor));
      }
      this.metrics.merges++;
      return { deleted: true, confirmed };
    }
    const digest = manifestDigest(merged);
    const sources = holders.map((a) => ({ host: a.node.host, hydfsPort: a.node.hydfsPort }));
    const updated: string[] = [];
    for (const a of answers) {
      if (a.ops && manifestDigest(a.ops) === digest && a.deletedAtMs === floor) continue;
      if (!replicas.includes(a.node)) continue; // a departing copy is never updated, only read
      if (await update(a.node, "adopt", () => this.adoptAt(a.node, name, merged, sources, floor))) updated.push(a.node.host);
    }
    this.metrics.merges++;
    return { deleted: false, result: { name, digest, updated, replicas: replicas.map((r) => r.host), confirmed } };
  }

  private async adoptAt(node: RingNode, name: string, ops: AppendOp[], sources: { host: string; hydfsPort: number }[], deletedAtMs: number | undefined): Promise<void> {
    if (this.isSelf(node)) await this.adopt(name, ops, sources, deletedAtMs);
    else await this.peers.json(node, `/internal/adopt?name=${encodeURIComponent(name)}`, { method: "POST", json: { ops, sources, deletedAtMs } });
  }

  /**
   * Replica side of merge: learn the tombstone, fetch missing chunks, then take the union of ours
   * and theirs without any op at or before the tombstone.
   */
  async adopt(name: string, ops: AppendOp[], sources: { host: string; hydfsPort: number }[], deletedAtMs?: number): Promise<string> {
    const t0 = performance.now();
    // Everything is checked before anything is stored or fetched.
    if (deletedAtMs !== undefined) this.checkTime(deletedAtMs, `adopt ${name}: deletedAtMs`);
    ops.forEach((op, i) => this.checkTime(op.tsMs, `adopt ${name}: ops[${i}].tsMs`));
    // This node itself is never fetched from (fetchChunk skips it), so naming it is harmless.
    const foreign = foreignSources(
      sources.filter((s) => !this.isSelf(s)),
      this.ring.nodes,
    );
    if (foreign.length > 0) {
      throw new HydfsError(`adopt ${name}: source ${foreign.map((s) => `${s.host}:${s.hydfsPort}`).join(", ")}: expected hydfsd of current ring members only (chunks are fetched from nowhere else)`, 400);
    }
    // The named sources (all ring members) first, then the file's replicas on this node's ring.
    const from = [...sources, ...this.ring.replicasFor(name, this.cfg.hydfs.replica_count).filter((r) => !sources.some((s) => s.host === r.host && s.hydfsPort === r.hydfsPort))];
    if (deletedAtMs !== undefined) this.store.applyTombstone(name, deletedAtMs);
    const live = opsAfter(ops, this.store.deletedAt(name));
    // Chunks already here (perhaps unreferenced leftovers) and the ones fetched below must
    // survive chunk GC until the manifest that references them is written.
    const release = this.store.pinChunks(live.flatMap((o) => o.chunks.map((c) => c.id)));
    try {
      for (const id of this.store.missingChunks(live.flatMap((o) => o.chunks))) {
        const bytes = await this.fetchChunk(id, from);
        this.store.putChunk(bytes, id);
        this.metrics.rereplicatedBytes += bytes.length;
      }
      const stored = this.store.replaceOps(name, mergeManifests(this.store.ops(name) ?? [], live));
      this.metrics.rereplicationMs += performance.now() - t0;
      return manifestDigest(stored);
    } finally {
      release();
    }
  }

  // ---- delete --------------------------------------------------------------------------------

  /**
   * Delete a file: every replica records a tombstone and drops its copy. Answers once a majority
   * confirmed and one of them had a copy; before a 404 it waits for every replica (each call is
   * bounded by request_timeout_ms), so a file held by one replica only is still found.
   */
  async delete(nameIn: unknown): Promise<DeleteResult> {
    const name = validateRemoteName(nameIn);
    this.count("delete");
    const { replicas, need } = this.coordinate(name, "delete");
    const atMs = Date.now();
    const tell = (r: RingNode) =>
      this.deleteAt(r, name, atMs).catch((err) => {
        this.log.warn(`delete ${name} at ${r.host}: ${(err as Error).message}`);
        return undefined;
      });
    // The other ring nodes are told too, best effort and not waited for: one may still hold a
    // copy from before a ring change, and its tombstone keeps that copy from coming back.
    for (const n of this.ring.nodes) if (!replicas.includes(n)) void tell(n);
    const pending = replicas.map(tell);
    let answers = await settleQuorum(pending, need, (a) => a !== undefined);
    if (!answers.some((a) => a?.hadCopy)) answers = await Promise.all(pending);
    const confirmed = replicas.filter((_, i) => answers[i] !== undefined);
    if (confirmed.length < need) throw new HydfsError(`delete ${name}: only ${confirmed.length} of ${replicas.length} replicas answered, need ${need}`, 503);
    if (!answers.some((a) => a?.hadCopy)) throw new HydfsError(`delete ${name}: no such file`, 404);
    return { name, deleted: true, replicas: confirmed.map((r) => `${r.host}:${r.hydfsPort}`) };
  }

  private async deleteAt(r: RingNode, name: string, atMs: number): Promise<{ hadCopy: boolean; deletedAtMs: number }> {
    if (this.isSelf(r)) return this.deleteLocal(name, atMs);
    const res = await this.peers.json<{ hadCopy: unknown; deletedAtMs: unknown }>(r, `/internal/delete?name=${encodeURIComponent(name)}&at=${atMs}`, { method: "POST", json: {} });
    if (typeof res.hadCopy !== "boolean" || typeof res.deletedAtMs !== "number") throw new Error(`${r.host} delete of ${name}: expected {hadCopy, deletedAtMs}, got ${JSON.stringify(res)}`);
    return { hadCopy: res.hadCopy, deletedAtMs: res.deletedAtMs };
  }

  /**
   * Replica side of delete: a durable tombstone, then the copy goes. `atMs` comes from the wire:
   * more than MAX_CLOCK_SKEW_MS after this node's clock is refused (400), or one forged delete
   * would block every create of the name until that time.
   */
  deleteLocal(name: string, atMs: number): { hadCopy: boolean; deletedAtMs: number } {
    this.checkTime(atMs, `delete ${name}: at`);
    const r = this.store.deleteFile(name, atMs);
    this.dirty.delete(name);
    return r;
  }

  /** Run the background pass in `delayMs`, unless one is already due sooner (a ring change's 200 ms one stays). */
  scheduleMaintenance(delayMs = this.cfg.hydfs.rereplicate_every_ms): void {
    const dueMs = performance.now() + delayMs;
    if (this.maintenanceTimer !== undefined && this.maintenanceDueMs <= dueMs) return;
    clearTimeout(this.maintenanceTimer);
    this.maintenanceDueMs = dueMs;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenanceTimer = undefined;
      void this.maintain();
    }, delayMs);
  }

  stop(): void {
    clearTimeout(this.maintenanceTimer);
    this.maintenanceTimer = undefined;
    this.stopped = true;
  }

  /**
   * One background pass, one file at a time (which bounds transfer rate): owners merge their
   * dirty files with the other replicas; a copy this node no longer owns is handed to the owners
   * and deleted only once every owner confirmed the merged state.
   */
  async maintain(): Promise<void> {
    // Not on a view that may be partial: hand-over and GC of copies judge owners by the ring.
    if (this.maintaining || this.stopped || this.ring.size === 0 || !this.selfId || !this.viewReady) return this.scheduleMaintenance();
    this.maintaining = true;
    try {
      for (const name of this.store.list()) {
        if (this.stopped) return;
        const owners = this.replicas(name);
        const owner = owners.some((r) => this.isSelf(r));
        if (owner) {
          if (!this.dirty.has(name)) continue;
          this.dirty.delete(name);
          const r = await this.reconcile(name).catch((err) => {
            this.log.warn(`background merge of ${name}: ${(err as Error).message}`);
            return undefined;
          });
          const confirmed = r?.deleted ? r.confirmed : r?.result.confirmed;
          if (!confirmed) this.dirty.add(name);
        } else {
          const r = await this.reconcile(name, true).catch((err) => {
            this.log.warn(`hand-over of ${name}: ${(err as Error).message}`);
            return undefined;
          });
          // A deleted file: reconcile already deleted this node's stale copy.
          if (!r || r.deleted) continue;
          if (r.result.confirmed && this.ownersConfirm(r.result.digest, await this.gather(name, owners), owners.length)) {
            this.store.delete(name);
            this.metrics.gcDeleted++;
            this.log.info(`handed ${name} to ${owners.map((o) => o.host).join(", ")} and dropped the local copy`);
          }
        }
      }
      if (!this.stopped) this.maybeCollectChunks(Date.now());
    } finally {
      this.maintaining = false;
      this.scheduleMaintenance();
    }
  }

  /**
   * Chunk GC (FileStore.collectChunks), when CHUNK_GC_EVERY_MS (or the grace period, if shorter)
   * has passed since the last run. Returns the run's result, or undefined when it was not due.
   */
  maybeCollectChunks(nowMs: number): ChunkGcResult | undefined {
    const graceMs = this.cfg.hydfs.chunk_gc_grace_ms;
    if (this.lastChunkGcMs !== 0 && nowMs - this.lastChunkGcMs < Math.min(CHUNK_GC_EVERY_MS, graceMs)) return undefined;
    this.lastChunkGcMs = nowMs;
    try {
      const r = this.store.collectChunks({ nowMs, graceMs, maxDeletes: CHUNK_GC_MAX_DELETES });
      this.metrics.chunksDeleted += r.deleted;
      this.metrics.chunkBytesFreed += r.bytesFreed;
      if (r.deleted > 0) this.log.info(`chunk GC removed ${r.deleted} unreferenced chunks (${r.bytesFreed} bytes)${r.truncated ? "; more next run" : ""}`);
      return r;
    } catch (err) {
      // Nothing is unlinked unless the reference scan completed, so a failure here is only a delay.
      this.log.warn(`chunk GC: ${(err as Error).message}`);
      return undefined;
    }
  }

  private ownersConfirm(digest: string, answers: { ops: AppendOp[] | undefined }[], ownerCount: number): boolean {
    return answers.length === ownerCount && answers.every((a) => a.ops && manifestDigest(mergeManifests(a.ops)) === digest);
  }

  // ---- multiappend ---------------------------------------------------------------------------

  /** Append this node's own local file (from its local-files directory, never another path). */
  async appendLocalFile(nameIn: unknown, localName: string): Promise<WriteResult> {
    let path: string;
    try {
      path = resolveInside(this.localDir, localName);
    } catch (err) {
      throw new HydfsError((err as Error).message, 400);
    }
    if (!existsSync(path) || !statSync(path).isFile()) throw new HydfsError(`local file ${JSON.stringify(localName)} not found in ${this.localDir} on ${this.cfg.host}`, 404);
    return this.write("append", nameIn, Bun.file(path).stream(), `node:${this.cfg.host}:${this.cfg.ports.hydfs}`, this.nextLocalSeq());
  }

  /** This node's own client sequence, persisted so a restart never reuses a number. */
  private nextLocalSeq(): number {
    const path = join(this.store.root, "client_seq");
    const next = (existsSync(path) ? Number(readFileSync(path, "utf8")) || 0 : 0) + 1;
    writeFileSync(path, String(next));
    return next;
  }
}
