/**
 * The transport seam: everything a coordinator (or a merge, or a replica fetching chunks) asks
 * of one replica. A coordinator never asks "is it this node or another?": it calls
 * `transport.for(replica)` and gets either this node's own store (LocalReplica) or a remote one
 * (HttpReplica over peers.ts in hydfsd, a simulated network in testing/hydfs_sim.ts).
 *
 * Errors: every method rejects when the replica cannot be reached or refuses the call, except
 * `apply`, whose refusals are answers (ReplicaAnswer: conflict, full, no_such_file, ...).
 */
import type { AcceptReply, Ballot, PrepareReply } from "./create_decree.ts";
import type { AppendOp } from "./manifest.ts";
import { PeerClient, PeerError } from "./peers.ts";
import type { DeleteAnswer, ReplicaAnswer } from "./quorum.ts";
import { type NodeAddress, sameAddress } from "./ring.ts";
import type { FileStore } from "./store.ts";

export type { WriteKind } from "./model.ts";
import type { WriteKind } from "./model.ts";

/** A replica's copy of a file as a manifest request sees it: ops (undefined = no copy) and tombstone. */
export interface ManifestReply {
  ops: AppendOp[] | undefined;
  deletedAtMs: number | undefined;
}

/** A replica's copy in brief (digest request): its digest (undefined = no copy), whether it holds a create, its tombstone. */
export interface DigestReply {
  digest: string | undefined;
  hasCreate: boolean;
  deletedAtMs: number | undefined;
}

export interface Replica {
  readonly address: NodeAddress;
  /** Store a create or append; `inline`: a small body that travels with the op (its one chunk). */
  apply(kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean, inline?: Uint8Array): Promise<ReplicaAnswer>;
  /** Take back an append this coordinator refused (a conflict or a full manifest). */
  abort(name: string, opId: string): Promise<void>;
  manifest(name: string): Promise<ManifestReply>;
  /**
   * The copy in brief, so a merge of replicas that agree moves no manifest (maintain.ts). Optional:
   * a transport without it (the simulated network) is always merged from full manifests.
   */
  digest?(name: string): Promise<DigestReply>;
  putChunk(id: string, bytes: Uint8Array): Promise<void>;
  /** The chunk's bytes (checked against `id` when they come from another node). */
  getChunk(id: string): Promise<Uint8Array>;
  /** Create decree, phase 1 and phase 2 (create_decree.ts). */
  prepare(name: string, ballot: Ballot): Promise<PrepareReply>;
  accept(name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): Promise<AcceptReply>;
  /** Record a tombstone at `atMs` and drop the copy. */
  delete(name: string, atMs: number): Promise<DeleteAnswer>;
  /** Take the union of ours and `ops` without ops at or before `deletedAtMs`, fetching chunks from `sources`. */
  adopt(name: string, ops: AppendOp[], sources: NodeAddress[], deletedAtMs: number | undefined): Promise<void>;
}

export interface Transport {
  for(node: NodeAddress): Replica;
}

/** The one place that tells this node from the others: `self` is served by `local`. */
export function routedTransport(self: NodeAddress, local: Replica, remote: (node: NodeAddress) => Replica): Transport {
  return { for: (node) => (sameAddress(node, self) ? local : remote(node)) };
}

/**
 * The replica-side handlers of this node (HydfsNode implements them; http.ts serves the same
 * ones to peers), so a local call and a remote one run the same code.
 */
export interface ReplicaHandlers {
  readonly store: FileStore;
  applyLocal(kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean): ReplicaAnswer;
  abortLocal(name: string, opId: string): boolean;
  prepareLocal(name: string, ballot: Ballot): PrepareReply;
  acceptLocal(name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): AcceptReply;
  deleteLocal(name: string, atMs: number): DeleteAnswer;
  adopt(name: string, ops: AppendOp[], sources: NodeAddress[], deletedAtMs?: number): Promise<string>;
}

/** This node's answer to a digest request (served over HTTP by http.ts too). */
export function digestOf(store: FileStore, name: string): DigestReply {
  const d = store.digest(name);
  return { digest: d?.digest, hasCreate: d?.hasCreate ?? false, deletedAtMs: store.deletedAt(name) };
}

/** This node's own store, called in-process (async like the others, so a throw is a rejection). */
export class LocalReplica implements Replica {
  constructor(
    readonly address: NodeAddress,
    private readonly h: ReplicaHandlers,
  ) {}

