/**
 * HyDFS when clients race, on 5 real nodes (testNet(81).k): creates of one name through 5
 * coordinators at once (exactly one wins, every other client is told truthfully that the name
 * exists, all replicas hold the winner's bytes), and one (client, seq) retried through several
 * coordinators at once (applied exactly once), for creates and appends.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const NODES = [1, 2, 3, 4, 5];

describe("HyDFS under racing clients", () => {
  const c = new LocalCluster({ dir: tempPath("hydfs-race-"), subnet: testNet(81), killOnExit: true });
  const clients = NODES.map((k) => new HydfsTestClient(c, `racer-${k}-${crypto.randomUUID().slice(0, 6)}`));
  const reader = new HydfsTestClient(c);

  beforeAll(async () => {
    await c.up(5);
  });
  afterAll(async () => {
    await c.down(true);
  });

  /** Every replica's raw copy equals `text` (the learn of the last replica may trail the answer). */
  async function replicasHold(name: string, text: string): Promise<void> {
    const owners = (await reader.ls(1, name)).replicas.map((r) => Number(r.host.split(".").pop()));
    expect(owners.length).toBe(3);
    await waitFor(
      async () => {
        for (const k of owners) {
          const copy = await reader.fromReplica(k, name);
          if (!copy || new TextDecoder().decode(copy) !== text) return false;
        }
        return true;
      },
      scaled(10_000),
      `every replica of ${name} to hold the winner's bytes`,
    );
  }

  test("5 creates of one name through 5 coordinators at once, 20 names: one winner, four true refusals", async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 20; round++) {
      const name = `race-${round}`;
      const results = await Promise.all(
        NODES.map((k, i) =>
          clients[i]!.write(k, "create", name, `written by racer ${k}\n`).then(
            (r) => ({ k, ok: true as const, r }),
            (err: Error & { status?: number; body?: { error?: string } }) => ({
              k,
              ok: false as const,
              status: err.status,
              error: err.body?.error ?? err.message,
            }),
          ),
        ),
      );
      const winners = results.filter((r) => r.ok);
      const losers = results.filter((r) => !r.ok);
      outcomes.push(`${name}: winners ${winners.map((w) => w.k).join(",")}; losers ${losers.map((l) => `${l.k}:${"status" in l ? l.status : "?"}`).join(",")}`);
      expect([name, winners.length]).toEqual([name, 1]);
      for (const l of losers) {
        expect([name, l.k, "status" in l && l.status]).toEqual([name, l.k, 409]);
        expect("error" in l && l.error).toContain("a file with that name already exists");
      }
      const winner = winners[0]!.k;
      const text = `written by racer ${winner}\n`;
      // The refusals were true: the file exists, through every coordinator, with the winner's bytes.
      for (const k of NODES) expect([name, k, await reader.getText(k, name)]).toEqual([name, k, text]);
      await replicasHold(name, text);
    }
    console.log(outcomes.join("\n"));
  });

  test("one create retried through 3 coordinators at once is applied once; other bytes under that (client, seq) are refused", async () => {
    const me = new HydfsTestClient(c, `retrier-${crypto.randomUUID().slice(0, 6)}`);
    const seq = me.nextSeq();
    const results = await Promise.all([1, 3, 5].map((k) => me.write(k, "create", "retried-create", "once\n", seq)));
    expect(results.filter((r) => r.duplicate === false).length).toBe(1);
    expect(results.filter((r) => r.duplicate === true).length).toBe(2);
    expect(await reader.getText(2, "retried-create")).toBe("once\n");
    const reuse = await me.write(4, "create", "retried-create", "other\n", seq).catch((e) => e);
    expect(reuse.status).toBe(409);
    expect(reuse.body.error).toContain("already used for different bytes");
    await replicasHold("retried-create", "once\n");
  });

  test("one append retried through 4 coordinators at once is applied once", async () => {
    const me = new HydfsTestClient(c, `appender-${crypto.randomUUID().slice(0, 6)}`);
    await me.write(1, "create", "retried-append", "head\n");
    for (let i = 0; i < 5; i++) {
      const seq = me.nextSeq();
      const results = await Promise.all([2, 3, 4, 5].map((k) => me.write(k, "append", "retried-append", `line ${i}\n`, seq)));
      expect(results.every((r) => r.acked.length >= 2 && r.replicas.length === 3)).toBe(true);
    }
    const want = `head\n${[0, 1, 2, 3, 4].map((i) => `line ${i}\n`).join("")}`;
    for (const k of NODES) expect(await reader.getText(k, "retried-append")).toBe(want);
    await reader.merge(1, "retried-append");
    await replicasHold("retried-append", want);
  });
});
