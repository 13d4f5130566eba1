/**
 * A restarted introducer keeps HyDFS's promises, on 4 real nodes (testNet(71).k; all three daemons
 * each). Node 1 (the introducer, and the RainStorm leader) is killed and restarted while files
 * exist and clients hammer it with appends:
 * - until its memberd's view is current (`/list_self` ready false -> true), its hydfsd answers
 *   503 and its leader refuses jobs with 503; an append it acknowledges names 3 replicas and at
 *   least 2 acks, never fewer; no append of an existing file gets 404;
 * - afterwards every acknowledged append is in a quorum read through every other node;
 * - a peer that died meanwhile delays readiness by rejoin_wait_ms, no longer, and ctl rides out
 *   the wait by retrying its 503s.
 * To hold the window open deterministically, the other memberds are stopped (SIGSTOP) while
 * node 1 restarts in the first case: node 1 then starts alone, exactly the state in which it
 * once acknowledged appends stored on itself only.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { peersFilePath } from "../member/driver.ts";
import { decodePeersFile } from "../member/readiness.ts";
import { VIEW_NOT_READY_ERROR } from "../rainstorm/leader.ts";
import { isAlive, LocalCluster, SERVICES, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient, ringOwners } from "../testing/hydfs_client.ts";
import { RainstormTestClient } from "../testing/rainstorm_client.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(180_000));

const SUBNET = testNet(71);
const NODES = [1, 2, 3, 4];
const FILES = ["r0.log", "r1.log", "r2.log", "r3.log", "r4.log", "r5.log"];
/** The default rejoin_wait_ms (the cluster runs with it). */
const REJOIN_WAIT_MS = 5000;
const CTL = resolve(import.meta.dir, "../ctl.ts");
/** Longer than the retransmission of the join news (λ·log2(n+1) = 9 probe rounds of 500 ms). */
const QUIET_MS = 6000;

/** The hosts of the first 3 ring members clockwise from the file's token (sorted). */
const ownersOf = (members: { host: string; token: string }[], name: string): string[] => ringOwners(members, name).sort();

type Outcome = { file: string; line: string; status: number; body: any } | { file: string; line: string; status: "down"; body: string };

