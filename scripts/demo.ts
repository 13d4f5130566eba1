#!/usr/bin/env bun
/**
 * `npm run demo`: build, start 5 local nodes, store a traffic-sign CSV in HyDFS, run grep + count
 * on it with live output, show list_tasks, kill a task mid-job, print the final counts; then
 * SIGKILL a node and show every survivor detect it, switch the protocol cluster-wide, tear down.
 * Runs on 127.0.40.k so it never collides with a cluster on 127.0.0.k or a test run.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseCsvLine } from "../ops/csv.ts";
import { DEFAULT_KNOBS } from "../services/member/cluster_config.ts";
import { readLines } from "../services/shared/lines.ts";
import { LocalCluster, waitFor } from "../services/testing/cluster.ts";

const ROOT = resolve(import.meta.dir, "..");
const sha256 = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
const NODES = 5;

async function sh(cmd: string[]): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if ((await proc.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
}

async function capture(cmd: string[]): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
  return out;
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

    step("HyDFS: store a traffic-sign CSV (3,000 signs, quoted commas) and read it back through another node");
    const csv = join(ROOT, "testdata", "dataset1.csv");
    const back = join(cluster.dir, "dataset1.back.csv");
    await ctl("create", csv, "signs.csv", "--node", cluster.host(1));
    await ctl("ls", "signs.csv", "--node", cluster.host(2));
    await ctl("get", "signs.csv", back, "--node", cluster.host(5));
    const same = sha256(readFileSync(csv)) === sha256(readFileSync(back));
    console.log(`round trip ${same ? "byte-identical" : "DIFFERENT"} (sha256 ${sha256(readFileSync(back)).slice(0, 16)}...)`);
    if (!same) throw new Error("HyDFS round trip differs");

    step("RainStorm: count signs per category (grep SIGN_ then aggregate by column 6), 3 tasks per stage, 500 lines/s, exactly once");
    const cfgPath = join(cluster.dir, "ctl-config.json");
    writeFileSync(cfgPath, JSON.stringify({ introducers: [`${cluster.host(1)}:6000`], aliases: { "01": cluster.host(1) } }));
    const job = Bun.spawn(
      [join(ROOT, "dist/bin/ctl"), "rainstorm", "2", "3", "-stage-config-map", "stage0 grep-wrapper SIGN_ 6 stage1 aggregate-wrapper", "signs.csv", "counts.txt", "true", "false", "500", "0", "1000", "--config", cfgPath],
      { cwd: ROOT, stdout: "pipe", stderr: "inherit" },
    );
    // Live results: every 200th count update, so the console stays readable.
    const live = (async () => {
      let n = 0;
      for await (const line of readLines(job.stdout)) if (++n % 200 === 0) console.log(`  live #${n}: ${line}`);
      return n;
    })();
    await Bun.sleep(2000);
    step("list_tasks while the job runs");
    await ctl("list_tasks", "--config", cfgPath);
    const tasks = JSON.parse(await capture([join(ROOT, "dist/bin/ctl"), "list_tasks", "--json", "--config", cfgPath])).tasks as { stage: number; node: string; pid: number }[];
    const target = tasks.find((t) => t.stage === 0);
    if (target) {
      step(`kill_task ${target.node} ${target.pid} mid-job: the leader restarts it; nothing is lost or counted twice`);
      await ctl("kill_task", target.node, String(target.pid), "--config", cfgPath);
    }
    const code = await job.exited;
    const updates = await live;
    if (code !== 0) throw new Error(`the job failed (exit ${code})`);
    step(`final counts (from counts.txt in HyDFS, ${updates} count updates streamed)`);
    const countsPath = join(cluster.dir, "counts.txt");
    await ctl("get", "counts.txt", countsPath, "--node", cluster.host(3));
    const finalCounts = new Map<string, number>();
    for (const line of readFileSync(countsPath, "utf8").split("\n").filter(Boolean)) {
      const tab = line.lastIndexOf("\t");
      finalCounts.set(line.slice(0, tab), Math.max(finalCounts.get(line.slice(0, tab)) ?? 0, Number(line.slice(tab + 1))));
    }
    // A plain single-process reference on the same file, for comparison.
    const reference = new Map<string, number>();
    for (const line of readFileSync(csv, "utf8").split("\n")) {
      if (!line.includes("SIGN_")) continue;
      const key = parseCsvLine(line)[6] ?? "";
      reference.set(key, (reference.get(key) ?? 0) + 1);
    }
    console.log(`  ${"CATEGORY".padEnd(20)} ${"RAINSTORM".padStart(9)} ${"REFERENCE".padStart(9)}`);
    for (const [k, v] of [...finalCounts].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(20)} ${String(v).padStart(9)} ${String(reference.get(k) ?? 0).padStart(9)}`);
    const exact = [...reference].every(([k, v]) => finalCounts.get(k) === v) && finalCounts.size === reference.size;
    console.log(exact ? "  every count equals the reference despite the kill" : "  COUNTS DIFFER from the reference");
    if (!exact) throw new Error("exactly-once counts differ from the reference");

    step("RainStorm autoscaling: grep | transform, 1 task per stage, LW 100 HW 300 tuples/s per task, load 150 -> 600 -> 150 tuples/s");
    const three = join(cluster.dir, "signs3.csv");
    const lines = readFileSync(csv, "utf8");
    writeFileSync(three, lines.repeat(3));
    await ctl("create", three, "signs3.csv", "--node", cluster.host(1));
    const scaling = Bun.spawn(
      [join(ROOT, "dist/bin/ctl"), "rainstorm", "2", "1", "grep-wrapper", "',' 0", "transform-wrapper", "3", "signs3.csv", "scaled.txt", "false", "true", "0", "100", "300", "--rate-schedule", "150:5s,600:11s,150:60s", "--config", cfgPath],
      { cwd: ROOT, stdout: "pipe", stderr: "inherit" },
    );
    let outputs = 0;
    for await (const _ of readLines(scaling.stdout)) outputs++;
    if ((await scaling.exited) !== 0) throw new Error("the autoscaling job failed");
    const inputs = lines.split("\n").filter(Boolean).length * 3;
    console.log(`  ${outputs} output lines for ${inputs} input lines${outputs === inputs ? ": none lost or repeated while rescaling" : ": MISMATCH"}`);

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
