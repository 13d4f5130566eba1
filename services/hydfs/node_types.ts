/**
 * What HydfsNode answers and what it is given: its errors and results, its metrics, and the
 * environment it runs in (clock, timers, randomness, the remote replicas). hydfsd runs on
 * realEnv; testing/hydfs_sim.ts gives a virtual clock and a simulated network instead.
 */
import { randomUUID } from "node:crypto";
import type { NodeAddress } from "./ring.ts";
import type { Replica, Transport } from "./transport.ts";

export class HydfsError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The node's answers are the API's answers: one declaration, in model.ts. */
export type { DeleteAnswer as DeleteResult, MergeAnswer as MergeResult, WriteAnswer as WriteResult } from "./model.ts";

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

export function emptyMetrics(): HydfsMetrics {
  return { ops: {}, bytesWritten: 0, bytesRead: 0, rereplicatedBytes: 0, rereplicationMs: 0, merges: 0, gcDeleted: 0, chunksDeleted: 0, chunkBytesFreed: 0 };
}

/** Everything a HydfsNode takes from the world outside its store. */
export interface NodeEnv {
  /** Wall clock, ms since the epoch: op timestamps, tombstones, the skew bound on wire times, chunk GC. */
  nowMs(): number;
  /** Monotonic ms: durations (metrics) and when the background pass is due. */
  monoMs(): number;
  /** Resolve after `ms` (the backoff between create-decree rounds). */
  sleep(ms: number): Promise<void>;
  /** Uniform in [0, 1): the backoff jitter. */
  random(): number;
  /** A unique id: op ids and proposer ids. */
  newId(): string;
  /** Run `fn` after `delayMs`; the returned function cancels it. */
  setTimer(fn: () => void, delayMs: number): () => void;
  /** The calls to replicas, given this node's own (local) replica; HTTP to the others when absent. */
  transport?(self: NodeAddress, local: Replica): Transport;
}

/** hydfsd's environment: the machine's clocks and timers, crypto-random ids, HTTP to peers. */
export const realEnv: NodeEnv = {
  nowMs: () => Date.now(),
  monoMs: () => performance.now(),
  sleep: (ms) => Bun.sleep(ms),
  random: () => Math.random(),
  newId: () => randomUUID(),
  setTimer: (fn, delayMs) => {
    const t = setTimeout(fn, delayMs);
    return () => clearTimeout(t);
  },
};
