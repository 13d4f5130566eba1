#!/usr/bin/env bun
/**
 * HyDFS benchmark on real processes (LocalCluster: memberd + hydfsd per node on 127.0.33.k).
 *
 *   bun scripts/bench/hydfs.ts [--quick]
 *
 * Cluster A (5 nodes):
 * 1. create and get throughput of generated files (1 MB, 100 MB, 1 GB; MB = 2^20 bytes) against
 *    `cp` of the same file on the same disk. create goes through a node that is not a replica
 *    (it streams 3 copies to 3 replicas), get through the other non-replica (bytes come from a
 *    replica through the coordinator), written to a local file as `ctl get` does.
 * 5. hydfsd peak RSS (VmHWM, reset through /proc/<pid>/clear_refs before each transfer) of the
 *    coordinator and the replicas during the largest create and get.
 * 2. 4 KiB append latency (acknowledged at quorum) with the coordinator rotating over all nodes.
 * 4. merge time after 1, 2, 5, 10 concurrent appenders (20 appends each, each appender through its
 *    own coordinator), 4 KiB and 32 KiB appends: first POST /merge, then a second one.
 * Cluster B (5 fresh nodes, same subnet, so re-replication moves only this step's files):
 * 3. re-replication: 100 files of 1 MB, SIGKILL the non-introducer holding most of them, poll
 *    every survivor every 100 ms until the victim leaves every ring and every file is on its 3
 *    new owners; bytes moved from hydfs_rereplicated_bytes_total summed over survivors.
 *
 * Progress goes to stderr, the Markdown report to stdout. `--quick`: 1 MB and 20 MB files, 100
 * appends, 20 files, appenders 1 and 2 (about a minute).
 */
