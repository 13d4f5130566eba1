/**
 * HyDFS on the simulated cluster (testing/hydfs_sim.ts): real HydfsNodes and stores, a seeded
 * network and a virtual clock, so restarts, reconciles, re-replication, deletes and create races
 * run in milliseconds and replay from their seed. The seeded chaos run (testing/hydfs_chaos.ts)
 * checks the HyDFS guarantees after random crashes, partitions and loss: HYDFS_SIM_SEEDS=<n>
 * runs more seeds, HYDFS_SIM_SEED=<n> replays one.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { runChaos } from "../testing/hydfs_chaos.ts";
import { HydfsSim, type HydfsSimOptions } from "../testing/hydfs_sim.ts";
import { HydfsError } from "./node_types.ts";

let sim: HydfsSim | undefined;
afterEach(() => {
  sim?.close();
  sim = undefined;
});

function cluster(opts: Partial<HydfsSimOptions> = {}): HydfsSim {
  sim = new HydfsSim({ seed: 7, nodes: 5, ...opts });
  return sim;
}

/** The error a simulated call failed with (the test fails if it succeeded). */
async function failure(s: HydfsSim, p: Promise<unknown>): Promise<HydfsError> {
  const err = await s.until(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof HydfsError)) throw new Error(`expected a HydfsError, got ${String(err)}`);
  return err;
}

/** A node that is not among `exclude`. */
const other = (s: HydfsSim, ...exclude: number[]) => s.nodes.find((n) => !exclude.includes(n.index))!.index;

describe("HyDFS on a simulated cluster", () => {
  test("read-my-writes: every acknowledged append is in the next read, whichever nodes coordinate", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "", "c", 0));
    let want = "";
    for (let seq = 1; seq <= 10; seq++) {
      await s.until(s.write(seq % 5, "append", "f", `line ${seq}\n`, "c", seq));
      want += `line ${seq}\n`;
      expect(await s.until(s.read((seq + 2) % 5, "f"))).toBe(want);
    }
  });

  test("restart with the disk kept: the copy is still there, and what it missed while down is merged in", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "before\n", "c", 1));
    const [x] = s.owners("f");
    await s.waitFor(() => s.copyOf(x!, "f") === "before\n", 10_000, "the owner's copy");
    s.crash(x!);
    await s.until(s.write(other(s, x!), "append", "f", "while down\n", "c", 2));
    s.restart(x!);
    // Read from its store before any background pass ran: the disk kept the copy.
    expect(s.copyOf(x!, "f")).toBe("before\n");
    expect(s.nodes[x!]!.boot).toBe(1);
    await s.waitFor(() => s.owners("f").every((o) => s.copyOf(o, "f") === "before\nwhile down\n"), 30_000, "every owner holds both writes");
    expect(await s.until(s.read(x!, "f"))).toBe("before\nwhile down\n");
  });

  test("reconcile after a missed write: a replica cut off during an append gets it from the background merge", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "a\n", "c", 1));
    const owners = s.owners("f");
    const [cutOff] = owners;
    await s.waitFor(() => owners.every((o) => s.copyOf(o, "f") === "a\n"), 10_000, "all owners hold the create");
    s.partition(
      [cutOff!],
      s.nodes.map((n) => n.index).filter((i) => i !== cutOff),
    );
    const result = await s.until(s.write(other(s, cutOff!), "append", "f", "b\n", "c", 2));
    expect(result.acked).toHaveLength(2);
    expect(s.copyOf(cutOff!, "f")).toBe("a\n");
    s.heal();
    await s.waitFor(() => s.copyOf(cutOff!, "f") === "a\nb\n", 30_000, "the cut-off replica merged");
    expect(s.nodes.reduce((n, node) => n + node.node.metrics.merges, 0)).toBeGreaterThan(0);
  });

  test("re-replication after a crash: the ring's new owner gets a copy", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "data\n", "c", 1));
    const before = s.owners("f");
    const [dead] = before;
    s.crash(dead!);
    s.updateMembers();
    const after = s.owners("f");
    const fresh = after.filter((o) => !before.includes(o));
    expect(fresh).toHaveLength(1);
    expect(s.copyOf(fresh[0]!, "f")).toBeUndefined();
    await s.waitFor(() => s.copyOf(fresh[0]!, "f") === "data\n", 30_000, "the new owner holds a copy");
    // Fetched from the others by an adopt (each owner's background merge may send one).
    expect(s.nodes[fresh[0]!]!.node.metrics.rereplicatedBytes).toBeGreaterThanOrEqual("data\n".length);
  });

  test("delete: a replica that missed it has its copy deleted by the next read's repair, and the file stays gone", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "data\n", "c", 1));
    const owners = s.owners("f");
    await s.waitFor(() => owners.every((o) => s.copyOf(o, "f") !== undefined), 10_000, "all owners hold the create");
    const missed = owners[0]!;
    s.partition(
      [missed],
      s.nodes.map((n) => n.index).filter((i) => i !== missed),
    );
    const del = await s.until(s.delete(other(s, missed), "f"));
    expect(del.replicas).toHaveLength(2);
    expect(s.copyOf(missed, "f")).toBe("data\n");
    s.heal();
    // Through the stale replica itself: the majority's tombstone hides its copy.
    expect((await failure(s, s.read(missed, "f"))).status).toBe(404);
    await s.waitFor(
      () => s.copyOf(missed, "f") === undefined && s.nodes[missed]!.node.store.deletedAt("f") !== undefined,
      30_000,
      "the stale copy deleted, the tombstone learned",
    );
    await s.runFor(20_000);
    expect(s.nodes.map((n) => s.copyOf(n.index, "f"))).toEqual(s.nodes.map(() => undefined));
    // A new create after the delete is a new file.
    await s.until(s.write(missed, "create", "f", "new\n", "d", 1));
    expect(await s.until(s.read(0, "f"))).toBe("new\n");
  });

  test("create race: four coordinators create one name at once; exactly one wins, everywhere", async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const s = cluster({ seed, delayMs: [1, 20] });
      const attempts = [1, 2, 3, 4].map((c) =>
        s.write(c, "create", "race", `from ${c}\n`, `client-${c}`, 1).then(
          () => ({ c, ok: true as const }),
          (err: HydfsError) => ({ c, ok: false as const, status: err.status }),
        ),
      );
      const results = await s.until(Promise.all(attempts));
      const winners = results.filter((r) => r.ok);
      expect(winners).toHaveLength(1);
      expect(results.filter((r) => !r.ok).map((r) => (r as { status: number }).status)).toEqual([409, 409, 409]);
      const want = `from ${winners[0]!.c}\n`;
      await s.waitFor(() => s.owners("race").every((o) => s.copyOf(o, "race") === want), 30_000, `seed ${seed}: every owner holds the winner`);
      expect(await s.until(s.read(0, "race"))).toBe(want);
      s.close();
      sim = undefined;
    }
  });

  test("readiness: a restarted node whose view is not current coordinates nothing (503) but still stores as a replica; once current it serves", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "a\n", "c", 1));
    const [x] = s.owners("f");
    s.crash(x!);
    s.restart(x!);
    // As after a real restart, before memberd says the view is current (services/member/readiness.ts).
    s.nodes[x!]!.node.setViewReady(false);
    for (const call of [() => s.read(x!, "f"), () => s.write(x!, "append", "f", "b\n", "c", 2), () => s.delete(x!, "f")]) {
      const err = await failure(s, call());
      expect(err.status).toBe(503);
      expect(err.message).toContain("not current");
    }
    // Others still coordinate, and x, a replica of f, takes the append.
    await s.until(s.write(other(s, x!), "append", "f", "b\n", "c", 2));
    await s.waitFor(() => s.copyOf(x!, "f") === "a\nb\n", 10_000, "the unready node stores as a replica");
    s.nodes[x!]!.node.setViewReady(true);
    expect(await s.until(s.read(x!, "f"))).toBe("a\nb\n");
  });

  test("a retry of an append whose coordinator crashed before answering is applied once", async () => {
    const s = cluster();
    await s.until(s.write(0, "create", "f", "", "c", 0));
    const coordinator = other(s, ...s.owners("f"));
    const first = s.write(coordinator, "append", "f", "once\n", "c", 1);
    // Crash it as soon as the op reached a replica, before the quorum answered.
    await s.waitFor(() => s.owners("f").some((o) => s.copyOf(o, "f") === "once\n"), 5_000, "the op at a replica", 1);
    s.crash(coordinator);
    expect(
      await s.until(first).then(
        () => "acknowledged",
        (err: Error) => err.message,
      ),
    ).toContain("crashed");
    await s.until(s.write(other(s, coordinator), "append", "f", "once\n", "c", 1));
    await s.runFor(10_000);
    expect(await s.until(s.read(other(s, coordinator), "f"))).toBe("once\n");
  });
});

