/**
 * Table tests of the pure decision cores of HyDFS: reconcile (what the participants of a merge
 * answered -> actions, which files the background pass touches, when a handed-over copy may go)
 * and the quorum verdicts of writes, deletes, creates and reads (quorum.ts).
 */
import { describe, expect, test } from "bun:test";
import { type AppendOp, manifestDigest } from "./manifest.ts";
import { deleteWaitsForAll, judgeCreate, judgeDelete, judgeWrite, readView, type ReplicaAnswer, retryStoreIfMissing } from "./quorum.ts";
import { agreedDigest, type DigestAnswer, fileTask, type ManifestAnswer, mayDropCopy, participantsOf, planReconcile } from "./reconcile.ts";
import type { RingNode } from "./ring.ts";

const node = (n: number): RingNode => ({ id: `10.0.0.${n}:5000@1`, host: `10.0.0.${n}`, hydfsPort: 4000, token: BigInt(n) });
const [A, B, C, D] = [node(1), node(2), node(3), node(4)];
const REPLICAS = [A, B, C];

const op = (clientId: string, seq: number, tsMs: number, kind: "create" | "append" = "append"): AppendOp => ({
  opId: `${clientId}-${seq}-${tsMs}`,
  clientId,
  seq,
  tsMs,
  chunks: [],
  size: 0,
  kind,
});
const CREATE = op("w", 0, 100, "create");
const APPEND1 = op("w", 1, 200);
const APPEND2 = op("x", 1, 300);
const RECREATE = op("y", 0, 600, "create");

const answer = (n: RingNode, ops: AppendOp[] | undefined, deletedAtMs?: number): ManifestAnswer => ({ node: n, ops, deletedAtMs });
const addr = (n: RingNode) => ({ host: n.host, hydfsPort: n.hydfsPort });

describe("planReconcile", () => {
  const merged = [CREATE, APPEND1, APPEND2];
  const cases: [string, ManifestAnswer[], unknown][] = [
    ["nobody holds it, no tombstone: missing", [answer(A, undefined), answer(B, undefined)], { kind: "missing" }],
    ["no answers at all: missing", [], { kind: "missing" }],
    ["all equal: merged, no action", [answer(A, merged), answer(B, merged), answer(C, merged)], { kind: "merged", ops: merged, floor: undefined, actions: [] }],
    [
      "one missed an append: only it adopts, from every holder",
      [answer(A, [CREATE, APPEND1]), answer(B, merged), answer(C, [CREATE, APPEND2])],
      {
        kind: "merged",
        ops: merged,
        actions: [
          { kind: "adopt", node: A, ops: merged, sources: [addr(A), addr(B), addr(C)], floor: undefined },
          { kind: "adopt", node: C, ops: merged, sources: [addr(A), addr(B), addr(C)], floor: undefined },
        ],
      },
    ],
    [
      "a replica without a copy adopts the union",
      [answer(A, merged), answer(B, undefined)],
      { kind: "merged", actions: [{ kind: "adopt", node: B, ops: merged, sources: [addr(A)], floor: undefined }] },
    ],
    [
      "deleted at 500, one stale copy: that copy is deleted, a replica without the tombstone learns it",
      [answer(A, merged), answer(B, undefined, 500), answer(C, undefined)],
      {
        kind: "deleted",
        floor: 500,
        actions: [
          { kind: "delete", node: A, floor: 500 },
          { kind: "tombstone", node: C, floor: 500 },
        ],
      },
    ],
    ["deleted everywhere already: nothing to do", [answer(A, undefined, 500), answer(B, undefined, 500)], { kind: "deleted", floor: 500, actions: [] }],
    [
      "appends after the delete without a new create die with it",
      [answer(A, [CREATE, op("z", 1, 700)], undefined), answer(B, undefined, 500)],
      { kind: "deleted", floor: 500, actions: [{ kind: "delete", node: A, floor: 500 }] },
    ],
    [
      "re-created after the delete: the new file lives, the tombstone travels with it",
      [answer(A, [CREATE, APPEND1]), answer(B, [RECREATE], 500), answer(C, undefined, 500)],
      {
        kind: "merged",
        ops: [RECREATE],
        floor: 500,
        actions: [
          { kind: "adopt", node: A, ops: [RECREATE], sources: [addr(A), addr(B)], floor: 500 },
          { kind: "adopt", node: C, ops: [RECREATE], sources: [addr(A), addr(B)], floor: 500 },
        ],
      },
    ],
    [
      "a departing copy (not a replica) is read, never updated",
      [answer(A, [CREATE]), answer(B, [CREATE]), answer(C, [CREATE]), answer(D, merged)],
      {
        kind: "merged",
        ops: merged,
        actions: [A, B, C].map((n) => ({ kind: "adopt", node: n, ops: merged, sources: [addr(A), addr(B), addr(C), addr(D)], floor: undefined })),
      },
    ],
  ];
  test.each(cases)("%s", (_, answers, want) => {
    expect(planReconcile(REPLICAS, answers)).toMatchObject(want as object);
  });

  test("the merged plan carries the digest of the merged ops", () => {
    const plan = planReconcile(REPLICAS, [answer(A, [APPEND2, CREATE])]);
    expect(plan).toMatchObject({ kind: "merged", digest: manifestDigest([CREATE, APPEND2]) });
  });
});