import { Ring } from "../../services/hydfs/ring.ts";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from "node:fs";
import { cpus, hostname, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { LocalCluster, waitFor } from "../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../services/testing/hydfs_client.ts";
import { mdTable, mean, percentile } from "./stats.ts";
import { benchHarness } from "./harness.ts";

const QUICK = process.argv.includes("--quick");
const MiB = 1024 * 1024;
const SUBNET = "127.0.33";
const NODES = 5;
/** Sizes of the throughput files and how many times each is measured (median reported). */
const SIZES: { bytes: number; reps: number }[] = QUICK
  ? [
      { bytes: 1 * MiB, reps: 3 },
      { bytes: 20 * MiB, reps: 1 },
    ]
  : [
      { bytes: 1 * MiB, reps: 5 },
      { bytes: 100 * MiB, reps: 3 },
      { bytes: 1024 * MiB, reps: 1 },
    ];
const APPENDS = QUICK ? 100 : 500;
const APPEND_WARMUP = 10;
const APPEND_BYTES = 4096;
const RR_FILES = QUICK ? 20 : 100;
const RR_FILE_BYTES = 1 * MiB;
const RR_POLL_MS = 100;
/** Deadline for the victim to leave every ring and every file to be back on 3 replicas. */
const RR_DEADLINE_MS = 60_000;
/** After convergence, how long to keep polling for GC of surplus copies (exactly 3 holders). */
const RR_GC_DEADLINE_MS = 20_000;
const MERGE_APPENDERS = QUICK ? [1, 2] : [1, 2, 5, 10];
const MERGE_SIZES = [4 * 1024, 32 * 1024];
const MERGE_APPENDS_EACH = 20;
/** Whole-run watchdog: exits (which SIGKILLs the daemons and removes temp dirs) past this. */
const RUN_DEADLINE_MS = QUICK ? 10 * 60_000 : 45 * 60_000;
const REPO_ROOT = resolve(import.meta.dir, "../..");

const { log, newTempDir, removeTempDirs, startMs: START, stopWatchdog } = benchHarness(RUN_DEADLINE_MS);

// ---- helpers -----------------------------------------------------------------------------------

const fmtMBs = (bytes: number, ms: number | undefined) => (ms === undefined || ms <= 0 ? "n/a" : `${(bytes / MiB / (ms / 1000)).toFixed(1)}`);
const fmtMs = (ms: number | undefined, digits = 1) => (ms === undefined || !Number.isFinite(ms) ? "n/a" : `${ms.toFixed(digits)} ms`);
const fmtS = (ms: number | undefined) => (ms === undefined || !Number.isFinite(ms) ? "n/a" : `${(ms / 1000).toFixed(2)} s`);
const fmtRatio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "n/a" : `${x.toFixed(2)}x`);
const sizeLabel = (bytes: number) => (bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GB` : bytes >= MiB ? `${bytes / MiB} MB` : `${bytes / 1024} KB`);
const median = (v: number[]) => percentile(v, 50);

/** Run a command with a deadline; throws on a non-zero exit or a timeout. */
async function run(cmd: string[], timeoutMs: number): Promise<void> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const code = await proc.exited;
    if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}${proc.signalCode ? ` (${proc.signalCode}, deadline ${timeoutMs} ms)` : ""}: ${(await new Response(proc.stderr).text()).trim()}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Flush dirty pages (of earlier steps) so they are not written back during a timed step. */
async function syncAll(): Promise<void> {
  await run(["sync"], 120_000);
}

/**
 * Write `bytes` of incompressible, never-repeating data (a random 1 MiB block whose first 16 bytes
 * carry `salt` and the block number, so no two 4 MiB chunks of any file are equal and HyDFS's
 * content-addressed store cannot deduplicate them). Returns the SHA-256.
 */
function generateFile(path: string, bytes: number, salt: number): string {
  const base = new Uint8Array(MiB);
  for (let off = 0; off < MiB; off += 65536) crypto.getRandomValues(base.subarray(off, off + 65536));
  const block = new Uint8Array(MiB);
  const view = new DataView(block.buffer);
  const hasher = new Bun.CryptoHasher("sha256");
  const fd = openSync(path, "w");
  try {
    for (let i = 0, left = bytes; left > 0; i++) {
      block.set(base);
      view.setUint32(0, salt);
      view.setUint32(4, i);
      view.setFloat64(8, Math.random());
      const n = Math.min(left, MiB);
      const part = block.subarray(0, n);
      let off = 0;
      while (off < n) off += writeSync(fd, part, off, n - off);
      hasher.update(part);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return hasher.digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const piece of Bun.file(path).stream()) hasher.update(piece);
  return hasher.digest("hex");
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, Math.min(n, off + 65536)));
  return b;
}

function vmKb(pid: number, field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Reset a process's peak RSS (VmHWM) to its current RSS; false when the kernel refuses. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Sum of one counter over the given nodes' /metrics. */
async function metricSum(client: HydfsTestClient, nodes: number[], metric: string): Promise<number> {
  let total = 0;
  for (const k of nodes) {
    const text = await (await client.request(k, "GET", "/metrics")).text();
    const m = new RegExp(`^${metric} (\\d+(?:\\.\\d+)?)$`, "m").exec(text);
    if (!m) throw new Error(`node ${k} /metrics has no ${metric}`);
    total += Number(m[1]);
  }
  return total;
}

/** A file's size as a quorum read reports it (x-hydfs-size), without reading the body. */
async function sizeOf(client: HydfsTestClient, k: number, name: string): Promise<number> {
  const res = await client.request(k, "GET", `/get?name=${encodeURIComponent(name)}`);
  await res.body?.cancel();
  if (!res.ok) throw new Error(`get ${name} via node ${k}: ${res.status}`);
  return Number(res.headers.get("x-hydfs-size"));
}

/** Where `name` goes, from the ring of node `via` and the daemons' own placement (it need not exist yet: ls answers 404 then). */
async function owners(client: HydfsTestClient, c: LocalCluster, via: number, name: string): Promise<number[]> {
  const { members } = await client.listMemIds(via);
  // Placement depends on the ids' tokens only; the port is not used.
  const ring = new Ring(members.map((m) => ({ id: m.id, hydfsPort: 1 })));
  return ring.replicasFor(name).map((r) => Number(r.host.slice(c.subnet.length + 1)));
}

/** Use dist/bin executables only when they are newer than every source file memberd and hydfsd are built from. */
function compiledIsFresh(): { fresh: boolean; why: string } {
  const bin = join(REPO_ROOT, "dist", "bin", "hydfsd");
  if (!existsSync(bin)) return { fresh: false, why: "no dist/bin/hydfsd" };
  const binTime = statSync(bin).mtimeMs;
  const newer: string[] = [];
  for (const rel of readdirSync(join(REPO_ROOT, "services"), { recursive: true }) as string[]) {
    // Only what memberd and hydfsd are built from (rainstorm/ and ctl/ do not go into them).
    const used = rel === "hydfsd.ts" || rel === "memberd.ts" || /^(hydfs|member|shared)\//.test(rel);
    if (!used || !rel.endsWith(".ts") || rel.endsWith("_test.ts")) continue;
    if (statSync(join(REPO_ROOT, "services", rel)).mtimeMs > binTime) newer.push(rel);
  }
  return newer.length === 0 ? { fresh: true, why: "dist/bin is newer than every service source" } : { fresh: false, why: `sources newer than dist/bin: ${newer.slice(0, 3).join(", ")}${newer.length > 3 ? ", ..." : ""}` };
}

function newCluster(dir: string, preferCompiled: boolean): LocalCluster {
  return new LocalCluster({ dir, subnet: SUBNET, killOnExit: true, preferCompiled, extra: { hydfs: { max_body_bytes: 2 * 1024 * MiB } } });
}

// ---- 1 + 5: throughput and peak RSS ------------------------------------------------------------

interface ThroughputRow {
  bytes: number;
  reps: number;
  cpMs: number[];
  cpSyncMs: number[];
  createMs: number[];
  getMs: number[];
  coordinators: string;
}
interface RssRow {
  what: string;
  node: number;
  role: string;
  beforeMb?: number;
  peakMb?: number;
  reset: boolean;
}

async function throughput(c: LocalCluster, scratch: string, rssRows: RssRow[]): Promise<ThroughputRow[]> {
  const small = new HydfsTestClient(c, "bench-tp");
  const big = new HydfsTestClient(c, "bench-tp", 900_000);
  const rows: ThroughputRow[] = [];
  let salt = 1;
  const largest = Math.max(...SIZES.map((s) => s.bytes));
  for (const { bytes, reps } of SIZES) {
    const row: ThroughputRow = { bytes, reps, cpMs: [], cpSyncMs: [], createMs: [], getMs: [], coordinators: "" };
    const coordSet = new Set<string>();
    for (let rep = 0; rep < reps; rep++) {
      const label = `${sizeLabel(bytes)} #${rep + 1}`;
      const src = join(scratch, `src-${bytes}-${rep}.bin`);
      log(`throughput ${label}: generating ${src}`);
      const want = generateFile(src, bytes, salt++);

      // cp baseline (same file, same disk; cp itself does not sync, the fsync is timed after it).
      const cpDst = join(scratch, `cp-${bytes}-${rep}.bin`);
      await syncAll();
      const t0 = performance.now();
      await run(["cp", src, cpDst], 600_000);
      const t1 = performance.now();
      await run(["sync", cpDst], 600_000);
      const t2 = performance.now();
      row.cpMs.push(t1 - t0);
      row.cpSyncMs.push(t2 - t0);
      rmSync(cpDst, { force: true });

      // HyDFS create through a non-replica, get through the other non-replica.
      const name = `tp-${bytes}-${rep}`;
      const reps3 = await owners(small, c, 1, name);
      const others = [1, 2, 3, 4, 5].filter((k) => !reps3.includes(k));
      const createVia = others[0]!;
      const getVia = others[1] ?? others[0]!;
      coordSet.add(`create via ${createVia}, get via ${getVia}, replicas ${reps3.join(",")}`);
      const isLargest = bytes === largest && rep === reps - 1;
      const hydfsPid = (k: number) => c.pid(k, "hydfsd")!;
      /** RSS before and peak RSS during one transfer, on the largest size's last repetition only. */
      const watchRss = (nodes: number[]) => {
        const before = new Map(nodes.map((k) => [k, vmKb(hydfsPid(k), "VmRSS")]));
        const resetOk = new Map(nodes.map((k) => [k, isLargest ? resetPeak(hydfsPid(k)) : false]));
        return (what: string, roleOf: (k: number) => string) => {
          if (!isLargest) return;
          for (const k of nodes) rssRows.push({ what, node: k, role: roleOf(k), beforeMb: before.get(k)! / 1024, peakMb: (vmKb(hydfsPid(k), "VmHWM") ?? NaN) / 1024, reset: resetOk.get(k)! });
        };
      };
      const recordCreateRss = watchRss([createVia, ...reps3]);
      await syncAll();
      const t3 = performance.now();
      const res = await big.write(createVia, "create", name, Bun.file(src));
      const t4 = performance.now();
      if (res.size !== bytes) throw new Error(`create ${name}: acknowledged ${res.size} bytes, sent ${bytes}`);
      row.createMs.push(t4 - t3);
      recordCreateRss(`create ${sizeLabel(bytes)}`, (k) => (k === createVia ? "coordinator (not a replica)" : `replica #${reps3.indexOf(k) + 1}`));
      log(`throughput ${label}: cp ${fmtMBs(bytes, t1 - t0)} MB/s, create ${fmtMBs(bytes, t4 - t3)} MB/s`);

      const getDst = join(scratch, `get-${bytes}-${rep}.bin`);
      // Chunks are read from the coordinator's own store, else from the replicas in ring order:
      // with a non-replica coordinator the first replica serves every chunk.
      const recordGetRss = watchRss([getVia, reps3[0]!]);
      await syncAll();
      const t5 = performance.now();
      const resp = await big.request(getVia, "GET", `/get?name=${encodeURIComponent(name)}`);
      if (!resp.ok) throw new Error(`get ${name}: ${resp.status} ${await resp.text()}`);
      const writer = Bun.file(getDst).writer();
      let got = 0;
      for await (const piece of resp.body!) {
        writer.write(piece);
        got += piece.length;
      }
      await writer.end();
      const t6 = performance.now();
      row.getMs.push(t6 - t5);
      recordGetRss(`get ${sizeLabel(bytes)}`, (k) => (k === getVia ? "coordinator (not a replica)" : "replica #1 (serves the chunks)"));
      if (got !== bytes) throw new Error(`get ${name}: ${got} bytes, expected ${bytes}`);
      const have = await sha256File(getDst);
      if (have !== want) throw new Error(`get ${name}: content differs from what was created`);
      log(`throughput ${label}: get ${fmtMBs(bytes, t6 - t5)} MB/s (content verified)`);
      rmSync(getDst, { force: true });
      rmSync(src, { force: true });
    }
    row.coordinators = [...coordSet].join("; ");
    rows.push(row);
  }
  return rows;
}