/** Seeds the chaos run tries in CI; HYDFS_SIM_SEEDS raises it, HYDFS_SIM_SEED replays one seed. */
const CI_CHAOS_SEEDS = 30;

function chaosSeeds(): number[] {
  const one = process.env.HYDFS_SIM_SEED;
  if (one) return [Number(one)];
  return Array.from({ length: Number(process.env.HYDFS_SIM_SEEDS ?? CI_CHAOS_SEEDS) }, (_, i) => i + 1);
}

describe("HyDFS chaos on a simulated cluster", () => {
  test("a run replays exactly from its seed", async () => {
    const [a, b, other] = [await runChaos({ seed: 5 }), await runChaos({ seed: 5 }), await runChaos({ seed: 6 })];
    expect(b).toEqual(a);
    expect(a.crashes + a.partitions).toBeGreaterThan(0);
    expect(other.messages).not.toBe(a.messages);
  });

  test(
    "random crashes, restarts, partitions and loss while clients write: every guarantee holds after healing",
    async () => {
      const failed: string[] = [];
      let acked = 0;
      for (const seed of chaosSeeds()) {
        const r = await runChaos({ seed });
        acked += r.acked;
        if (r.violations.length > 0) {
          failed.push(`seed ${seed}: ${r.violations.join("; ")}`);
          console.error(
            `hydfs chaos seed ${seed} failed (${r.crashes} crashes, ${r.partitions} partitions): ${r.violations.join("; ")}\nreplay with HYDFS_SIM_SEED=${seed}`,
          );
        }
      }
      expect(failed).toEqual([]);
      // The runs did write: a chaos run where nothing is acknowledged proves nothing.
      expect(acked).toBeGreaterThan(chaosSeeds().length * 20);
    },
    { timeout: 600_000 },
  );
});
