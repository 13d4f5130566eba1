/**
 * Joining and leaving on real processes: a 4-node secured cluster on testNet(86).k (LocalCluster).
 * - a joiner with a wrong or missing secret: both sides say "join refused: authentication
 *   failed (check cluster_secret)", and the joiner prints no ready line;
 * - SIGTERM to one daemon (node 3's hydfsd) stops the node gracefully: peers list it `left`
 *   within a second, its three daemons exit, and its files are back on 3 replicas among the rest;
 * - `/leave` at a memberd (what `ctl leave` sends) stops that node's three daemons too.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { isAlive, LocalCluster, SERVICES, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(90_000));

const SECRET = "stop-test-secret";
const REFUSED = "join refused: authentication failed (check cluster_secret)";

describe("joining with the wrong secret, and leaving (4 processes per node kind)", () => {
  const c = new LocalCluster({ dir: tempPath("daemon-stop-"), subnet: testNet(86), secret: SECRET, killOnExit: true });
  const client = new HydfsTestClient(c);
  const intruders: ReturnType<typeof Bun.spawn>[] = [];

  beforeAll(async () => {
    await c.up(4);
  });
  // Nodes 3 and 4 leave in the tests below: whatever ran before, each test starts with all 4.
  beforeEach(async () => {
    await c.up(4);
  });
  afterAll(async () => {
    for (const p of intruders) p.kill("SIGKILL");
    await c.down(true);
  });

  /** A memberd outside the cluster's secret, joining through node 1; its stdout and stderr as they come. */
  function intruder(k: number, secretArgs: string[]) {
    const proc = Bun.spawn(
      [...c.command("memberd"), "--host", c.host(k), "--introducer", `${c.host(1)}:6000`, "--data-dir", `${c.dir}/intruder-${k}`, ...secretArgs],
      {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, RAINSTORM_SECRET: "" },
      },
    );
    intruders.push(proc);
    const seen = { out: "", err: "" };
    const drain = async (s: ReadableStream<Uint8Array>, to: "out" | "err") => {
      const dec = new TextDecoder();
      for await (const chunk of s) seen[to] += dec.decode(chunk, { stream: true });
    };
    void drain(proc.stdout as ReadableStream<Uint8Array>, "out");
    void drain(proc.stderr as ReadableStream<Uint8Array>, "err");
    return { proc, seen };
  }

  test("a wrong or missing secret: the joiner and the introducer both say why; no ready line, never admitted", async () => {
    const wrong = intruder(9, ["--secret", "not-the-secret"]);
    const open = intruder(10, []);
    try {
      for (const [k, j] of [
        [9, wrong],
        [10, open],
      ] as const) {
        await waitFor(() => j.seen.err.includes(REFUSED), scaled(10_000), `the joiner at node ${k} to log the refusal (stderr: ${j.seen.err})`);
        await waitFor(
          () =>
            readFileSync(c.logPath(1, "memberd"), "utf8").match(
              new RegExp(
                `join refused from [0-9.]+: authentication failed \\(check cluster_secret\\); the join was for ${c.host(k).replaceAll(".", "\\.")}:5000@`,
              ),
            ),
          scaled(5000),
          `the introducer to log the refusal of ${c.host(k)}`,
        );
      }
      // More attempts, all refused: wait until the introducer has counted at least 4.
      const refusedJoins = async () =>
        Number(
          /memberd_join_frames_refused_total\{reason="auth"\} (\d+)/.exec(
            await (await c.http.fetch(c.httpUrl(1, "/metrics"), { timeoutMs: scaled(1000) })).text(),
          )?.[1] ?? 0,
        );
      await waitFor(async () => (await refusedJoins()) >= 4, scaled(10_000), "4 refused joins at the introducer");
      for (const j of [wrong, open]) {
        expect(j.seen.out).toBe("");
        expect(j.proc.exitCode).toBeNull();
        expect(j.seen.err).not.toContain("unreachable");
      }
      expect((await c.members(1)).some((m) => m.id.startsWith(`${c.host(9)}:`) || m.id.startsWith(`${c.host(10)}:`))).toBe(false);
      const metrics = await (await c.http.fetch(c.httpUrl(1, "/metrics"), { timeoutMs: scaled(1000) })).text();
      expect(Number(/memberd_join_frames_refused_total\{reason="auth"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(4);
    } finally {
      for (const j of [wrong, open]) j.proc.kill("SIGKILL");
    }
  });

  test("SIGTERM to node 3's hydfsd: peers list node 3 left within 1 s, its three daemons exit, its files are re-replicated", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `leave-${i}.txt`);
    for (const name of names) await client.write(1, "create", name, `contents of ${name}\n`.repeat(50));
    const onThree = await client.liststore(3);
    expect(onThree.length).toBeGreaterThan(0);
    const id3 = ((await c.get(3, "/list_self")) as { id: string }).id;

    const t0 = performance.now();
    c.signal(3, "SIGTERM", "hydfsd");
    const leftAt = new Map<number, number>();
    await waitFor(
      async () => {
        for (const k of [1, 2, 4]) {
          if (leftAt.has(k)) continue;
          if ((await c.members(k)).find((m) => m.id === id3)?.state === "left") leftAt.set(k, performance.now() - t0);
        }
        return leftAt.size === 3;
      },
      scaled(5000),
      "nodes 1, 2 and 4 to list node 3 left",
      20,
    );
    for (const [k, ms] of leftAt) expect(ms, `node ${k} listed node 3 left after ${Math.round(ms)} ms`).toBeLessThan(scaled(1000));
    for (const k of [1, 2, 4]) expect((await c.members(k)).find((m) => m.id === id3)?.state).not.toBe("failed");

    await waitFor(() => SERVICES.every((s) => !isAlive(c.pid(3, s))), scaled(10_000), "node 3's memberd, hydfsd and rainstormd to exit");
    expect(readFileSync(c.logPath(3, "hydfsd"), "utf8")).toContain("SIGTERM: stopping gracefully");
    expect(readFileSync(c.logPath(3, "rainstormd"), "utf8")).toContain("this node left the group");
    expect(readFileSync(c.logPath(3, "memberd"), "utf8")).toContain("leaving the group");

    // 3 nodes remain and every file needs 3 replicas: each survivor holds every file again.
    await c.waitHydfsRing([1, 2, 4]);
    await waitFor(
      async () => {
        for (const k of [1, 2, 4]) {
          const held = new Set(await client.liststore(k));
          if (!names.every((n) => held.has(n))) return false;
        }
        return true;
      },
      scaled(30_000),
      "every file on nodes 1, 2 and 4",
    );
    for (const k of [1, 2, 4]) {
      for (const name of onThree) expect(new TextDecoder().decode(await client.fromReplica(k, name))).toBe(`contents of ${name}\n`.repeat(50));
    }
  });

  test("/leave at node 4's memberd (ctl leave) stops node 4's three daemons", async () => {
    const id4 = ((await c.get(4, "/list_self")) as { id: string }).id;
    expect((await c.post(4, "/leave", {})).status).toBe(200);
    await waitFor(async () => (await c.members(1)).find((m) => m.id === id4)?.state === "left", scaled(1000), "node 1 to list node 4 left", 20);
    await waitFor(() => SERVICES.every((s) => !isAlive(c.pid(4, s))), scaled(10_000), "node 4's memberd, hydfsd and rainstormd to exit");
    expect(readFileSync(c.logPath(4, "hydfsd"), "utf8")).toContain("this node left the group");
  });
});
