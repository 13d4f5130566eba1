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
 * Layout: this class is the driver: it holds the node's state (ring, store, dirty files, metrics)
 * and its public API (used by http.ts); the paths live beside it: write_path.ts (create, append),
 * read_path.ts (get, stat, chunks), maintain.ts (merge, hand-over, chunk GC), replica.ts (the
 * replica side). Decisions are pure functions in quorum.ts and reconcile.ts; every call to a
 * replica, this node's own included, goes through the transport (transport.ts).
 *
 * Input from the wire is bounded, for calls from peers and from this node alike: op timestamps
 * and tombstones may be at most MAX_CLOCK_SKEW_MS after this node's clock (limits.ts), an op's
 * content is checked against what its (clientId, seq) already stored, and chunks are fetched only
 * from hydfsd of the current ring, never from an address a caller names.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeConfig } from "../node_config.ts";
import { ClusterHttp } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import type { WatchedMember } from "../member/watch.ts";
import type { AcceptReply, Ballot, PrepareReply } from "./create_decree.ts";
import type { AppendOp } from "./manifest.ts";
import { collectChunksIfDue, maintainPass, mergeFile, type ReconcileOutcome, reconcileFile } from "./maintain.ts";
import { resolveInside } from "./names.ts";
import { type DeleteResult, emptyMetrics, HydfsError, type HydfsMetrics, type MergeResult, type NodeEnv, realEnv, type WriteResult } from "./node_types.ts";
import { PeerClient } from "./peers.ts";
import type { DeleteAnswer, ReplicaAnswer } from "./quorum.ts";
import { quorumRead, quorumStat, readOwnCopy } from "./read_path.ts";
import { abortLocal, acceptLocal, adoptLocal, applyLocal, checkTime, deleteLocal, prepareLocal } from "./replica.ts";
import { type NodeAddress, Ring, type RingNode, sameAddress } from "./ring.ts";
import type { ChunkGcResult, FileStore } from "./store.ts";
import { HttpReplica, LocalReplica, type Replica, routedTransport, type Transport, type WriteKind } from "./transport.ts";
import { coordinateDelete, coordinateWrite } from "./write_path.ts";

export { HydfsError, type DeleteResult, type HydfsMetrics, type MergeResult, type WriteResult } from "./node_types.ts";
export type { ReplicaAnswer } from "./quorum.ts";
export type { WriteKind } from "./transport.ts";
export { CHUNK_GC_EVERY_MS, CHUNK_GC_MAX_DELETES } from "./maintain.ts";
export { foreignSources } from "./replica.ts";
export { INLINE_MAX_BYTES } from "./write_path.ts";

export class HydfsNode {
  ring = new Ring([]);
  selfId: string | undefined;
  readonly metrics: HydfsMetrics = emptyMetrics();
  /** Signs every call this node makes (peers, and the member watch in start.ts). */
  readonly http: ClusterHttp;
  /** Every call to a replica, this node's own included (transport.ts). */
  readonly transport: Transport;
  /** This node's address on the ring. */
  readonly self: NodeAddress;
  private readonly localDir: string;
  private cancelMaintenance?: () => void;
  /** When the pending background pass is due (env.monoMs()). */
  private maintenanceDueMs = 0;
  /** A background pass is running (maintain.ts). */
  maintaining = false;
  /** When chunk GC last ran (0: not since start, so the first pass runs it; maintain.ts). */
  lastChunkGcMs = 0;
  stopped = false;
  /** Writes this node coordinated that reached their quorum (for hydfs.failpoint). */
  private quorumWrites = 0;
  /** Files whose replicas may differ: written here, adopted, or all of them after a ring change. */
  readonly dirty = new Set<string>();

  constructor(
    readonly cfg: NodeConfig,
    readonly store: FileStore,
    readonly log: Logger,
    readonly env: NodeEnv = realEnv,
  ) {
    this.http = new ClusterHttp(cfg.cluster_secret);
    this.self = { host: cfg.host, hydfsPort: cfg.ports.hydfs };
    const local = new LocalReplica(this.self, this);
    const peers = new PeerClient({ http: this.http, timeoutMs: cfg.hydfs.request_timeout_ms, nowMs: () => env.nowMs() });
    this.transport = env.transport ? env.transport(this.self, local) : routedTransport(this.self, local, (n) => new HttpReplica(n, peers));
    this.localDir = cfg.hydfs.local_files_dir || join(cfg.data_dir, "local");
  }

