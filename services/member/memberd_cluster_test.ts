/**
 * memberd as real processes: 5 nodes on testNet(21).k (testNet(22).k for the secret cluster) via the
 * same harness as scripts/cluster.ts. Every wait has a deadline; processes and temp dirs are
 * removed in afterAll (and SIGKILLed at exit if the runner dies).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { DEFAULT_KNOBS } from "./cluster_config.ts";
import { encodeMessage, wireAuth } from "./wire.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(60_000));

const KNOBS = { t_cleanup_ms: 3000 };
const k = { ...DEFAULT_KNOBS, ...KNOBS };

type Member = { id: string; state: string; incarnation: number };
const hostOf = (id: string) => id.split(":")[0]!;

describe("memberd cluster (5 processes)", () => {
  const c = new LocalCluster({ dir: tempPath("memberd-test-"), subnet: testNet(21), knobs: KNOBS, killOnExit: true });

  beforeAll(async () => {
    await c.up(5);
  });
  // Tests kill, restart and stop nodes: whatever ran before, each test starts with all 5 alive.
  beforeEach(async () => {
    await c.up(5);
  });
  afterAll(async () => {
    await c.down(true);
  });

  test("all 5 join and agree", async () => {
    for (let n = 1; n <= 5; n++) {
      const alive = (await c.members(n)).filter((m) => m.state === "alive");
      expect(alive.map((m) => hostOf(m.id)).sort()).toEqual([1, 2, 3, 4, 5].map((i) => c.host(i)).sort());
    }
  });

  test("/switch at node 3 reaches every node within 2 s, and back", async () => {
    const res = await c.post(3, "/switch", { protocol: "gossip", suspicion: "enabled", suspicion_time: "1s" });
    expect(res.status).toBe(200);
    const t0 = performance.now();
    await waitFor(
      async () => {
        for (let n = 1; n <= 5; n++) if (((await c.get(n, "/display_protocol")) as { protocol: string }).protocol !== "gossip") return false;
        return true;
      },
      scaled(2000),
      "every node to display gossip",
    );
    expect(performance.now() - t0).toBeLessThan(scaled(2000));
    await c.post(3, "/switch", { protocol: "pingack", suspicion: "enabled", suspicion_time: "1s" });
    await waitFor(
      async () => {
        for (let n = 1; n <= 5; n++) if (((await c.get(n, "/display_protocol")) as { protocol: string }).protocol !== "pingack") return false;
        return true;
      },
      scaled(2000),
      "every node to display pingack",
    );
  });

  test("a bad /switch body gets 400 naming the field", async () => {
    const res = await c.post(2, "/switch", { protocol: "carrier-pigeon", suspicion: "enabled" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain("protocol");
  });

  test("SIGSTOP for half the suspicion timeout: suspected, refutes, never failed", async () => {
    const victim = (await c.get(4, "/list_self")) as Member;
    c.pause(4);
    try {
      await waitFor(
        async () => {
          for (const n of [1, 2, 3, 5]) if ((await c.members(n)).some((m) => m.id === victim.id && m.state === "suspect")) return true;
          return false;
        },
        scaled(5000),
        "someone to suspect the stopped node",
        20,
      );
      await Bun.sleep(k.t_fail_ms / 2);
    } finally {
      c.resume(4);
    }
    await waitFor(
      async () => {
        for (const n of [1, 2, 3, 5]) {
          const m = (await c.members(n)).find((x) => x.id === victim.id);
          if (!m || m.state !== "alive") return false;
        }
        return true;
      },
      scaled(5000),
      "every node to see the refutation",
    );
    for (const n of [1, 2, 3, 5]) {
      const m = (await c.members(n)).find((x) => x.id === victim.id)!;
      expect(m.incarnation).toBeGreaterThan(victim.incarnation);
    }
    expect(((await c.get(4, "/list_self")) as Member).id).toBe(victim.id);
  });

  test("SIGKILL: every survivor marks it failed within TSuspect+TFail+1 s, then removes it after TCleanup", async () => {
    const victim = ((await c.get(5, "/list_self")) as Member).id;
    const killedAt = performance.now();
    c.kill(5);
    const budget = scaled(k.t_suspect_ms + k.t_fail_ms + 1000);
    await waitFor(
      async () => {
        for (const n of [1, 2, 3, 4]) if ((await c.members(n)).find((m) => m.id === victim)?.state !== "failed") return false;
        return true;
      },
      budget,
      `all survivors to mark ${victim} failed`,
      20,
    );
    const detectedMs = performance.now() - killedAt;
    expect(detectedMs).toBeLessThan(budget);
    await waitFor(
      async () => {
        for (const n of [1, 2, 3, 4]) if ((await c.members(n)).some((m) => m.id === victim)) return false;
        return true;
      },
      scaled(k.t_cleanup_ms + 3000),
      "the failed member to be removed",
    );
    expect(performance.now() - killedAt).toBeGreaterThan(k.t_cleanup_ms);
  });

  test("a restarted node appears once, with a new id", async () => {
    const old = ((await c.get(2, "/list_self")) as Member).id;
    await c.restart(2);
    await c.waitAllAlive([1, 2, 3, 4, 5], scaled(10_000));
    for (const n of [1, 2, 3, 4, 5]) {
      const forHost = (await c.members(n)).filter((m) => hostOf(m.id) === c.host(2) && m.state === "alive");
      expect(forHost.length).toBe(1);
      expect(forHost[0]!.id).not.toBe(old);
    }
  });

  test("members keep working while the introducer is down, and a restarted introducer rejoins", async () => {
    const oldIntroducer = ((await c.get(1, "/list_self")) as Member).id;
    c.kill(1);
    await waitFor(
      async () => {
        for (const n of [2, 3, 4, 5]) if ((await c.members(n)).find((m) => m.id === oldIntroducer)?.state !== "failed") return false;
        return true;
      },
      scaled(5000),
      "the survivors to mark the introducer failed",
    );
    for (const n of [2, 3, 4, 5]) {
      const alive = (await c.members(n))
        .filter((m) => m.state === "alive")
        .map((m) => hostOf(m.id))
        .sort();
      expect(alive).toEqual([2, 3, 4, 5].map((i) => c.host(i)));
    }
    await c.restart(1);
    // The new introducer starts alone; members that see no live introducer ask it to admit them.
    await c.waitAllAlive([1, 2, 3, 4, 5], scaled(10_000));
  });

  test("/leave gives left at every other node, never failed, and the process exits", async () => {
    const leaver = ((await c.get(4, "/list_self")) as Member).id;
    const res = await c.post(4, "/leave", {});
    expect(res.status).toBe(200);
    const seen = new Map<number, string[]>();
    // Watch every survivor until it has removed the leaver: the states it shows must be left only.
    await waitFor(
      async () => {
        let allGone = true;
        for (const n of [1, 2, 3, 5]) {
          const m = (await c.members(n)).find((x) => x.id === leaver);
          if (m) {
            allGone = false;
            seen.set(n, [...(seen.get(n) ?? []), m.state]);
          }
        }
        return allGone;
      },
      scaled(k.t_cleanup_ms + 4000),
      "the leaver to be removed",
      50,
    );
    for (const n of [1, 2, 3, 5]) {
      const states = new Set(seen.get(n) ?? []);
      expect([...states]).toEqual(["left"]);
    }
    await waitFor(() => c.status().then((rows) => !rows.find((r) => r.k === 4)!.services.memberd!.alive), scaled(3000), "node 4's memberd to exit");
  });
});

describe("memberd with a cluster secret", () => {
  const secret = "test-secret-7f3a";
  const c = new LocalCluster({ dir: tempPath("memberd-secret-"), subnet: testNet(22), secret, knobs: KNOBS, killOnExit: true });

  beforeAll(async () => {
    await c.up(3);
  });
  afterAll(async () => {
    await c.down(true);
  });

  test("a datagram with a wrong tag changes nothing and is counted", async () => {
    const before = (await c.members(1)).find((m) => hostOf(m.id) === c.host(2))!;
    const cfgBefore = (await c.get(1, "/display_protocol")) as { version: number };
    const forged = encodeMessage(
      {
        type: "gossip",
        from: `${testNet(22)}.3:5000@1`,
        cfg: { version: 99, origin: "zzz", knobs: { ...DEFAULT_KNOBS, protocol: "gossip" } },
        entries: [{ ...before, state: "failed", heartbeat: 1e6, ports: { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: 15000 } }],
      },
      // Stamped now and tagged with the datagram key of another secret.
      wireAuth("wrong-secret"),
    );
    const sock = await Bun.udpSocket({ hostname: `${testNet(22)}.9`, socket: { error: () => {} } });
    for (let i = 0; i < 5; i++) sock.send(forged, 5000, c.host(1));
    sock.close();
    await waitFor(
      async () => /reason="auth"\} ([1-9]\d*)/.test(await (await c.http.fetch(c.httpUrl(1, "/metrics"), { timeoutMs: scaled(1000) })).text()),
      scaled(2000),
      "the forged datagrams to be counted",
    );
    const metrics = await (await c.http.fetch(c.httpUrl(1, "/metrics"), { timeoutMs: scaled(1000) })).text();
    expect(Number(/memberd_datagrams_dropped_total\{reason="auth"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(5);
    const after = (await c.members(1)).find((m) => m.id === before.id)!;
    expect(after.state).toBe("alive");
    expect(((await c.get(1, "/display_protocol")) as { version: number }).version).toBe(cfgBefore.version);
  });

  test("a node with the wrong secret is refused, says why, prints no ready line and is never admitted", async () => {
    const dropped = async () =>
      Number(
        /memberd_datagrams_dropped_total\{reason="auth"\} (\d+)/.exec(
          await (await c.http.fetch(c.httpUrl(1, "/metrics"), { timeoutMs: scaled(1000) })).text(),
        )![1],
      );
    const before = await dropped();
    const intruder = Bun.spawn(
      [...c.command("memberd"), "--host", `${testNet(22)}.4`, "--introducer", `${c.host(1)}:6000`, "--secret", "not-the-secret", "--data-dir", c.dir],
      {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, RAINSTORM_SECRET: "" },
      },
    );
    try {
      let err = "";
      void (async () => {
        for await (const chunk of intruder.stderr) err += new TextDecoder().decode(chunk);
      })();
      const stdout = new Response(intruder.stdout).text();
      // Its join requests (one a second) are rejected by the introducer's tag check, and it is told so.
      await waitFor(async () => (await dropped()) >= before + 2, scaled(5000), "two rejected join attempts");
      await waitFor(() => err.includes("join refused: authentication failed (check cluster_secret)"), scaled(5000), "the intruder to say why it is refused");
      expect((await c.members(1)).some((m) => hostOf(m.id) === `${testNet(22)}.4`)).toBe(false);
      intruder.kill("SIGKILL");
      expect(await stdout).toBe(""); // never ready
    } finally {
      intruder.kill("SIGKILL");
      await intruder.exited;
    }
  });

  test("mutating endpoints need the credential", async () => {
    expect((await c.post(1, "/switch", { protocol: "gossip", suspicion: "enabled" }, false)).status).toBe(401);
    expect((await c.post(1, "/leave", {}, false)).status).toBe(401);
    expect((await c.post(1, "/set", { t_fail_ms: 2000 }, false)).status).toBe(401);
    expect((await c.post(1, "/set", { t_fail_ms: 2000 })).status).toBe(200);
  });
});
