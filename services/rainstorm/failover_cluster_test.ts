/**
 * Leader failover on real processes (5 nodes on testNet(95)), issue 14 items 1, 2 and 6:
 *   - SIGKILL of the leader mid-job (exactly-once App 1): another node takes the job over from its
 *     journal, and dest is exactly the reference counts; a new job is accepted through another
 *     node while the first leader is down;
 *   - the leader SIGSTOPped past failure detection, then SIGCONT: its successor runs the job, a
 *     call of the old term is refused by the workers (409), and the old leader steps down;
 *   - two leader failures in a row (at-least-once: nothing lost).
 * After every job, no operator process of it is left on any node.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isAlive, LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { countViolations } from "../testing/rainstorm_client.ts";
import { app1Counts } from "../testing/reference.ts";
import { scaled } from "../testing/time.ts";
import { RainstormClient } from "./client.ts";
import type { JobEvent } from "./model.ts";

setDefaultTimeout(scaled(180_000));

const ROOT = resolve(import.meta.dir, "../..");
const DATASET = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8");
const LINES = DATASET.split("\n").filter((l, i, all) => i < all.length - 1 || l !== "");
const PORT = 15000;
const CTL = resolve(import.meta.dir, "../ctl.ts");

describe("RainStorm leader failover on 5 nodes", () => {
  const c = new LocalCluster({ dir: tempPath("rainstorm-failover-"), subnet: testNet(95), knobs: { t_cleanup_ms: 3000 }, killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const client = new RainstormClient(c.http);
  const addr = (k: number) => `${c.host(k)}:${PORT}`;

  beforeAll(async () => {
    await c.up(5, scaled(30_000));
    await hydfs.write(1, "create", "dataset1.csv", DATASET);
  });
  // A test kills or pauses nodes: bring back what is missing before the next one (a failed test included).
  beforeEach(async () => {
    await c.up(5, scaled(30_000));
  });
  afterAll(async () => {
    await c.down(true);
  });

  /** The leader node k's view elects, once it is `want` (or any node but `not`) and leads. */
  async function leaderSeenBy(k: number, want: { is?: number; not?: number[] }): Promise<number> {
    return (await waitFor<number | undefined>(
      async () => {
        const info = await client.leader(addr(k), { timeoutMs: 2000 }).catch(() => undefined);
        if (!info?.leader) return undefined;
        const n = c.nodeOf(info.leader);
        if (want.is !== undefined && n !== want.is) return undefined;
        if (want.not?.includes(n)) return undefined;
        // It must lead already (not just be elected): its own /leader says so.
        const own = await client.leader(info.leader, { timeoutMs: 2000 }).catch(() => undefined);
        return own?.self ? n : undefined;
      },
      scaled(30_000),
      `a leader other than ${want.not ?? "-"} seen by node ${k}`,
      50,
    ))!;
  }

  /** Submit `args` to node k's leader and stream events into `events` until it ends or the stream breaks. */
  async function submit(k: number, args: string[], events: JobEvent[], onEvent?: (ev: JobEvent) => void): Promise<{ job: string; ended: Promise<unknown> }> {
    const stream = await client.submitJob(addr(k), args, { totalMs: scaled(120_000) });
    const ended = (async () => {
      for await (const ev of stream.events) {
        events.push(ev);
        onEvent?.(ev);
      }
    })().catch((err: Error) => err);
    return { job: stream.jobId ?? "", ended };
  }

  /** Follow `job` on whichever node leads (by node k's view) until its final event. */
  async function followToEnd(k: number, job: string): Promise<JobEvent> {
    return (await waitFor<JobEvent | undefined>(
      async () => {
        const leader = await leaderSeenBy(k, {});
        const s = await client.watchJob(addr(leader), job, { totalMs: scaled(120_000) }).catch(() => undefined);
        if (!s) return undefined;
        try {
          for await (const ev of s.events) if (ev.event === "done" || ev.event === "failed" || ev.event === "cancelled") return ev;
        } catch {}
        return undefined;
      },
      scaled(120_000),
      `job ${job} to end`,
      200,
    ))!;
  }

  /** No operator process of `job` on any live node. */
  async function noOperatorsLeft(job: string): Promise<void> {
    await waitFor(
      async () => {
        for (const k of c.nodeNumbers) {
          const tasks = await client.workerTasks(addr(k), { timeoutMs: 2000 }).catch(() => []);
          if (tasks.some((t) => t.job === job && isAlive(t.pid))) return false;
        }
        return true;
      },
      scaled(15_000),
      `no operator of ${job} left`,
    );
  }

  test("SIGKILL of the leader mid-job (exactly-once App 1): a new leader takes the job over and dest is exactly the reference counts", async () => {
    const reference = app1Counts(LINES, "SIGN_", 6);
    const events: JobEvent[] = [];
    let killedAtMs = 0;
    const args = [
      "2",
      "3",
      "-stage-config-map",
      "stage0 grep-wrapper SIGN_ 6 stage1 aggregate-wrapper",
      "dataset1.csv",
      "fo-eo.txt",
      "true",
      "false",
      "400",
      "0",
      "0",
    ];
    const { job, ended } = await submit(1, args, events, (ev) => {
      if (ev.event === "output" && killedAtMs === 0) {
        killedAtMs = performance.now();
        c.kill(1);
      }
    });
    await waitFor(() => killedAtMs > 0, scaled(30_000), "the first results");
    await ended; // the stream broke with the leader
    const next = await leaderSeenBy(2, { not: [1] });
    const takeoverMs = performance.now() - killedAtMs;
    // A job is accepted again, through a node that is not the leader: it names the leader, which takes it.
    const other = [3, 4, 5].find((k) => k !== next)!;
    const probe = await client.leader(addr(other), { timeoutMs: 2000 });
    expect(probe.leader).toBe(addr(next));
    await hydfs.write(next, "create", "fo-small.txt", "x\ny\n");
    const small: JobEvent[] = [];
    const s = await submit(
      c.nodeOf(probe.leader!),
      ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "fo-small.txt", "fo-small-out.txt", "false", "false", "0", "0", "0"],
      small,
    );
    await s.ended;
    expect(small.at(-1)?.event).toBe("done");
    const final = await followToEnd(next, job);
    expect(final.event).toBe("done");
    const stored = (await hydfs.getText(next, "fo-eo.txt")).split("\n").filter(Boolean);
    expect(countViolations(stored, stored, reference)).toEqual([]);
    console.log(`leader kill -> new leader leading: ${Math.round(takeoverMs)} ms`);
    await noOperatorsLeft(job);
  });

  test("the leader paused past failure detection, then resumed: its successor finishes the job, the old term is refused, the old leader steps down", async () => {
    const old = await leaderSeenBy(2, {});
    // A job that ends before the pause: the successor lists it as it ended (from its journal).
    await hydfs.write(old === 2 ? 3 : 2, "create", "fo-before.txt", "a\nb\n");
    const before: JobEvent[] = [];
    const b = await submit(
      old,
      ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "fo-before.txt", "fo-before-out.txt", "false", "false", "0", "0", "0"],
      before,
    );
    await b.ended;
    expect(before.at(-1)?.event).toBe("done");
    const events: JobEvent[] = [];
    let pausedAtMs = 0;
    const input = Array.from({ length: 2000 }, (_, i) => `p-${i}`);
    await hydfs.write(old === 2 ? 3 : 2, "create", "fo-pause.txt", `${input.join("\n")}\n`);
    const { job } = await submit(
      old,
      ["1", "3", "-stage-config-map", "stage0 echo-wrapper", "fo-pause.txt", "fo-pause-out.txt", "false", "false", "300", "0", "0"],
      events,
      (ev) => {
        if (ev.event === "output" && pausedAtMs === 0) {
          pausedAtMs = performance.now();
          c.pause(old);
        }
      },
    );
    await waitFor(() => pausedAtMs > 0, scaled(30_000), "the first results");
    const watcher = c.nodeNumbers.find((k) => k !== old)!;
    const next = await leaderSeenBy(watcher, { not: [old] });
    const term = (await client.leader(addr(next), { timeoutMs: 2000 })).term;
    c.resume(old);
    // A call of the old term is refused by every worker the new leader fenced.
    for (const k of c.nodeNumbers.filter((n) => n !== old)) {
      const refused = await client.setRoutes(addr(k), job, { version: 1_000_000, term: term - 1, stages: [[addr(old)]] }, { timeoutMs: 2000 }).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused?.message, `node ${k}`).toContain("stale leader term");
    }
    await waitFor(
      () => readFileSync(c.logPath(old, "rainstormd"), "utf8").includes("stepping down as RainStorm leader"),
      scaled(20_000),
      "the old leader to step down",
    );
    const listed = await client.jobs(addr(next), { timeoutMs: 5000 });
    expect(listed.find((j) => j.job === b.job)).toMatchObject({ status: "done", tuples_read: 2, tuples_out: 2 });
    const final = await followToEnd(next, job);
    expect(final.event).toBe("done");
    const stored = new Set(
      (await hydfs.getText(next, "fo-pause-out.txt"))
        .split("\n")
        .filter(Boolean)
        .map((l) => l.slice(l.indexOf("\t") + 1)),
    );
    for (const line of input) expect(stored.has(line)).toBe(true);
    await noOperatorsLeft(job);
  });

  test("two leader failures in a row: the job still completes and nothing is lost (at-least-once)", async () => {
    const first = await leaderSeenBy(2, {});
    const events: JobEvent[] = [];
    let killed = 0;
    const input = Array.from({ length: 3000 }, (_, i) => `t-${i}`);
    await hydfs.write(first === 2 ? 3 : 2, "create", "fo-two.txt", `${input.join("\n")}\n`);
    const { job } = await submit(
      first,
      ["1", "3", "-stage-config-map", "stage0 echo-wrapper", "fo-two.txt", "fo-two-out.txt", "false", "false", "300", "0", "0"],
      events,
      (ev) => {
        if (ev.event === "output" && killed === 0) {
          killed = first;
          c.kill(first);
        }
      },
    );
    await waitFor(() => killed > 0, scaled(30_000), "the first results");
    const watcher = c.nodeNumbers.find((k) => k !== first)!;
    const second = await leaderSeenBy(watcher, { not: [first] });
    // The second leader has taken the job over: kill it too once the job makes progress under it.
    await waitFor(
      async () => {
        const jobs = await client.jobs(addr(second), { timeoutMs: 2000 }).catch(() => []);
        return jobs.some((j) => j.job === job && j.status === "running");
      },
      scaled(30_000),
      `job ${job} on the second leader`,
    );
    c.kill(second);
    const watcher2 = c.nodeNumbers.find((k) => k !== first && k !== second)!;
    const third = await leaderSeenBy(watcher2, { not: [first, second] });
    const final = await followToEnd(third, job);
    expect(final.event).toBe("done");
    const stored = new Set(
      (await hydfs.getText(third, "fo-two-out.txt"))
        .split("\n")
        .filter(Boolean)
        .map((l) => l.slice(l.indexOf("\t") + 1)),
    );
    const missing = input.filter((l) => !stored.has(l));
    expect(missing.slice(0, 5)).toEqual([]);
    await noOperatorsLeft(job);
  });

  test("ctl rainstorm follows its job across a leader SIGKILL: every result line printed exactly once, exit 0", async () => {
    const leader = await leaderSeenBy(2, {});
    const other = c.nodeNumbers.find((k) => k !== leader)!;
    const input = Array.from({ length: 1500 }, (_, i) => `c-${i}`);
    await hydfs.write(other, "create", "fo-ctl.txt", `${input.join("\n")}\n`);
    const config = join(c.dir, "ctl-config.json");
    writeFileSync(config, JSON.stringify({ cluster_secret: c.secret, ports: { rainstorm: PORT, http: 8080, hydfs: 10010 } }));
    const args = ["rainstorm", "1", "3", "-stage-config-map", "stage0 echo-wrapper", "fo-ctl.txt", "fo-ctl-out.txt", "true", "false", "300", "0", "0"];
    const proc = Bun.spawn([process.execPath, CTL, ...args, "--node", c.host(other), "--config", config], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, RAINSTORM_CONFIG: "", RAINSTORM_SECRET: "" },
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(150_000));
    let out = "";
    let killed = false;
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stdout) {
        out += decoder.decode(chunk, { stream: true });
        // Kill the leader once the first results are printed (the job then has seconds to go).
        if (!killed && out.split("\n").length > 100) {
          killed = true;
          c.kill(leader);
        }
      }
    })();
    const err = new Response(proc.stderr).text();
    const code = await proc.exited;
    clearTimeout(timer);
    await reading;
    const said = await err;
    expect(killed).toBe(true);
    expect(code, said).toBe(0);
    expect(said).toContain("following job");
    const printed = out.split("\n").filter(Boolean);
    const next = await leaderSeenBy(other, { not: [leader] });
    const stored = (await hydfs.getText(next, "fo-ctl-out.txt")).split("\n").filter(Boolean);
    // Exactly once: dest holds each input once, and ctl printed exactly dest's lines, none twice.
    expect(stored.length).toBe(input.length);
    expect([...printed].sort()).toEqual([...stored].sort());
  });
});
