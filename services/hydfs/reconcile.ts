/**
 * The reconcile core: what the participants of a merge answered -> what to do at each of them.
 * No I/O, no clock: the driver (maintain.ts) gathers the answers, calls planReconcile, and runs
 * the actions through the transport; the background pass asks fileTask which files to touch and
 * mayDropCopy whether a handed-over copy may go.
 *
 * The rules (README "Consistency", docs/ARCHITECTURE.md §3):
 * - the newest tombstone any participant reports is the floor; ops at or before it are dead;
 * - no live create after the floor (and a floor): the file is deleted. A participant holding a
 *   copy deletes it (with the tombstone); one without a copy only learns the floor, so a create
 *   racing this pass is not deleted with it;
 * - otherwise every replica that differs adopts the union and the floor. A departing copy (a
 *   participant that is not a replica) is read, never updated.
 */
import { type AppendOp, liveMerge, manifestDigest, mergeManifests, newestFloor } from "./manifest.ts";
import { type NodeAddress, type RingNode, sameAddress } from "./ring.ts";

/** One participant's answer to a manifest request: its ops (undefined = no copy) and tombstone. */
export interface ManifestAnswer {
  node: RingNode;
  ops: AppendOp[] | undefined;
  deletedAtMs: number | undefined;
}

export type ReconcileAction =
  /** A copy whose every op is dead: a full delete there (tombstone first, then the copy goes). */
  | { kind: "delete"; node: RingNode; floor: number }
  /** A participant without a copy learns the floor (an adopt of no ops). */
  | { kind: "tombstone"; node: RingNode; floor: number }
  /** A replica that differs takes the union (chunks fetched from `sources`) and the floor. */
  | { kind: "adopt"; node: RingNode; ops: AppendOp[]; sources: NodeAddress[]; floor: number | undefined };

export type ReconcilePlan =
  /** Nobody holds the file or a tombstone of it. */
  | { kind: "missing" }
  | { kind: "deleted"; floor: number; actions: ReconcileAction[] }
  | { kind: "merged"; ops: AppendOp[]; digest: string; floor: number | undefined; actions: ReconcileAction[] };

/**
 * Who takes part in a merge: the file's replicas and, with `includeSelf` (the hand-over of a
 * copy this node no longer owns), this node too.
 */
export function participantsOf(replicas: readonly RingNode[], self: RingNode, includeSelf: boolean): RingNode[] {
  if (!includeSelf || replicas.some((r) => sameAddress(r, self))) return [...replicas];
  return [...replicas, self];
}

/** The actions that make every replica hold the live union of `answers` (see the file comment). */
export function planReconcile(replicas: readonly RingNode[], answers: readonly ManifestAnswer[]): ReconcilePlan {
  const holders = answers.filter((a) => a.ops);
  const floor = newestFloor(answers);
  const merged = liveMerge(
    holders.map((a) => a.ops!),
    floor,
  );
  if (!merged) {
    if (floor === undefined) return { kind: "missing" };
    const actions: ReconcileAction[] = [];
    for (const a of answers) {
      if (a.ops) actions.push({ kind: "delete", node: a.node, floor });
      else if (a.deletedAtMs !== floor) actions.push({ kind: "tombstone", node: a.node, floor });
    }
    return { kind: "deleted", floor, actions };
  }
  const digest = manifestDigest(merged);
  const sources = holders.map((a) => ({ host: a.node.host, hydfsPort: a.node.hydfsPort }));
  const actions: ReconcileAction[] = [];
  for (const a of answers) {
    if (a.ops && manifestDigest(a.ops) === digest && a.deletedAtMs === floor) continue;
    if (!replicas.some((r) => r.id === a.node.id)) continue;
    actions.push({ kind: "adopt", node: a.node, ops: merged, sources, floor });
  }
  return { kind: "merged", ops: merged, digest, floor, actions };
}

/** One participant's copy in brief (a digest request): digest undefined = no copy. */
export interface DigestAnswer {
  digest: string | undefined;
  hasCreate: boolean;
  deletedAtMs: number | undefined;
}

/**
 * The digest every participant holds when a merge has nothing to do, else undefined: every one of
 * the `participantCount` answered with a copy, all copies have the same digest and the same
 * tombstone, and, under a tombstone, they hold a create (else the file is deleted, which a full
 * merge carries out). This is exactly when planReconcile would find no action and that digest, so
 * the driver can skip fetching the manifests.
 */
export function agreedDigest(answers: readonly DigestAnswer[], participantCount: number): string | undefined {
  const first = answers[0];
  if (!first || answers.length !== participantCount || first.digest === undefined) return undefined;
  if (first.deletedAtMs !== undefined && !first.hasCreate) return undefined;
  return answers.every((a) => a.digest === first.digest && a.deletedAtMs === first.deletedAtMs && a.hasCreate === first.hasCreate) ? first.digest : undefined;
}

/** What the background pass does with one stored file. */
export type FileTask = "skip" | "merge" | "handover";

/**
 * An owner merges its dirty files with the other replicas (clean ones are skipped); a copy this
 * node does not own is handed over (merged into the owners, then dropped if they confirm).
 */
export function fileTask(owners: readonly NodeAddress[], self: NodeAddress, dirty: boolean): FileTask {
  if (!owners.some((o) => sameAddress(o, self))) return "handover";
  return dirty ? "merge" : "skip";
}

/**
 * Whether a handed-over copy may be dropped: the merge was confirmed by every participant, and
 * every owner answered with exactly the merged state `digest`.
 */
export function mayDropCopy(confirmed: boolean, digest: string, ownerAnswers: readonly { ops: AppendOp[] | undefined }[], ownerCount: number): boolean {
  return confirmed && ownerAnswers.length === ownerCount && ownerAnswers.every((a) => a.ops && manifestDigest(mergeManifests(a.ops)) === digest);
}