  async apply(kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean, inline?: Uint8Array): Promise<ReplicaAnswer> {
    if (inline && inline.length > 0) this.h.store.putChunk(inline, op.chunks[0]!.id);
    return this.h.applyLocal(kind, name, op, storeIfMissing);
  }
  async abort(name: string, opId: string): Promise<void> {
    this.h.abortLocal(name, opId);
  }
  async manifest(name: string): Promise<ManifestReply> {
    return { ops: this.h.store.ops(name)?.slice(), deletedAtMs: this.h.store.deletedAt(name) };
  }
  async digest(name: string): Promise<DigestReply> {
    return digestOf(this.h.store, name);
  }
  async putChunk(id: string, bytes: Uint8Array): Promise<void> {
    await this.h.store.putChunkAsync(bytes, id);
  }
  async getChunk(id: string): Promise<Uint8Array> {
    if (!this.h.store.hasChunk(id)) throw new Error(`${this.address.host}:${this.address.hydfsPort} chunk ${id.slice(0, 12)}: not here`);
    return this.h.store.readChunk(id);
  }
  async prepare(name: string, ballot: Ballot): Promise<PrepareReply> {
    return this.h.prepareLocal(name, ballot);
  }
  async accept(name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): Promise<AcceptReply> {
    return this.h.acceptLocal(name, ballot, op, data);
  }
  async delete(name: string, atMs: number): Promise<DeleteAnswer> {
    return this.h.deleteLocal(name, atMs);
  }
  async adopt(name: string, ops: AppendOp[], sources: NodeAddress[], deletedAtMs: number | undefined): Promise<void> {
    await this.h.adopt(name, ops, sources, deletedAtMs);
  }
}

const q = (name: string) => `name=${encodeURIComponent(name)}`;

/** Another hydfsd over HTTP (the wire of http.ts's /internal/* routes). */
export class HttpReplica implements Replica {
  constructor(
    readonly address: NodeAddress,
    private readonly peers: PeerClient,
  ) {}

  async apply(kind: WriteKind, name: string, op: AppendOp, storeIfMissing: boolean, inline?: Uint8Array): Promise<ReplicaAnswer> {
    const path = `/internal/${kind}?${q(name)}&store_if_missing=${storeIfMissing}`;
    try {
      const res = inline
        ? await this.peers.json<{ result: ReplicaAnswer }>(this.address, `${path}&inline=1`, { method: "POST", msgpack: { op, data: inline } })
        : await this.peers.json<{ result: ReplicaAnswer }>(this.address, path, { method: "POST", json: op });
      return res.result;
    } catch (err) {
      // A refusal is an answer: its body says which (http.ts replicaWrite).
      if (err instanceof PeerError && (err.status === 409 || err.status === 404 || err.status === 413)) return err.body?.result ?? "error";
      throw err;
    }
  }
  async abort(name: string, opId: string): Promise<void> {
    await this.peers.json(this.address, `/internal/abort?${q(name)}&op=${encodeURIComponent(opId)}`, { method: "POST" });
  }
  manifest(name: string): Promise<ManifestReply> {
    return this.peers.manifest(this.address, name);
  }
  digest(name: string): Promise<DigestReply> {
    return this.peers.digest(this.address, name);
  }
  putChunk(id: string, bytes: Uint8Array): Promise<void> {
    return this.peers.putChunk(this.address, id, bytes);
  }
  getChunk(id: string): Promise<Uint8Array> {
    return this.peers.getChunk(this.address, id);
  }
  prepare(name: string, ballot: Ballot): Promise<PrepareReply> {
    return this.peers.prepare(this.address, name, ballot);
  }
  accept(name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): Promise<AcceptReply> {
    return this.peers.accept(this.address, name, ballot, op, data);
  }
  async delete(name: string, atMs: number): Promise<DeleteAnswer> {
    const res = await this.peers.json<{ hadCopy: unknown; deletedAtMs: unknown }>(this.address, `/internal/delete?${q(name)}&at=${atMs}`, {
      method: "POST",
      json: {},
    });
    if (typeof res.hadCopy !== "boolean" || typeof res.deletedAtMs !== "number")
      throw new Error(`${this.address.host} delete of ${name}: expected {hadCopy, deletedAtMs}, got ${JSON.stringify(res)}`);
    return { hadCopy: res.hadCopy, deletedAtMs: res.deletedAtMs };
  }
  async adopt(name: string, ops: AppendOp[], sources: NodeAddress[], deletedAtMs: number | undefined): Promise<void> {
    await this.peers.json(this.address, `/internal/adopt?${q(name)}`, { method: "POST", json: { ops, sources, deletedAtMs } });
  }
}