describe("a restarted introducer (4 nodes)", () => {
  const c = new LocalCluster({ dir: tempPath("hydfs-restart-"), subnet: SUBNET, knobs: { t_cleanup_ms: 3000 }, killOnExit: true });
  const work = tempPath("hydfs-restart-work-");

  beforeAll(async () => {
    mkdirSync(work, { recursive: true });
    await c.up(4);
    const setup = new HydfsTestClient(c);
    for (const name of FILES) await setup.write(2, "create", name, `${name} begins\n`);
  });
  afterAll(async () => {
    await c.down(true);
    rmSync(work, { recursive: true, force: true });
  });

  const peersFile = () => peersFilePath(join(c.dir, "node-1", "data"));
  const udpOf = (k: number) => `${c.host(k)}:5000`;

  async function ready(k: number): Promise<boolean | undefined> {
    try {
      const res = await c.http.fetch(c.httpUrl(k, "/list_self"), { timeoutMs: scaled(500) });
      return ((await res.json()) as { ready?: boolean }).ready;
    } catch {
      return undefined;
    }
  }

  /** Kill every daemon of node k and wait until they are gone. */
  async function killNode(k: number): Promise<void> {
    c.kill(k);
    await waitFor(() => SERVICES.every((s) => !isAlive(c.pid(k, s))), scaled(5000), `node ${k} to exit`);
  }

  /** Poll node 1's `/list_self` readiness every 25 ms until `stop()`; the distinct values in order. */
  function watchReadiness(): { seen: boolean[]; firstTrueMs: () => number | undefined; stop: () => Promise<void> } {
    const seen: boolean[] = [];
    let firstTrue: number | undefined;
    let running = true;
    const loop = (async () => {
      while (running) {
        const r = await ready(1);
        if (r !== undefined && seen[seen.length - 1] !== r) seen.push(r);
        if (r === true && firstTrue === undefined) firstTrue = performance.now();
        await Bun.sleep(25);
      }
    })();
    return {
      seen,
      firstTrueMs: () => firstTrue,
      stop: async () => {
        running = false;
        await loop;
      },
    };
  }

  /** Wait until node 1's persisted peers file lists exactly these nodes. */
  async function peersFileLists(nodes: number[]): Promise<void> {
    await waitFor(
      () => {
        try {
          return decodePeersFile(readFileSync(peersFile(), "utf8")).join(",") === nodes.map(udpOf).join(",");
        } catch {
          return false;
        }
      },
      scaled(10_000),
      `node 1's peers file to list nodes ${nodes.join(", ")}`,
    );
  }

  test("stays out of the way until its view is current; every acknowledged append is in every later quorum read", async () => {
    // The introducer knows its peers from before (written once its view was current).
    await peersFileLists([2, 3, 4]);
    expect(await ready(1)).toBe(true);
    // A quiet cluster, as in production: the news of the joins is no longer piggybacked, so the
    // restarted introducer learns each peer from that peer itself, one by one (a partial ring).
    await Bun.sleep(QUIET_MS);

    // The peers' memberds stop, so the restarted introducer starts alone and stays alone.
    for (const k of [2, 3, 4]) c.signal(k, "SIGSTOP", "memberd");
    let resumed = false;
    const resume = () => {
      if (resumed) return;
      resumed = true;
      for (const k of [2, 3, 4]) c.signal(k, "SIGCONT", "memberd");
    };
    try {
      await killNode(1);
      for (const s of SERVICES) c.startService(1, s);
      const readiness = watchReadiness();

      // Three clients append to the existing files through node 1 from the moment it is back.
      const outcomes: Outcome[] = [];
      let appending = true;
      const writers = [0, 1, 2].map(async (w) => {
        const clientId = `restart-${w}-${crypto.randomUUID()}`;
        for (let seq = 1; appending; seq++) {
          const file = FILES[(seq + w) % FILES.length]!;
          const line = `${clientId} ${seq}\n`;
          const path = `/append?name=${encodeURIComponent(file)}&client=${encodeURIComponent(clientId)}&seq=${seq}`;
          try {
            const res = await c.http.fetch(c.hydfsUrl(1, path), { method: "POST", body: line, timeoutMs: 15_000 });
            const text = await res.text();
            let body: any = text;
            try {
              body = JSON.parse(text);
            } catch {}
            outcomes.push({ file, line, status: res.status, body });
          } catch (err) {
            outcomes.push({ file, line, status: "down", body: (err as Error).message });
          }
          await Bun.sleep(20);
        }
      });

      // Alone, node 1 is not current: its hydfsd answers 503 and its leader refuses jobs.
      await waitFor(() => outcomes.some((o) => o.status === 503), scaled(30_000), "node 1's hydfsd to answer an append (with 503)");
      expect(await ready(1)).toBe(false);
      // rainstormd may start serving after hydfsd (a loaded box): any answer means it listens.
      await waitFor(
        async () => !!(await c.http.fetch(`http://${c.host(1)}:15000/tasks`, { timeoutMs: scaled(1000) })),
        scaled(30_000),
        "node 1's rainstormd to serve",
      );
      const job = await new RainstormTestClient(c).run(
        ["1", "1", "echo-wrapper", "", FILES[0]!, "restart-out.txt", "false", "false", "0", "0", "0"],
        scaled(10_000),
      );
      expect(job.rejected).toEqual({ status: 503, error: VIEW_NOT_READY_ERROR });
      await Bun.sleep(500);
      expect(outcomes.filter((o) => o.status === 200)).toEqual([]);

      // The peers come back one by one; they find the new introducer (their probes reach it).
      // Until the last is back, node 1 knows a partial ring (of 2, then 3 nodes): no acks.
      for (const k of [2, 3]) {
        c.signal(k, "SIGCONT", "memberd");
        await Bun.sleep(400);
      }
      resume();
      await waitFor(async () => (await ready(1)) === true, scaled(15_000), "node 1's view to be current again");
      await waitFor(() => outcomes.some((o) => o.status === 200), scaled(15_000), "an append through node 1 to be acknowledged");
      await Bun.sleep(1500);
      appending = false;
      await Promise.all(writers);
      await readiness.stop();

      expect(readiness.seen).toEqual([false, true]);
      const unexpected = outcomes.filter((o) => o.status !== 200 && o.status !== 503 && o.status !== "down");
      expect(unexpected).toEqual([]);
      const acked = outcomes.filter((o): o is Extract<Outcome, { status: number }> => o.status === 200);
      const log = readFileSync(c.logPath(1, "memberd"), "utf8");
      expect(log).toContain("membership view current: 4 members (all 3 peers known from before are back)");

      // Every acknowledgement names the file's 3 owners on the whole ring (never a partial
      // ring's choice), at least 2 of which acknowledged.
      await c.waitHydfsRing(NODES, scaled(30_000));
      const client = new HydfsTestClient(c);
      const { members } = await client.listMemIds(2);
      for (const o of acked) {
        expect({ line: o.line, replicas: [...o.body.replicas].sort() }).toEqual({ line: o.line, replicas: ownersOf(members, o.file) });
        expect(o.body.acked.length).toBeGreaterThanOrEqual(2);
        expect(o.body.duplicate).toBe(false);
      }

      // Every acknowledged append is in a quorum read through every other node.
      for (const file of FILES) {
        const want = acked.filter((o) => o.file === file).map((o) => o.line);
        for (const k of [2, 3, 4]) {
          // Only a success counts: a read that answers must hold every acknowledged append.
          const text = await client.getTextWhenServed(k, file);
          const missing = want.filter((line) => !text.includes(line));
          expect({ file, node: k, missing }).toEqual({ file, node: k, missing: [] });
        }
      }
    } finally {
      resume();
    }
  });

  test("a peer that died meanwhile delays readiness by rejoin_wait_ms, no longer; ctl retries through the wait", async () => {
    await waitFor(async () => (await ready(1)) === true, scaled(10_000), "node 1 to be ready");
    await peersFileLists([2, 3, 4]);
    // Node 1's memberd stops (so its peers file keeps node 4), node 4 dies, and the survivors
    // declare it failed: when node 1 restarts, nobody can bring node 4 back.
    c.signal(1, "SIGSTOP", "memberd");
    const node4 = (await c.members(2)).find((m) => m.id.startsWith(`${c.host(4)}:`))!.id;
    await killNode(4);
    await waitFor(
      async () => {
        for (const k of [2, 3]) {
          const state = (await c.members(k)).find((m) => m.id === node4)?.state;
          if (state === "alive" || state === "suspect") return false;
        }
        return true;
      },
      scaled(15_000),
      "nodes 2 and 3 to declare node 4 failed",
    );
    await killNode(1);
    const started = performance.now();
    for (const s of SERVICES) c.startService(1, s);
    const readiness = watchReadiness();

    // ctl appends through node 1 at once: it is told 503 and retries until node 1 serves.
    const config = join(work, "config.json");
    writeFileSync(config, JSON.stringify({ aliases: { "01": c.host(1) } }));
    writeFileSync(join(work, "more.txt"), "through the wait\n");
    await waitFor(async () => (await ready(1)) === false, scaled(10_000), "node 1's memberd to answer");
    const proc = Bun.spawn(
      [process.execPath, CTL, "append", join(work, "more.txt"), FILES[1]!, "--node", "01", "--timeout", String(scaled(15_000)), "--config", config],
      {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, RAINSTORM_CTL_STATE: join(work, "client.json") },
      },
    );
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ code: await proc.exited, out, err }).toMatchObject({ code: 0, out: expect.stringContaining(`to ${FILES[1]} (acknowledged by`) });
    expect(err).toContain("retrying: ");
    expect(err).toContain("(HTTP 503)");

    await waitFor(async () => (await ready(1)) === true, scaled(REJOIN_WAIT_MS + 15_000), "node 1's view to be current");
    await readiness.stop();
    expect(readiness.seen).toEqual([false, true]);
    // Readiness came from rejoin_wait_ms (counted from memberd's start, which is after the spawn).
    expect(readiness.firstTrueMs()! - started).toBeGreaterThanOrEqual(REJOIN_WAIT_MS);
    expect(readFileSync(c.logPath(1, "memberd"), "utf8")).toContain(`did not come back and are presumed dead (${udpOf(4)})`);

    // The view is current now: an append through node 1 names 3 replicas, node 4 not among them.
    await c.waitHydfsRing([1, 2, 3], scaled(20_000));
    const client = new HydfsTestClient(c);
    const r = await client.write(1, "append", FILES[2]!, "after the wait\n");
    expect(r.replicas.length).toBe(3);
    expect(r.replicas).not.toContain(c.host(4));
    for (const k of [2, 3]) expect(await client.getText(k, FILES[1]!)).toContain("through the wait\n");
    // Its peers file no longer lists the dead peer.
    await waitFor(
      () => decodePeersFile(readFileSync(peersFile(), "utf8")).join(",") === [2, 3].map(udpOf).join(","),
      scaled(10_000),
      "node 1's peers file to drop node 4",
    );
  });
});
