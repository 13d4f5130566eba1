/**
 * What the replicas' answers to a client call mean: pure functions from answers (and the quorum
 * `need`, a majority of replica_count) to a verdict. The drivers (write_path.ts, create_path.ts,
 * read_path.ts) send the calls and act on the verdicts; nothing here does I/O or reads a clock.
 */
import { type AppendOp, liveMerge, manifestDigest, newestFloor, opKey, sameContent } from "./manifest.ts";
import type { ManifestAnswer } from "./reconcile.ts";
import type { RingNode } from "./ring.ts";

/**
 * A replica's answer to a create or append. `conflict`: its (clientId, seq) is stored there with
 * other content; `full`: the file's manifest is at FILE_MANIFEST_MAX_BYTES.
 */
export type ReplicaAnswer = "ok" | "duplicate" | "exists" | "deleted_later" | "no_such_file" | "conflict" | "full" | "error";

/** The replica stored the op (now or in an earlier attempt). Undefined: no answer yet. */
export function isAck(a: ReplicaAnswer | undefined): boolean {
  return a === "ok" || a === "duplicate";
}

/**
 * After the first quorum wait of an append: a replica that has not received the file yet
 * (re-replication in progress) is asked again to store the append anyway, once another replica
 * proved the file exists and the acknowledgements alone are short of `need`.
 */
export function retryStoreIfMissing(answers: readonly (ReplicaAnswer | undefined)[], need: number): boolean {
  return answers.filter(isAck).length < need && answers.some(isAck) && answers.includes("no_such_file");
}

/** An append's outcome; indexes are into the answers (the targets asked). */
export type WriteVerdict =
  /** (client, seq) names other bytes somewhere: take back the op where it applied, answer 409. */
  | { kind: "conflict"; abortAt: number[]; holders: number[] }
  | { kind: "acked"; acked: number[]; duplicate: boolean }
  /** The manifest is at its limit: take back the op where it applied, answer 413. */
  | { kind: "full"; abortAt: number[] }
  /** A quorum of replicas says the file does not exist and none stored the op: 404. */
  | { kind: "no_such_file" }
  /** Too few acknowledgements (503, retryable). */
  | { kind: "unavailable"; acked: number };

export function judgeWrite(answers: readonly (ReplicaAnswer | undefined)[], need: number): WriteVerdict {
  const where = (want: (a: ReplicaAnswer | undefined) => boolean) => answers.flatMap((a, i) => (want(a) ? [i] : []));
  const acked = where(isAck);
  if (answers.includes("conflict")) return { kind: "conflict", abortAt: where((a) => a === "ok"), holders: where((a) => a === "conflict") };
  if (acked.length >= need) return { kind: "acked", acked, duplicate: answers.includes("duplicate") };
  if (answers.includes("full")) return { kind: "full", abortAt: where((a) => a === "ok") };
  if (where((a) => a === "no_such_file").length >= need && acked.length === 0) return { kind: "no_such_file" };
  return { kind: "unavailable", acked: acked.length };
}

/** How a decided create answers the client whose create `own` was proposed. */
export type CreateVerdict = "won" | "retry_of_own" | "reused_seq" | "exists";

export function judgeCreate(own: AppendOp, chosen: AppendOp): CreateVerdict {
  if (chosen.opId === own.opId) return "won";
  // This client's own create, decided in an earlier attempt (a retry through any coordinator).
  if (opKey(chosen) === opKey(own)) return sameContent(chosen, own) ? "retry_of_own" : "reused_seq";
  return "exists";
}

/** A replica's answer to a delete (undefined: failed or not yet answered). */
export interface DeleteAnswer {
  hadCopy: boolean;
  deletedAtMs: number;
}

/**
 * A delete answers once a majority confirmed and one of them had a copy; before a 404 it waits
 * for every replica, so a file held by one replica only is still found.
 */
export function deleteWaitsForAll(answers: readonly (DeleteAnswer | undefined)[]): boolean {
  return !answers.some((a) => a?.hadCopy);
}

export type DeleteVerdict = { kind: "deleted"; confirmed: number[] } | { kind: "unavailable"; confirmed: number } | { kind: "missing" };

export function judgeDelete(answers: readonly (DeleteAnswer | undefined)[], need: number): DeleteVerdict {
  const confirmed = answers.flatMap((a, i) => (a !== undefined ? [i] : []));
  if (confirmed.length < need) return { kind: "unavailable", confirmed: confirmed.length };
  if (!answers.some((a) => a?.hadCopy)) return { kind: "missing" };
  return { kind: "deleted", confirmed };
}

/**
 * A quorum read of the manifests: the merged live ops (with the replicas that hold a copy), or
 * missing, or unavailable (fewer than `need` answered). `repair`: replicas were found to differ
 * (ops, tombstone, or one did not answer) and something is held, so a merge should run.
 */
export type ReadView =
  { kind: "unavailable"; answered: number } | { kind: "missing"; repair: boolean } | { kind: "found"; ops: AppendOp[]; holders: RingNode[]; repair: boolean };

export function readView(answers: readonly ManifestAnswer[], replicaCount: number, need: number): ReadView {
  if (answers.length < need) return { kind: "unavailable", answered: answers.length };
  const floor = newestFloor(answers);
  const ops = liveMerge(
    answers.flatMap((a) => (a.ops ? [a.ops] : [])),
    floor,
  );
  const digest = ops && manifestDigest(ops);
  const differ =
    answers.length < replicaCount || answers.some((a) => a.deletedAtMs !== floor || (a.ops ? manifestDigest(a.ops) !== digest : ops !== undefined));
  // For a deleted file the repair deletes the copies a replica that missed the delete still has.
  const repair = differ && (ops !== undefined || answers.some((a) => a.ops));
  if (!ops) return { kind: "missing", repair };
  return { kind: "found", ops, holders: answers.filter((a) => a.ops).map((a) => a.node), repair };
}