// ---- 2: append latency -------------------------------------------------------------------------

interface LatencyResult {
  all: number[];
  viaReplica: number[];
  viaOther: number[];
}

async function appendLatency(c: LocalCluster): Promise<LatencyResult> {
  const client = new HydfsTestClient(c, "bench-latency");
  const name = "latency.log";
  await client.write(1, "create", name, "");
  const reps3 = await owners(client, c, 1, name);
  const out: LatencyResult = { all: [], viaReplica: [], viaOther: [] };
  for (let i = 0; i < APPEND_WARMUP + APPENDS; i++) {
    const k = (i % NODES) + 1;
    const body = randomBytes(APPEND_BYTES);
    const t0 = performance.now();
    await client.write(k, "append", name, body);
    const ms = performance.now() - t0;
    if (i < APPEND_WARMUP) continue;
    out.all.push(ms);
    (reps3.includes(k) ? out.viaReplica : out.viaOther).push(ms);
    if ((i - APPEND_WARMUP + 1) % 100 === 0) log(`append latency: ${i - APPEND_WARMUP + 1}/${APPENDS}`);
  }
  const size = await sizeOf(client, 2, name);
  if (size !== (APPEND_WARMUP + APPENDS) * APPEND_BYTES) throw new Error(`${name}: ${size} bytes after the appends, expected ${(APPEND_WARMUP + APPENDS) * APPEND_BYTES}`);
  return out;
}