  /** The replica at `node` (this node's own store when `node` is this node). */
  at(node: NodeAddress): Replica {
    return this.transport.for(node);
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

  isSelf(node: NodeAddress): boolean {
    return sameAddress(node, this.self);
  }

  /** This node as a ring node (a stand-in when the ring does not list it). */
  selfNode(): RingNode {
    return this.ring.nodes.find((n) => this.isSelf(n)) ?? { id: "self", ...this.self, token: 0n };
  }

  /**
   * Whether this node may coordinate: its memberd has joined and says its member list is current
   * (see README "Readiness"). Until then a ring it computes may be partial, and a write
   * acknowledged on it or a "no such file" read from it could be false; client calls get 503.
   * Replica-side calls (/internal/*) are served regardless: they touch only this node's copies.
   */
  viewReady = false;

  setViewReady(ready: boolean): void {
    if (ready !== this.viewReady)
      this.log.info(
        ready ? "membership view current: coordinating client requests" : "membership view not current: refusing client requests (503) until it is",
      );
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
    if (!this.viewReady)
      throw new HydfsError(
        `${what} ${name}: this node (${this.cfg.host}) has not joined the cluster yet or its member list is not current; retry, or use another node`,
        503,
      );
    const replicas = this.replicas(name);
    const need = HydfsNode.quorum(this.cfg.hydfs.replica_count);
    if (replicas.length < need) {
      throw new HydfsError(
        `${what} ${name}: only ${replicas.length} live HyDFS node(s) known, need ${need} of the ${this.cfg.hydfs.replica_count} replicas (hydfs.replica_count) to answer`,
        503,
      );
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

  count(op: string): void {
    this.metrics.ops[op] = (this.metrics.ops[op] ?? 0) + 1;
  }

  /** hydfs.failpoint `crash_before_ack:N` (tests only): die like a SIGKILL after the Nth quorum, before answering. */
  failpointBeforeAck(): void {
    const m = /^crash_before_ack:(\d+)$/.exec(this.cfg.hydfs.failpoint);
    if (m && ++this.quorumWrites === Number(m[1])) {
      this.log.error(`failpoint ${this.cfg.hydfs.failpoint}: exiting before the answer`);
      process.exit(137);
    }
  }

  // ---- client calls (coordinator) --------------------------------------------------------------

  /** create or append: stream the body to every replica, acknowledge at a majority (write_path.ts). */
  write(kind: WriteKind, nameIn: unknown, body: ReadableStream<Uint8Array> | null, clientId: string, seq: number): Promise<WriteResult> {
    return coordinateWrite(this, kind, nameIn, body, clientId, seq);
  }

  /** Delete a file at every replica (write_path.ts). */
  delete(nameIn: unknown): Promise<DeleteResult> {
    return coordinateDelete(this, nameIn);
  }

  /** Quorum read: the merged ops and a stream of the file's bytes. */
  read(nameIn: unknown): Promise<{ name: string; ops: AppendOp[]; size: number; body: ReadableStream<Uint8Array> }> {
    return quorumRead(this, nameIn);
  }

  /** Size and op count by a quorum read of the manifests only; no chunk moves. */
  stat(nameIn: unknown, what = "stat"): Promise<{ name: string; size: number; ops: number }> {
    return quorumStat(this, nameIn, what);
  }

  /** This node's own copy, as `getfromreplica` shows it. */
  readLocal(nameIn: unknown): { name: string; ops: AppendOp[]; size: number; body: ReadableStream<Uint8Array> } {
    return readOwnCopy(this, nameIn);
  }

  /** Make every replica of a file hold the union of all copies (maintain.ts); 404 for a missing or deleted file. */
  merge(nameIn: unknown): Promise<MergeResult> {
    return mergeFile(this, nameIn);
  }

  /** merge, and the propagation of deletes (maintain.ts). */
  reconcile(name: string, includeSelf = false): Promise<ReconcileOutcome> {
    return reconcileFile(this, name, includeSelf);
  }

  // ---- replica side (replica.ts; served to peers by http.ts) -----------------------------------

  applyLocal(kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean): ReplicaAnswer {
    return applyLocal(this, kind, name, op, storeIfMissing);
  }

  abortLocal(name: string, opId: string): boolean {
    return abortLocal(this.store, name, opId);
  }

  prepareLocal(name: string, ballot: Ballot): PrepareReply {
    return prepareLocal(this.store, name, ballot);
  }

  acceptLocal(name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): AcceptReply {
    return acceptLocal(this, name, ballot, op, data);
  }

  deleteLocal(name: string, atMs: number): DeleteAnswer {
    return deleteLocal(this, name, atMs);
  }

  adopt(name: string, ops: AppendOp[], sources: NodeAddress[], deletedAtMs?: number): Promise<string> {
    return adoptLocal(this, name, ops, sources, deletedAtMs);
  }

  /** A timestamp from the wire, bounded by this node's clock (limits.ts); 400 otherwise. */
  checkTime(value: unknown, what: string): number {
    return checkTime(this.env.nowMs(), value, what);
  }

  // ---- background pass -------------------------------------------------------------------------

  /** Run the background pass in `delayMs`, unless one is already due sooner (a ring change's 200 ms one stays). */
  scheduleMaintenance(delayMs = this.cfg.hydfs.rereplicate_every_ms): void {
    const dueMs = this.env.monoMs() + delayMs;
    if (this.cancelMaintenance !== undefined && this.maintenanceDueMs <= dueMs) return;
    this.cancelMaintenance?.();
    this.maintenanceDueMs = dueMs;
    this.cancelMaintenance = this.env.setTimer(() => {
      this.cancelMaintenance = undefined;
      void this.maintain();
    }, delayMs);
  }

  stop(): void {
    this.cancelMaintenance?.();
    this.cancelMaintenance = undefined;
    this.stopped = true;
  }

  /** One background pass (maintain.ts). */
  maintain(): Promise<void> {
    return maintainPass(this);
  }

  /** Chunk GC when it is due (maintain.ts); the run's result, or undefined when it was not due. */
  maybeCollectChunks(nowMs: number): ChunkGcResult | undefined {
    return collectChunksIfDue(this, nowMs);
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
    if (!existsSync(path) || !statSync(path).isFile())
      throw new HydfsError(`local file ${JSON.stringify(localName)} not found in ${this.localDir} on ${this.cfg.host}`, 404);
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
