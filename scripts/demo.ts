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

/** Runs `dist/bin/ctl` with these arguments, its output on the console. */
type Ctl = (...args: string[]) => Promise<void>;

async function main(): Promise<void> {
  step("build");
  await sh([process.execPath, "scripts/build.ts"]);
  const cluster = new LocalCluster({ dir: mkdtempSync(join(tmpdir(), "rainstorm-demo-")), subnet: "127.0.40", killOnExit: true });
  // The demo's ctl keeps its client identity inside the demo's own directory.
  process.env.RAINSTORM_CTL_STATE = join(cluster.dir, "ctl-client.json");
  const ctl: Ctl = (...args) => sh([join(ROOT, "dist/bin/ctl"), ...args]);
  try {
    await startNodes(cluster, ctl);
    const csv = await hydfsRoundTrip(cluster, ctl);
    const cfgPath = join(cluster.dir, "ctl-config.json");
    writeFileSync(cfgPath, JSON.stringify({ introducers: [`${cluster.host(1)}:6000`], aliases: { "01": cluster.host(1) } }));
    await countSigns(cluster, ctl, cfgPath, csv);
    await autoscaling(cluster, ctl, cfgPath, csv);
    const survivors = await crashDetection(cluster, ctl);
    await switchProtocol(cluster, ctl, survivors);
  } finally {
    step("tear down");
    await cluster.down(true);
    console.log("done");
  }
}

async function startNodes(cluster: LocalCluster, ctl: Ctl): Promise<void> {
  step(`start ${NODES} nodes on 127.0.40.1-${NODES} (node 1 is the introducer)`);
  const t0 = performance.now();
  await cluster.up(NODES);
  console.log(`all ${NODES} joined in ${Math.round(performance.now() - t0)} ms`);
  await ctl("list_mem", "--node", cluster.host(1));
  await ctl("display_protocol", "--node", cluster.host(1));
}

/** Stores the CSV through node 1, reads it back through node 5, checks the bytes; returns the CSV's path. */
async function hydfsRoundTrip(cluster: LocalCluster, ctl: Ctl): Promise<string> {
  step("HyDFS: store a traffic-sign CSV (3,000 signs, quoted commas) and read it back through another node");
  const csv = join(ROOT, "testdata", "dataset1.csv");
  const back = join(cluster.dir, "dataset1.back.csv");
  await ctl("create", csv, "signs.csv", "--node", cluster.host(1));
  await ctl("ls", "signs.csv", "--node", cluster.host(2));
  await ctl("get", "signs.csv", back, "--node", cluster.host(5));
  const same = sha256(readFileSync(csv)) === sha256(readFileSync(back));
  console.log(`round trip ${same ? "byte-identical" : "DIFFERENT"} (sha256 ${sha256(readFileSync(back)).slice(0, 16)}...)`);
  if (!same) throw new Error("HyDFS round trip differs");
  return csv;
}

/** The exactly-once count job with a task killed mid-job; its final counts must equal a plain count of the CSV. */
async function countSigns(cluster: LocalCluster, ctl: Ctl, cfgPath: string, csv: string): Promise<void> {
  step("RainStorm: count signs per category (grep SIGN_ then aggregate by column 6), 3 tasks per stage, 500 lines/s, exactly once");
  const job = Bun.spawn(
    [
      join(ROOT, "dist/bin/ctl"),
      "rainstorm",
      "2",
      "3",
      "-stage-config-map",
      "stage0 grep-wrapper SIGN_ 6 stage1 aggregate-wrapper",
      "signs.csv",
      "counts.txt",
      "true",
      "false",
      "500",
      "0",
      "1000",
      "--config",
      cfgPath,
    ],
    { cwd: ROOT, stdout: "pipe", stderr: "inherit" },
  );
  // Live results: every 200th count update, so the console stays readable.
  const live = (async () => {
    let n = 0;
    for await (const line of readLines(job.stdout)) if (++n % 200 === 0) console.log(`  live #${n}: ${line}`);
    return n;
  })();
  await Bun.sleep(2000);
  await killOneTask(ctl, cfgPath);
  const code = await job.exited;
  const updates = await live;
  if (code !== 0) throw new Error(`the job failed (exit ${code})`);
  step(`final counts (from counts.txt in HyDFS, ${updates} count updates streamed)`);
  const countsPath = join(cluster.dir, "counts.txt");
  await ctl("get", "counts.txt", countsPath, "--node", cluster.host(3));
  const finalCounts = finalCountsOf(readFileSync(countsPath, "utf8"));
  const reference = referenceCounts(readFileSync(csv, "utf8"));
  for (const line of countsTable(finalCounts, reference)) console.log(line);
  const exact = countsEqual(finalCounts, reference);
  console.log(exact ? "  every count equals the reference despite the kill" : "  COUNTS DIFFER from the reference");
  if (!exact) throw new Error("exactly-once counts differ from the reference");
}

/** Shows list_tasks, then kills a stage-0 task (if one runs): the leader restarts it. */
async function killOneTask(ctl: Ctl, cfgPath: string): Promise<void> {
  step("list_tasks while the job runs");
  await ctl("list_tasks", "--config", cfgPath);
  const tasks = JSON.parse(await capture([join(ROOT, "dist/bin/ctl"), "list_tasks", "--json", "--config", cfgPath])).tasks as {
    stage: number;
    node: string;
    pid: number;
  }[];
  const target = tasks.find((t) => t.stage === 0);
  if (target) {
    step(`kill_task ${target.node} ${target.pid} mid-job: the leader restarts it; nothing is lost or counted twice`);
    await ctl("kill_task", target.node, String(target.pid), "--config", cfgPath);
  }
}