// ---- 4: merge ----------------------------------------------------------------------------------

interface MergeRow {
  appenders: number;
  bytes: number;
  appendPhaseMs: number;
  firstMs: number;
  firstUpdated: number;
  secondMs: number;
  secondUpdated: number;
}

async function mergeBench(c: LocalCluster): Promise<MergeRow[]> {
  const rows: MergeRow[] = [];
  const admin = new HydfsTestClient(c, "bench-merge-admin", 120_000);
  for (const bytes of MERGE_SIZES) {
    for (const n of MERGE_APPENDERS) {
      const name = `merge-${n}-${bytes}`;
      await admin.write(1, "create", name, "");
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: n }, async (_, j) => {
          const client = new HydfsTestClient(c, `bench-merge-${n}-${bytes}-${j}`, 60_000);
          const via = (j % NODES) + 1;
          for (let i = 0; i < MERGE_APPENDS_EACH; i++) await client.write(via, "append", name, randomBytes(bytes));
        }),
      );
      const t1 = performance.now();
      const first = await admin.merge(1, name);
      const t2 = performance.now();
      const second = await admin.merge(1, name);
      const t3 = performance.now();
      rows.push({ appenders: n, bytes, appendPhaseMs: t1 - t0, firstMs: t2 - t1, firstUpdated: first.updated.length, secondMs: t3 - t2, secondUpdated: second.updated.length });
      log(`merge ${n} appenders x ${bytes / 1024} KiB: appends ${fmtMs(t1 - t0, 0)}, merge ${fmtMs(t2 - t1)} (updated ${first.updated.length}), again ${fmtMs(t3 - t2)}`);
      const size = await sizeOf(admin, 3, name);
      if (size !== n * MERGE_APPENDS_EACH * bytes) throw new Error(`${name}: ${size} bytes, expected ${n * MERGE_APPENDS_EACH * bytes}`);
    }
  }
  return rows;
}