describe("participantsOf, fileTask, mayDropCopy", () => {
  test.each([
    ["replicas only", [A, B, C], D, false, [A, B, C]],
    ["hand-over adds this node", [A, B, C], D, true, [A, B, C, D]],
    ["a replica is never added twice", [A, B, C], B, true, [A, B, C]],
  ] as [string, RingNode[], RingNode, boolean, RingNode[]][])("%s", (_, replicas, self, includeSelf, want) => {
    expect(participantsOf(replicas, self, includeSelf)).toEqual(want);
  });

  test.each([
    ["owner, dirty: merge", [A, B, C], A, true, "merge"],
    ["owner, clean: skip", [A, B, C], A, false, "skip"],
    ["not an owner: hand over (dirty or not)", [A, B, C], D, false, "handover"],
    ["same host, other port: not an owner", [A, B, C], { ...A, hydfsPort: 4001 }, true, "handover"],
  ] as [string, RingNode[], RingNode, boolean, string][])("%s", (_, owners, self, dirty, want) => {
    expect(fileTask(owners, self, dirty)).toBe(want as never);
  });

  const digest = manifestDigest([CREATE, APPEND1]);
  test.each([
    [
      "every owner holds the merged state",
      true,
      [
        [CREATE, APPEND1],
        [APPEND1, CREATE],
        [CREATE, APPEND1],
      ],
      3,
      true,
    ],
    [
      "the merge was not confirmed",
      false,
      [
        [CREATE, APPEND1],
        [CREATE, APPEND1],
        [CREATE, APPEND1],
      ],
      3,
      false,
    ],
    [
      "an owner did not answer",
      true,
      [
        [CREATE, APPEND1],
        [CREATE, APPEND1],
      ],
      3,
      false,
    ],
    ["an owner has no copy", true, [[CREATE, APPEND1], undefined, [CREATE, APPEND1]], 3, false],
    ["an owner holds something else", true, [[CREATE, APPEND1], [CREATE], [CREATE, APPEND1]], 3, false],
  ] as [string, boolean, (AppendOp[] | undefined)[], number, boolean][])("%s", (_, confirmed, owners, count, want) => {
    expect(
      mayDropCopy(
        confirmed,
        digest,
        owners.map((ops) => ({ ops })),
        count,
      ),
    ).toBe(want);
  });
});

describe("write verdicts (judgeWrite, retryStoreIfMissing)", () => {
  const cases: [string, (ReplicaAnswer | undefined)[], unknown][] = [
    ["a majority ok", ["ok", "ok", undefined], { kind: "acked", acked: [0, 1], duplicate: false }],
    ["a retry: duplicates count", ["duplicate", "ok", "error"], { kind: "acked", acked: [0, 1], duplicate: true }],
    ["one ok is not enough", ["ok", "error", "error"], { kind: "unavailable", acked: 1 }],
    ["conflict wins over acks: abort where applied", ["ok", "conflict", "ok"], { kind: "conflict", abortAt: [0, 2], holders: [1] }],
    ["full: abort where applied", ["ok", "full", "full"], { kind: "full", abortAt: [0] }],
    ["a quorum says no such file", ["no_such_file", "no_such_file", "error"], { kind: "no_such_file" }],
    ["one no_such_file is a 503", ["no_such_file", "error", "error"], { kind: "unavailable", acked: 0 }],
    ["no_such_file with an ack is not a 404", ["no_such_file", "no_such_file", "ok"], { kind: "unavailable", acked: 1 }],
  ];
  test.each(cases)("%s", (_, answers, want) => {
    expect(judgeWrite(answers, 2)).toEqual(want as never);
  });

  test.each([
    [["ok", "no_such_file", "error"], true],
    [["ok", "ok", "no_such_file"], false],
    [["no_such_file", "no_such_file", "error"], false],
    [["ok", "error", "error"], false],
  ] as [ReplicaAnswer[], boolean][])("retryStoreIfMissing(%p) = %p", (answers, want) => {
    expect(retryStoreIfMissing(answers, 2)).toBe(want);
  });
});

describe("create verdicts (judgeCreate)", () => {
  const mine = { ...CREATE, chunks: [{ id: "a".repeat(64), size: 1 }], size: 1 };
  test.each([
    ["this attempt's op was chosen", mine, "won"],
    ["an earlier attempt of the same client and seq, same bytes", { ...mine, opId: "earlier" }, "retry_of_own"],
    ["same client and seq, other bytes", { ...mine, opId: "earlier", chunks: [{ id: "b".repeat(64), size: 1 }] }, "reused_seq"],
    ["another client's create", { ...mine, opId: "other", clientId: "v" }, "exists"],
  ] as [string, AppendOp, string][])("%s", (_, chosen, want) => {
    expect(judgeCreate(mine, chosen)).toBe(want as never);
  });
});

