/**
 * HyDFS placement (docs/ARCHITECTURE.md §3): nodes and files hash onto one 64-bit ring, and a file lives on
 * the first `replicaCount` distinct nodes clockwise from its token. Every node computes the same
 * placement from the same member list, so any node can coordinate any request without asking.
 *
 * Tokens come from @noble/hashes (not Bun.CryptoHasher) so that placement is the same function in
 * every runtime and never depends on the host's crypto build.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";

/** Tokens live in [0, 2^64). */
const TOKEN_LIMIT = 1n << 64n;

/** First 8 bytes (big-endian) of SHA-256 of the UTF-8 text: an unsigned 64-bit ring token. */
export function tokenOf(text: string): bigint {
  const digest = sha256(utf8ToBytes(text));
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0, false);
}

/** 16 lowercase hex digits, zero padded, so tokens line up and sort as text in listings. */
export function formatToken(t: bigint): string {
  if (t < 0n || t >= TOKEN_LIMIT) throw new RangeError(`token ${t}: expected an unsigned 64-bit value in [0, 2^64)`);
  return t.toString(16).padStart(16, "0");
}

export interface RingNode {
  /** Membership node id, `host:udpPort@bootMillis`. */
  id: string;
  /** The part of the id before ":", where the node's HyDFS server listens. */
  host: string;
  hydfsPort: number;
  /** tokenOf(id). */
  token: bigint;
}

/** Where a node's HyDFS server listens: what a call to a replica needs. */
export type NodeAddress = Pick<RingNode, "host" | "hydfsPort">;

/** Whether two addresses name the same hydfsd. */
export function sameAddress(a: NodeAddress, b: NodeAddress): boolean {
  return a.host === b.host && a.hydfsPort === b.hydfsPort;
}

/**
 * Total order of the ring: token, then id. Ids compare by UTF-16 code units (not localeCompare)
 * so that every node sorts identically whatever its locale. Exported for its tests: two node ids
 * with one 64-bit token are too rare to construct through tokenOf.
 */
export function compareRingNodes(a: { token: bigint; id: string }, b: { token: bigint; id: string }): number {
  if (a.token !== b.token) return a.token < b.token ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function checkCount(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} ${n}: expected a non-negative integer`);
}

export class Ring {
  /** Sorted by token ascending, ties by id; ids are distinct. */
  readonly nodes: RingNode[];
  private readonly indexById: ReadonlyMap<string, number>;

  constructor(nodes: readonly { id: string; hydfsPort: number }[]) {
    const byId = new Map<string, RingNode>();
    for (const n of nodes) {
      const colon = n.id.indexOf(":");
      if (colon <= 0) throw new Error(`ring node id ${JSON.stringify(n.id)}: expected host:udpPort@bootMillis`);
      if (!Number.isInteger(n.hydfsPort) || n.hydfsPort < 1 || n.hydfsPort > 65535) {
        throw new RangeError(`ring node ${n.id} hydfsPort ${n.hydfsPort}: expected an integer in 1..65535`);
      }
      const seen = byId.get(n.id);
      if (seen) {
        // One id is one boot of one node, so two ports for it mean the member list is corrupt;
        // picking either would let nodes disagree on where a replica listens.
        if (seen.hydfsPort !== n.hydfsPort) {
          throw new Error(`ring node ${n.id} listed with hydfsPort ${seen.hydfsPort} and ${n.hydfsPort}: expected one port per id`);
        }
        continue;
      }
      byId.set(n.id, { id: n.id, host: n.id.slice(0, colon), hydfsPort: n.hydfsPort, token: tokenOf(n.id) });
    }
    const sorted = [...byId.values()].sort(compareRingNodes);
    this.nodes = sorted;
    this.indexById = new Map(sorted.map((n, i) => [n.id, i]));
  }

  get size(): number {
    return this.nodes.length;
  }

  has(nodeId: string): boolean {
    return this.indexById.has(nodeId);
  }

  /** Index of the first node at or after `key` in ring order (may be size: wrap to 0). */
  private lowerBound(key: { token: bigint; id: string }): number {
    let lo = 0;
    let hi = this.nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareRingNodes(this.nodes[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** `count` nodes clockwise from index `start` (wrapping), at most every node once. */
  private walk(start: number, count: number): RingNode[] {
    const n = this.nodes.length;
    const out: RingNode[] = [];
    for (let i = 0; i < Math.min(count, n); i++) out.push(this.nodes[(start + i) % n]!);
    return out;
  }

  /**
   * The first min(replicaCount, size) distinct nodes clockwise from tokenOf(name): the first node
   * whose token is >= the file token, wrapping around. A file whose token equals a node's token
   * belongs to that node (the empty id sorts before every real id at equal token).
   */
  replicasFor(name: string, replicaCount = 3): RingNode[] {
    checkCount("replicaCount", replicaCount);
    if (this.nodes.length === 0) return [];
    return this.walk(this.lowerBound({ token: tokenOf(name), id: "" }), replicaCount);
  }

  ownsFile(nodeId: string, name: string, replicaCount = 3): boolean {
    return this.replicasFor(name, replicaCount).some((n) => n.id === nodeId);
  }

  /**
   * The next min(k, other nodes) nodes clockwise after `nodeId`, never `nodeId` itself. A node not
   * in the ring (say, one that just failed) is placed where its id would sort, so its successors
   * are the nodes that inherit its replicas.
   */
  successorsOf(nodeId: string, k: number): RingNode[] {
    checkCount("k", k);
    const own = this.indexById.get(nodeId);
    const others = this.nodes.length - (own === undefined ? 0 : 1);
    const start = own === undefined ? this.lowerBound({ token: tokenOf(nodeId), id: nodeId }) : own + 1;
    return this.walk(start, Math.min(k, others));
  }

  /** Same nodes with the same ports: placement and routing are identical. */
  equals(other: Ring): boolean {
    if (this.nodes.length !== other.nodes.length) return false;
    return this.nodes.every((n, i) => {
      const o = other.nodes[i]!;
      return n.id === o.id && n.hydfsPort === o.hydfsPort;
    });
  }
}
