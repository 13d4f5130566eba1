#!/usr/bin/env bun
/**
 * `npm run demo`: build, start 5 local nodes, show the membership, SIGKILL one node and show every
 * survivor detect it, switch the protocol at one node and show it reach all, store a dataset in
 * HyDFS and read it back, tear down.
 * Runs on 127.0.40.k so it never collides with a cluster on 127.0.0.k or a test run.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEFAULT_KNOBS } from "../services/member/cluster_config.ts";
import { LocalCluster, waitFor } from "../services/testing/cluster.ts";

const ROOT = resolve(import.meta.dir, "..");
const sha256 = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
const NODES = 5;

async function sh(cmd: string[]): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if ((await proc.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
}

function step(text: string): void {
  console.log(`\n=== ${text}`);
}

async function main(): Promise<void> {
  step("build");
  await sh([process.execPath, "scripts/build.ts"]);
  const cluster = new LocalCluster({ dir: mkdtempSync(join(tmpdir(), "rainstorm-demo-")), subnet: "127.0.40", killOnExit: true });
  // The demo's ctl keeps its client identity inside the demo's own directory.
  process.env.RAINSTORM_CTL_STATE = join(cluster.dir, "ctl-client.json");
  const ctl = (...args: string[]) => sh([join(ROOT, "dist/bin/ctl"), ...args]);
  try {
    step(`start ${NODES} nodes on 127.0.40.1-${NODES} (node 1 is the introducer)`);
    const t0 = performance.now();
    await cluster.up(NODES);
    console.log(`all ${NODES} joined in ${Math.round(performance.now() - t0)} ms`);
    await ctl("list_mem", "--node", cluster.host(1));
    await ctl("display_protocol", "--node", cluster.host(1));

    step("HyDFS: store a traffic-sign CSV from testdata/ and read it back through another node");
    const csv = join(ROOT, "testdata", "trial_data.csv");
    const back = join(cluster.dir, "trial_data.back.csv");
    await ctl("create", csv, "signs.csv", "--node", cluster.host(1));
    await ctl("ls", "signs.csv", "--node", cluster.host(2));
    await ctl("get", "signs.csv", back, "--node", cluster.host(5));
    const same = sha256(readFileSync(csv)) === sha256(readFileSync(back));
    console.log(`round trip ${same ? "byte-identical" : "DIFFERENT"} (sha256 ${sha256(readFileSync(back)).slice(0, 16)}...)`);
    if (!same) throw new Error("HyDFS round trip differs");

    const victim = 4;
    const victimId = ((await cluster.get(victim, "/list_self")) as { id: string }).id;
    step(`SIGKILL node ${victim} (${victimId})`);
    const killedAt = performance.now();
    cluster.kill(victim);
    const survivors = cluster.nodeNumbers.filter((k) => k !== victim);
    const seen = new Map<number, number>();
    await waitFor(async () => {
      for (const k of survivors) {
        if (seen.has(k)) continue;
        const m = (await cluster.members(k)).find((x) => x.id === victimId);
        if (!m || m.state === "failed") seen.set(k, performance.now() - killedAt);
      }
      return seen.size === survivors.length;
    }, 10_000, "every survivor to detect the crash", 20);
    for (const k of survivors) console.log(`node ${k} marked it failed after ${Math.round(seen.get(k)!)} ms`);
    console.log(`(budget t_suspect + t_fail + 1 s = ${DEFAULT_KNOBS.t_suspect_ms + DEFAULT_KNOBS.t_fail_ms + 1000} ms)`);
    await ctl("list_mem", "--node", cluster.host(1));

    step("switch to gossip without suspicion at node 2");
    const switchedAt = performance.now();
    await ctl("switch", "gossip", "nosuspect", "--node", cluster.host(2));
    await waitFor(async () => {
      for (const k of survivors) if (((await cluster.get(k, "/display_protocol")) as { protocol: string }).protocol !== "gossip") return false;
      return true;
    }, 5000, "the switch to reach every node", 10);
    console.log(`every survivor runs gossip ${Math.round(performance.now() - switchedAt)} ms later:`);
    for (const k of survivors) await ctl("display_protocol", "--node", cluster.host(k));
  } finally {
    step("tear down");
    await cluster.down(true);
    console.log("done");
  }
}

main().catch((err) => {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exit(1);
});