/**
 * The counts in a `key<TAB>count` output file: each key's largest count (the file holds every
 * update, and a key's count only grows).
 */
export function finalCountsOf(text: string): Map<string, number> {
  const finalCounts = new Map<string, number>();
  for (const line of text.split("\n").filter(Boolean)) {
    const tab = line.lastIndexOf("\t");
    finalCounts.set(line.slice(0, tab), Math.max(finalCounts.get(line.slice(0, tab)) ?? 0, Number(line.slice(tab + 1))));
  }
  return finalCounts;
}

/** A plain single-process reference on the same file: lines with SIGN_ counted by CSV column 6. */
export function referenceCounts(csvText: string): Map<string, number> {
  const reference = new Map<string, number>();
  for (const line of csvText.split("\n")) {
    if (!line.includes("SIGN_")) continue;
    const key = parseCsvLine(line)[6] ?? "";
    reference.set(key, (reference.get(key) ?? 0) + 1);
  }
  return reference;
}

/** The console table: a header, then each category with RainStorm's count and the reference's, most first. */
export function countsTable(finalCounts: Map<string, number>, reference: Map<string, number>): string[] {
  return [
    `  ${"CATEGORY".padEnd(20)} ${"RAINSTORM".padStart(9)} ${"REFERENCE".padStart(9)}`,
    ...[...finalCounts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${k.padEnd(20)} ${String(v).padStart(9)} ${String(reference.get(k) ?? 0).padStart(9)}`),
  ];
}

/** The same categories with the same counts. */
export function countsEqual(finalCounts: Map<string, number>, reference: Map<string, number>): boolean {
  return [...reference].every(([k, v]) => finalCounts.get(k) === v) && finalCounts.size === reference.size;
}

/** The autoscaling job on the CSV three times over: every input line must come out exactly once. */
async function autoscaling(cluster: LocalCluster, ctl: Ctl, cfgPath: string, csv: string): Promise<void> {
  step("RainStorm autoscaling: grep | transform, 1 task per stage, LW 100 HW 300 tuples/s per task, load 150 -> 600 -> 150 tuples/s");
  const three = join(cluster.dir, "signs3.csv");
  const lines = readFileSync(csv, "utf8");
  writeFileSync(three, lines.repeat(3));
  await ctl("create", three, "signs3.csv", "--node", cluster.host(1));
  const scaling = Bun.spawn(
    [
      join(ROOT, "dist/bin/ctl"),
      "rainstorm",
      "2",
      "1",
      "grep-wrapper",
      "',' 0",
      "transform-wrapper",
      "3",
      "signs3.csv",
      "scaled.txt",
      "false",
      "true",
      "0",
      "100",
      "300",
      "--rate-schedule",
      "150:5s,600:11s,150:60s",
      "--config",
      cfgPath,
    ],
    { cwd: ROOT, stdout: "pipe", stderr: "inherit" },
  );
  let outputs = 0;
  for await (const _ of readLines(scaling.stdout)) outputs++;
  if ((await scaling.exited) !== 0) throw new Error("the autoscaling job failed");
  const inputs = lines.split("\n").filter(Boolean).length * 3;
  console.log(`  ${outputs} output lines for ${inputs} input lines${outputs === inputs ? ": none lost or repeated while rescaling" : ": MISMATCH"}`);
}

/** SIGKILLs node 4 and times how long each survivor takes to mark it failed; returns the survivors. */
async function crashDetection(cluster: LocalCluster, ctl: Ctl): Promise<number[]> {
  const victim = 4;
  const victimId = ((await cluster.get(victim, "/list_self")) as { id: string }).id;
  step(`SIGKILL node ${victim} (${victimId})`);
  const killedAt = performance.now();
  cluster.kill(victim);
  const survivors = cluster.nodeNumbers.filter((k) => k !== victim);
  const seen = new Map<number, number>();
  await waitFor(
    async () => {
      for (const k of survivors) {
        if (seen.has(k)) continue;
        const m = (await cluster.members(k)).find((x) => x.id === victimId);
        if (!m || m.state === "failed") seen.set(k, performance.now() - killedAt);
      }
      return seen.size === survivors.length;
    },
    10_000,
    "every survivor to detect the crash",
    20,
  );
  for (const k of survivors) console.log(`node ${k} marked it failed after ${Math.round(seen.get(k)!)} ms`);
  console.log(`(budget t_suspect + t_fail + 1 s = ${DEFAULT_KNOBS.t_suspect_ms + DEFAULT_KNOBS.t_fail_ms + 1000} ms)`);
  await ctl("list_mem", "--node", cluster.host(1));
  return survivors;
}

async function switchProtocol(cluster: LocalCluster, ctl: Ctl, survivors: number[]): Promise<void> {
  step("switch to gossip without suspicion at node 2");
  const switchedAt = performance.now();
  await ctl("switch", "gossip", "nosuspect", "--node", cluster.host(2));
  await waitFor(
    async () => {
      for (const k of survivors) if (((await cluster.get(k, "/display_protocol")) as { protocol: string }).protocol !== "gossip") return false;
      return true;
    },
    5000,
    "the switch to reach every node",
    10,
  );
  console.log(`every survivor runs gossip ${Math.round(performance.now() - switchedAt)} ms later:`);
  for (const k of survivors) await ctl("display_protocol", "--node", cluster.host(k));
}

// Only when run (the test imports the pure helpers above).
if (import.meta.main) {
  main().catch((err) => {
    console.error(`demo failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