// ---- 3: re-replication -------------------------------------------------------------------------

interface RereplicationResult {
  files: number;
  victim: number;
  victimFiles: number;
  firstDetectMs?: number;
  allDetectMs?: number;
  convergedMs?: number;
  gcMs?: number;
  movedBytes?: number;
  note: string;
}

async function rereplication(c: LocalCluster): Promise<RereplicationResult> {
  const client = new HydfsTestClient(c, "bench-rr", 30_000);
  const names = Array.from({ length: RR_FILES }, (_, i) => `rr-${String(i).padStart(3, "0")}`);
  for (const [i, name] of names.entries()) await client.write((i % NODES) + 1, "create", name, randomBytes(RR_FILE_BYTES));
  log(`re-replication: created ${names.length} files of ${sizeLabel(RR_FILE_BYTES)}`);
  // Let the background merges of the freshly written (dirty) files finish first.
  let last = -1;
  await waitFor(
    async () => {
      const now = await metricSum(client, [1, 2, 3, 4, 5], "hydfs_merges_total");
      const quiet = now === last;
      last = now;
      return quiet;
    },
    30_000,
    "background merges to settle",
    2500,
  );
  const held = new Map<number, number>();
  for (let k = 2; k <= NODES; k++) held.set(k, (await client.liststore(k)).filter((f) => f.startsWith("rr-")).length);
  const victim = [...held.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  const victimHost = c.host(victim);
  const survivors = [1, 2, 3, 4, 5].filter((k) => k !== victim);
  const movedBefore = await metricSum(client, survivors, "hydfs_rereplicated_bytes_total");
  const result: RereplicationResult = { files: names.length, victim, victimFiles: held.get(victim)!, note: "" };
  log(`re-replication: SIGKILL node ${victim} (memberd + hydfsd), which holds ${result.victimFiles} of the files`);

  c.kill(victim);
  const tKill = performance.now();
  const detected = new Map<number, number>();
  let want: Map<string, number[]> | undefined;
  const deadline = tKill + RR_DEADLINE_MS;
  const quick = new HydfsTestClient(c, "bench-rr-poll", 2_000);
  while (performance.now() < deadline) {
    const iter = performance.now();
    for (const k of survivors) {
      if (detected.has(k)) continue;
      try {
        const { members } = await quick.listMemIds(k);
        if (!members.some((m) => m.host === victimHost)) detected.set(k, performance.now() - tKill);
      } catch {
        // a busy node answers next time
      }
    }
    if (detected.size === survivors.length) {
      result.firstDetectMs ??= Math.min(...detected.values());
      result.allDetectMs ??= Math.max(...detected.values());
      if (!want) {
        want = new Map();
        for (const name of names) want.set(name, await owners(quick, c, survivors[0]!, name));
      }
      const holders = new Map<string, number[]>(names.map((n) => [n, []]));
      let ok = true;
      for (const k of survivors) {
        try {
          for (const f of await quick.liststore(k)) holders.get(f)?.push(k);
        } catch {
          ok = false;
        }
      }
      if (ok) {
        const back = names.every((n) => want!.get(n)!.every((k) => holders.get(n)!.includes(k)));
        if (back && result.convergedMs === undefined) {
          result.convergedMs = performance.now() - tKill;
          result.movedBytes = (await metricSum(client, survivors, "hydfs_rereplicated_bytes_total")) - movedBefore;
          log(`re-replication: every file on its 3 new owners ${fmtS(result.convergedMs)} after the kill`);
        }
        if (back && names.every((n) => holders.get(n)!.length === 3)) {
          result.gcMs = performance.now() - tKill;
          break;
        }
      }
      if (result.convergedMs !== undefined && performance.now() - tKill > result.convergedMs + RR_GC_DEADLINE_MS) {
        result.note = `surplus copies not all dropped within ${RR_GC_DEADLINE_MS / 1000} s of convergence`;
        break;
      }
    }
    const spent = performance.now() - iter;
    if (spent < RR_POLL_MS) await Bun.sleep(RR_POLL_MS - spent);
  }
  if (result.allDetectMs === undefined) result.note = `the victim was still on some ring ${RR_DEADLINE_MS / 1000} s after the kill`;
  else if (result.convergedMs === undefined) result.note = `files not back on 3 replicas within ${RR_DEADLINE_MS / 1000} s of the kill`;
  return result;
}

// ---- main --------------------------------------------------------------------------------------

function diskCheck(dir: string): void {
  const largest = Math.max(...SIZES.map((s) => s.bytes));
  // source + cp copy + get copy + 3 replicas of the largest file, plus what earlier sizes left.
  const need = largest * 6 + SIZES.reduce((n, s) => n + s.bytes * s.reps * 3, 0) + 512 * MiB;
  try {
    const st = statfsSync(dir);
    const free = Number(st.bavail) * Number(st.bsize);
    log(`disk: ${(free / 1024 / MiB).toFixed(1)} GB free in ${dir}, need about ${(need / 1024 / MiB).toFixed(1)} GB`);
    if (free < need) throw new Error(`not enough disk in ${dir}: ${(free / 1024 / MiB).toFixed(1)} GB free, need about ${(need / 1024 / MiB).toFixed(1)} GB`);
  } catch (err) {
    if ((err as Error).message.startsWith("not enough disk")) throw err;
    log(`disk: cannot check free space (${(err as Error).message})`);
  }
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const root = newTempDir("bench-hydfs-");
  diskCheck(root);
  const compiled = compiledIsFresh();
  log(`daemons: ${compiled.fresh ? "dist/bin executables" : "bun + services/*.ts"} (${compiled.why})`);
  const scratch = join(root, "scratch");
  mkdirSync(scratch, { recursive: true });

  let tp: ThroughputRow[] = [];
  const rss: RssRow[] = [];
  let lat: LatencyResult | undefined;
  let merges: MergeRow[] = [];
  let rr: RereplicationResult | undefined;
  const failures: string[] = [];
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      log(`${what} FAILED: ${(err as Error).stack ?? err}`);
      failures.push(`${what}: ${(err as Error).message}`);
    }
  };

  const a = newCluster(join(root, "cluster-a"), compiled.fresh);
  try {
    log(`cluster A: starting ${NODES} nodes on ${SUBNET}.1-${NODES}`);
    await a.up(NODES, 60_000);
    await step("throughput", async () => {
      tp = await throughput(a, scratch, rss);
    });
    await step("append latency", async () => {
      lat = await appendLatency(a);
    });
    await step("merge", async () => {
      merges = await mergeBench(a);
    });
  } finally {
    await a.down(true);
  }

  const b = newCluster(join(root, "cluster-b"), compiled.fresh);
  try {
    log(`cluster B: starting ${NODES} fresh nodes on ${SUBNET}.1-${NODES}`);
    await b.up(NODES, 60_000);
    await step("re-replication", async () => {
      rr = await rereplication(b);
    });
  } finally {
    await b.down(true);
  }

  // ---- report ----------------------------------------------------------------------------------
  const totalS = (performance.now() - START) / 1000;
  const out: string[] = [];
  out.push(
    `# HyDFS benchmark${QUICK ? " (--quick smoke run)" : ""}`,
    "",
    `${new Date().toISOString()} on ${hostname()}: nproc=${navigator.hardwareConcurrency} (${cpus()[0]?.model ?? "unknown CPU"}), Bun ${Bun.version}; one run, same machine. ` +
      `${NODES} nodes (memberd + hydfsd each, ${compiled.fresh ? "dist/bin executables" : "bun + .ts sources"}) on ${SUBNET}.k, default knobs, hydfs.max_body_bytes = 2 GiB; ` +
      `every node's store, the benchmark's files and the cp copies on the same disk. MB = 2^20 bytes. Total runtime ${totalS.toFixed(0)} s. ` +
      `1-min load average ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end (the machine is shared; anything above ~0 at the start is someone else's work).`,
    "",
  );
  if (failures.length > 0) out.push("**Steps that failed:**", "", ...failures.map((f) => `- ${f}`), "");

  out.push(
    "## 1. Throughput: create and get vs cp (MB/s, median of reps)",
    "",
    "Generated incompressible file in the page cache. `cp`: `cp src dst` alone (cp does not sync); `cp+fsync`: the same cp plus `sync dst` (the fsync HyDFS does for every chunk, once per replica). " +
      "create: POST /create streamed from Bun.file through a coordinator that is not a replica (it pushes each 4 MiB chunk to 3 replicas, each fdatasyncs it). " +
      "get: GET /get through the other non-replica, chunks fetched from replica #1, written to a local file like `ctl get`; content verified by SHA-256 afterwards (untimed). " +
      "Global `sync` before each timed step. Targets: create >= 0.5 x cp / 3 (3 replicas share one disk), get >= 0.5 x cp.",
    "",
    mdTable(
      ["size", "reps", "cp", "cp+fsync", "create", "create / cp", "create target (>= cp/6)", "get", "get / cp", "get target (>= 0.5x)"],
      tp.map((r) => {
        const cp = median(r.cpMs)!;
        const cr = median(r.createMs)!;
        const gt = median(r.getMs)!;
        const crRatio = cp / cr;
        const gtRatio = cp / gt;
        return [
          sizeLabel(r.bytes),
          String(r.reps),
          fmtMBs(r.bytes, cp),
          fmtMBs(r.bytes, median(r.cpSyncMs)),
          fmtMBs(r.bytes, cr),
          fmtRatio(crRatio),
          crRatio >= 0.5 / 3 ? "PASS" : "FAIL",
          fmtMBs(r.bytes, gt),
          fmtRatio(gtRatio),
          gtRatio >= 0.5 ? "PASS" : "FAIL",
        ];
      }),
    ),
    "",
    mdTable(
      ["size", "cp ms (each rep)", "create ms (each rep)", "get ms (each rep)", "nodes"],
      tp.map((r) => [sizeLabel(r.bytes), r.cpMs.map((v) => v.toFixed(0)).join(", "), r.createMs.map((v) => v.toFixed(0)).join(", "), r.getMs.map((v) => v.toFixed(0)).join(", "), r.coordinators]),
    ),
    "",
  );

  const latRow = (label: string, v: number[]) => [label, String(v.length), fmtMs(percentile(v, 50), 2), fmtMs(percentile(v, 90), 2), fmtMs(percentile(v, 99), 2), fmtMs(v.length ? Math.max(...v) : undefined, 2), fmtMs(mean(v), 2)];
  out.push(
    `## 2. Append latency: ${APPEND_BYTES / 1024} KiB appends, acknowledged at quorum`,
    "",
    `${APPENDS} sequential appends to one file by one client (after ${APPEND_WARMUP} warm-up appends), coordinator rotating over nodes 1-${NODES}; time from request to acknowledgement at the client. p99 is nearest-rank. Target: p99 <= 15 ms.`,
    "",
    mdTable(
      ["coordinator", "appends", "p50", "p90", "p99", "max", "mean"],
      lat ? [latRow("all", lat.all), latRow("a replica of the file", lat.viaReplica), latRow("not a replica", lat.viaOther)] : [],
    ),
    "",
    lat ? `Target p99 <= 15 ms: ${(percentile(lat.all, 99) ?? Infinity) <= 15 ? "PASS" : "FAIL"}.` : "Target p99 <= 15 ms: not measured.",
    "",
  );

  out.push(
    `## 3. Re-replication after a SIGKILL (fresh 5-node cluster, ${RR_FILES} files of ${sizeLabel(RR_FILE_BYTES)})`,
    "",
    `The non-introducer holding most files is killed (memberd + hydfsd). Every survivor's /list_mem_ids and /liststore polled every ${RR_POLL_MS} ms (each poll round itself takes a few ms). ` +
      "'Back on 3' = every file listed by all 3 of its owners on the new ring; 'GC done' = additionally no surplus copy left. " +
      "Bytes moved: increase of hydfs_rereplicated_bytes_total summed over the survivors between the kill and 'back on 3'; MB/s over detection (all rings) -> back on 3. Target: back on 3 <= 10 s after the crash.",
    "",
    mdTable(
      ["victim", "its files", "kill -> first ring drops it", "kill -> all rings", "kill -> back on 3", "detection -> back on 3", "kill -> GC done", "bytes moved", "MB/s moved", "target (<= 10 s)"],
      rr
        ? [
            [
              `node ${rr.victim}`,
              `${rr.victimFiles} (${sizeLabel(rr.victimFiles * RR_FILE_BYTES)})`,
              fmtS(rr.firstDetectMs),
              fmtS(rr.allDetectMs),
              fmtS(rr.convergedMs),
              fmtS(rr.convergedMs !== undefined && rr.allDetectMs !== undefined ? rr.convergedMs - rr.allDetectMs : undefined),
              fmtS(rr.gcMs),
              rr.movedBytes !== undefined ? `${(rr.movedBytes / MiB).toFixed(1)} MB` : "n/a",
              rr.movedBytes !== undefined && rr.convergedMs !== undefined && rr.allDetectMs !== undefined ? fmtMBs(rr.movedBytes, rr.convergedMs - rr.allDetectMs) : "n/a",
              rr.convergedMs !== undefined && rr.convergedMs <= 10_000 ? "PASS" : "FAIL",
            ],
          ]
        : [],
    ),
    "",
    ...(rr?.note ? [`Note: ${rr.note}.`, ""] : []),
  );

  out.push(
    `## 4. Merge after concurrent appenders (${MERGE_APPENDS_EACH} appends each, appender j through node (j mod ${NODES}) + 1)`,
    "",
    "First POST /merge (through node 1) right after the last append is acknowledged, then a second one at once. 'updated' = replicas the merge had to rewrite. Target: second <= 0.1 x first.",
    "",
    mdTable(
      ["appenders", "append size", "appends", "append phase", "appends/s", "first merge", "updated", "second merge", "updated", "second / first", "target"],
      merges.map((m) => {
        const total = m.appenders * MERGE_APPENDS_EACH;
        const ratio = m.secondMs / m.firstMs;
        return [
          String(m.appenders),
          `${m.bytes / 1024} KiB`,
          String(total),
          fmtMs(m.appendPhaseMs, 0),
          (total / (m.appendPhaseMs / 1000)).toFixed(0),
          fmtMs(m.firstMs, 2),
          String(m.firstUpdated),
          fmtMs(m.secondMs, 2),
          String(m.secondUpdated),
          fmtRatio(ratio),
          ratio <= 0.1 ? "PASS" : "FAIL",
        ];
      }),
    ),
    "",
  );

  const largest = Math.max(...SIZES.map((s) => s.bytes));
  out.push(
    `## 5. hydfsd peak RSS during the ${sizeLabel(largest)} create and get`,
    "",
    "VmHWM from /proc/<pid>/status, reset to the current RSS (`echo 5 > /proc/<pid>/clear_refs`) just before the transfer, read right after it. 'RSS before' = VmRSS just before. Target (get): <= 200 MB.",
    "",
    mdTable(
      ["transfer", "node", "role", "RSS before", "peak RSS (VmHWM)", "target (<= 200 MB)"],
      rss.map((r) => [
        r.what,
        String(r.node),
        r.role,
        r.beforeMb !== undefined ? `${r.beforeMb.toFixed(0)} MB` : "n/a",
        `${r.peakMb !== undefined && Number.isFinite(r.peakMb) ? r.peakMb.toFixed(0) : "n/a"} MB${r.reset ? "" : " (lifetime peak: reset refused)"}`,
        r.what.startsWith("get") ? (r.peakMb !== undefined && r.peakMb <= 200 ? "PASS" : "FAIL") : "(info)",
      ]),
    ),
    "",
  );
  process.stdout.write(`${out.join("\n")}\n`);
  log(`done in ${totalS.toFixed(0)} s`);
  if (failures.length > 0) process.exitCode = 1;
}

try {
  await main();
} finally {
  stopWatchdog();
  removeTempDirs();
}