describe("delete verdicts (deleteWaitsForAll, judgeDelete)", () => {
  const had = { hadCopy: true, deletedAtMs: 5 };
  const none = { hadCopy: false, deletedAtMs: 5 };
  test.each([
    ["a majority, one had a copy", [had, none, undefined], false, { kind: "deleted", confirmed: [0, 1] }],
    ["a majority, none had a copy: waits, then 404", [none, none, undefined], true, { kind: "missing" }],
    ["one answer only", [had, undefined, undefined], false, { kind: "unavailable", confirmed: 1 }],
    ["too few answers wins over missing", [none, undefined, undefined], true, { kind: "unavailable", confirmed: 1 }],
  ] as [string, ({ hadCopy: boolean; deletedAtMs: number } | undefined)[], boolean, unknown][])("%s", (_, answers, waits, want) => {
    expect(deleteWaitsForAll(answers)).toBe(waits);
    expect(judgeDelete(answers, 2)).toEqual(want as never);
  });
});

describe("read view (readView)", () => {
  const ops = [CREATE, APPEND1];
  test.each([
    ["all agree: found, no repair", [answer(A, ops), answer(B, ops), answer(C, ops)], { kind: "found", ops, holders: [A, B, C], repair: false }],
    ["one did not answer: found, repair", [answer(A, ops), answer(B, ops)], { kind: "found", ops, holders: [A, B], repair: true }],
    ["one lags: the union, repair", [answer(A, [CREATE]), answer(B, ops), answer(C, ops)], { kind: "found", ops, repair: true }],
    ["too few answers", [answer(A, ops)], { kind: "unavailable", answered: 1 }],
    ["nobody has it: missing, nothing to repair", [answer(A, undefined), answer(B, undefined), answer(C, undefined)], { kind: "missing", repair: false }],
    [
      "deleted, one stale copy: missing, repair deletes it",
      [answer(A, ops), answer(B, undefined, 500), answer(C, undefined, 500)],
      { kind: "missing", repair: true },
    ],
    [
      "deleted everywhere: missing, no repair",
      [answer(A, undefined, 500), answer(B, undefined, 500), answer(C, undefined, 500)],
      { kind: "missing", repair: false },
    ],
  ] as [string, ManifestAnswer[], unknown][])("%s", (_, answers, want) => {
    expect(readView(answers, 3, 2)).toMatchObject(want as object);
  });
});

describe("agreedDigest: when a merge may skip the manifests", () => {
  /** Each participant's brief as its copy would give it (undefined ops = no copy). */
  const brief = (ops: AppendOp[] | undefined, deletedAtMs?: number): DigestAnswer => ({
    digest: ops && manifestDigest(ops),
    hasCreate: ops?.some((o) => o.kind === "create") ?? false,
    deletedAtMs,
  });
  const same = [CREATE, APPEND1];
  test.each([
    { why: "all three hold the same copy", answers: [brief(same), brief(same), brief(same)], agreed: true },
    { why: "one did not answer", answers: [brief(same), brief(same)], agreed: false },
    { why: "one lacks an append", answers: [brief(same), brief(same), brief([CREATE])], agreed: false },
    { why: "one has no copy", answers: [brief(same), brief(same), brief(undefined)], agreed: false },
    { why: "nobody has a copy", answers: [brief(undefined), brief(undefined), brief(undefined)], agreed: false },
    { why: "one learned a tombstone the others lack", answers: [brief(same), brief(same), brief(same, 50)], agreed: false },
    { why: "the same tombstone under a re-created copy", answers: [brief([RECREATE], 500), brief([RECREATE], 500), brief([RECREATE], 500)], agreed: true },
    { why: "the same tombstone over copies without a create (a delete to carry out)", answers: [brief([APPEND2], 250), brief([APPEND2], 250), brief([APPEND2], 250)], agreed: false },
  ])("$why -> agreed: $agreed", ({ answers, agreed }) => {
    expect(agreedDigest(answers, 3) !== undefined).toBe(agreed);
  });

  test("whenever it agrees, planReconcile on the full manifests plans nothing and finds the same digest", () => {
    const cases: [AppendOp[], number | undefined][] = [
      [[CREATE, APPEND1, APPEND2], undefined],
      [[RECREATE], 500],
      [[APPEND1], undefined],
    ];
    for (const [ops, floor] of cases) {
      const d = agreedDigest([brief(ops, floor), brief(ops, floor), brief(ops, floor)], 3);
      const plan = planReconcile(REPLICAS, [answer(A, ops, floor), answer(B, ops, floor), answer(C, ops, floor)]);
      expect(plan.kind).toBe("merged");
      if (plan.kind !== "merged") continue;
      expect([plan.actions, plan.digest]).toEqual([[], d!]);
    }
  });
});
