/**
 * memberd in-process: two real daemons (UDP, TCP introducer, HTTP) on testNet(23).1-2, driven
 * through the admin API, including the /watch change stream the other daemons follow.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import { tempPath, waitFor } from "../testing/cluster.ts";
import { type RunningMemberd, startMemberd } from "./start.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(30_000));

const dir = tempPath("memberd-admin-");
const log = makeLogger("memberd-test", "silent");
const url = (host: string, path: string) => `http://${host}:8080${path}`;

function nodeConfig(k: number, knobs: Record<string, unknown> = {}) {
  const raw = { host: `${testNet(23)}.${k}`, is_introducer: k === 1, introducers: [`${testNet(23)}.1:6000`], data_dir: dir, membership: knobs };
  const path = join(dir, `config-${k}.json`);
  writeFileSync(path, JSON.stringify(raw));
  return { cfg: buildNodeConfig(raw), path };
}

describe("memberd admin API (in-process)", () => {
  let one: RunningMemberd;
  let two: RunningMemberd | undefined;
  let left = false;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    const c = nodeConfig(1);
    one = await startMemberd(c.cfg, c.path, log, () => {});
  });
  afterAll(async () => {
    await one.stop();
    await two?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("/watch streams a snapshot, then the join of a second node", async () => {
    const res = await fetch(url(`${testNet(23)}.1`, "/watch"));
    expect(res.headers.get("content-type")).toContain("ndjson");
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buffered = "";
    const nextLine = async (): Promise<Record<string, any>> => {
      const deadline = performance.now() + 5000;
      while (!buffered.includes("\n")) {
        if (performance.now() > deadline) throw new Error("no watch line within 5 s");
        const { value, done } = await reader.read();
        if (done) throw new Error("watch stream ended");
        buffered += dec.decode(value);
      }
      const i = buffered.indexOf("\n");
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      return JSON.parse(line);
    };
    const snapshot = await nextLine();
    expect(snapshot.event).toBe("snapshot");
    expect(snapshot.count).toBe(1);
    const c2 = nodeConfig(2);
    two = await startMemberd(c2.cfg, c2.path, log, () => {
      left = true;
    });
    let joined: Record<string, any> | undefined;
    for (let i = 0; i < 10 && !joined; i++) {
      const ev = await nextLine();
      if (ev.kind === "joined") joined = ev;
    }
    expect(joined?.id).toBe(two.daemon.node.id);
    expect(joined?.ports.hydfs).toBe(10010);
    await reader.cancel();
  });

  test("/list_mem has the documented shape with states as words", async () => {
    const body = (await (await fetch(url(`${testNet(23)}.1`, "/list_mem"))).json()) as any;
    expect(body.count).toBe(2);
    for (const m of body.members) {
      expect(Object.keys(m)).toEqual(expect.arrayContaining(["id", "incarnation", "state", "last_update"]));
      expect(m.state).toBe("alive");
      expect(Number.isNaN(Date.parse(m.last_update))).toBe(false);
    }
    // last_heard: when a datagram from the member last arrived (null for the node itself).
    const self = body.members.find((m: any) => m.id.startsWith(`${testNet(23)}.1:`));
    const peer = body.members.find((m: any) => m !== self);
    expect(self.last_heard).toBeNull();
    expect(Date.now() - Date.parse(peer.last_heard)).toBeLessThan(scaled(5000));
  });

  test("/set with a bad knob gets 400 naming it; a good one spreads to the other node", async () => {
    const bad = await fetch(url(`${testNet(23)}.1`, "/set"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ping_every_ms: -5 }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error).toContain("ping_every_ms");
    const notJson = await fetch(url(`${testNet(23)}.1`, "/set"), { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" });
    expect(notJson.status).toBe(400);
    const ok = await fetch(url(`${testNet(23)}.1`, "/set"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ t_cleanup_ms: 4321 }),
    });
    expect(ok.status).toBe(200);
    await waitFor(
      async () => ((await (await fetch(url(`${testNet(23)}.2`, "/get"))).json()) as any).cluster.t_cleanup_ms === 4321,
      scaled(2000),
      "the knob to reach node 2",
    );
  });

  test("/set with no body re-reads the node's config file", async () => {
    writeFileSync(join(dir, "config-1.json"), JSON.stringify({ host: `${testNet(23)}.1`, membership: { t_cleanup_ms: 7777 } }));
    const res = await fetch(url(`${testNet(23)}.1`, "/set"));
    expect(res.status).toBe(200);
    expect(((await (await fetch(url(`${testNet(23)}.1`, "/get"))).json()) as any).cluster.t_cleanup_ms).toBe(7777);
  });

  test("/metrics is Prometheus text with traffic, suspicion and RTT series", async () => {
    const text = await (await fetch(url(`${testNet(23)}.1`, "/metrics"))).text();
    for (const series of [
      "memberd_datagrams_in_total{type=",
      "memberd_bytes_out_total{type=",
      "memberd_suspicions_total",
      "memberd_refutations_total",
      "memberd_failures_declared_total",
      "memberd_probe_rtt_ms_bucket{le=",
    ]) {
      expect(text).toContain(series);
    }
  });

  test("a huge body is refused with 413 and changes nothing", async () => {
    const before = ((await (await fetch(url(`${testNet(23)}.1`, "/get"))).json()) as any).cluster.version;
    const res = await fetch(url(`${testNet(23)}.1`, "/set"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pad: "x".repeat(1 << 20) }),
    });
    expect(res.status).toBe(413);
    expect(((await (await fetch(url(`${testNet(23)}.1`, "/get"))).json()) as any).cluster.version).toBe(before);
  });

  test("unknown endpoints get 404 JSON", async () => {
    const res = await fetch(url(`${testNet(23)}.1`, "/nope"));
    expect(res.status).toBe(404);
  });

  test("/leave answers, announces left, and asks the process to exit", async () => {
    const res = await fetch(url(`${testNet(23)}.2`, "/leave"), { method: "POST" });
    expect(res.status).toBe(200);
    await waitFor(
      async () => ((await (await fetch(url(`${testNet(23)}.1`, "/list_mem"))).json()) as any).members.some((m: any) => m.state === "left"),
      scaled(2000),
      "node 1 to see the leave",
    );
    await waitFor(() => left, scaled(2000), "the exit callback");
  });
});
