/**
 * What the HyDFS benchmark's sections share: the cluster shape, the sizes each mode runs with,
 * generated files, and small reads of a node's state.
 */
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { Ring } from "../../../services/hydfs/ring.ts";
import { LocalCluster } from "../../../services/testing/cluster.ts";
import type { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import { firstThree, staleness } from "../procs.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../../..");
export const MiB = 1024 * 1024;
export const SUBNET = "127.0.33";
export const NODES = 5;

/** What every section's run gets. */
export interface HydfsCtx {
  quick: boolean;
  log: (msg: string) => void;
  /** Throughput sizes and repetitions (sizesFor, or --sizes / --reps). */
  sizes: { bytes: number; reps: number }[];
  /** Timed appends of the latency step (appendsFor, or --appends). */
  appends: number;
}

/** The steps of the benchmark, in the order they run; --only picks some. */
export const STEPS = ["throughput", "latency", "merge", "rereplication"] as const;
export type Step = (typeof STEPS)[number];

/** What the command line asks for. */
export interface BenchOptions {
  quick: boolean;
  help: boolean;
  steps: Step[];
  /** undefined: sizesFor(quick). */
  sizes: number[] | undefined;
  /** undefined: each size's own count from sizesFor. */
  reps: number | undefined;
  /** undefined: appendsFor(quick). */
  appends: number | undefined;
}

/** "1M" -> 1 MiB, "1G" -> 1 GiB, "512K" -> 512 KiB; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([KMG])$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { K: 1024, M: MiB, G: 1024 * MiB }[m[2]!.toUpperCase() as "K" | "M" | "G"];
  const bytes = Number(m[1]) * unit;
  return bytes > 0 ? bytes : undefined;
}

/** The command line (`--quick`, `--only a,b`, `--sizes 100M,1G`, `--reps N`, `--appends N`); throws naming a bad flag. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = { quick: false, help: false, steps: [...STEPS], sizes: undefined, reps: undefined, appends: undefined };
  const count = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} ${JSON.stringify(v)}: expected a positive integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i];
    if (a === "--quick") o.quick = true;
    else if (a === "--help" || a === "-h") o.help = true;
    else if (a === "--only") {
      const v = value() ?? "";
      const steps = v.split(",").filter((s) => s !== "");
      const bad = steps.filter((s) => !(STEPS as readonly string[]).includes(s));
      if (steps.length === 0 || bad.length > 0) throw new Error(`--only ${JSON.stringify(v)}: expected some of ${STEPS.join(",")}`);
      o.steps = STEPS.filter((s) => steps.includes(s));
    } else if (a === "--sizes") {
      const v = value() ?? "";
      const sizes = v.split(",").map(parseSize);
      if (sizes.length === 0 || sizes.some((s) => s === undefined)) throw new Error(`--sizes ${JSON.stringify(v)}: expected sizes like 1M,100M,1G`);
      o.sizes = sizes as number[];
    } else if (a === "--reps") o.reps = count(a, value());
    else if (a === "--appends") o.appends = count(a, value());
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  return o;
}

/** The throughput sizes a run measures: --sizes (3 reps each unless --reps), else sizesFor(quick) (with --reps overriding the counts). */
export function sizesOf(o: BenchOptions): { bytes: number; reps: number }[] {
  if (o.sizes) return o.sizes.map((bytes) => ({ bytes, reps: o.reps ?? 3 }));
  return sizesFor(o.quick).map((s) => ({ bytes: s.bytes, reps: o.reps ?? s.reps }));
}

/** Sizes of the throughput files and how many times each is measured (median reported). */
export const sizesFor = (quick: boolean): { bytes: number; reps: number }[] =>
  quick
    ? [
        { bytes: 1 * MiB, reps: 3 },
        { bytes: 20 * MiB, reps: 1 },
      ]
    : [
        { bytes: 1 * MiB, reps: 5 },
        { bytes: 100 * MiB, reps: 3 },
        { bytes: 1024 * MiB, reps: 1 },
      ];
/** Whole-run watchdog: exits (which SIGKILLs the daemons and removes temp dirs) past this. */
export const runDeadlineMs = (quick: boolean): number => (quick ? 10 * 60_000 : 45 * 60_000);

/** MB/s of `bytes` in `ms`, or "n/a". */
export const fmtMBs = (bytes: number, ms: number | undefined): string => (ms === undefined || ms <= 0 ? "n/a" : `${(bytes / MiB / (ms / 1000)).toFixed(1)}`);
/** A ratio as "1.23x", or "n/a". */
export const fmtRatio = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? "n/a" : `${x.toFixed(2)}x`);
/** 1048576 -> "1 MB" (MB = 2^20 bytes). */
export const sizeLabel = (bytes: number): string =>
  bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GB` : bytes >= MiB ? `${bytes / MiB} MB` : `${bytes / 1024} KB`;

/** Run a command with a deadline; throws on a non-zero exit or a timeout. */
export async function run(cmd: string[], timeoutMs: number): Promise<void> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const code = await proc.exited;
    if (code !== 0)
      throw new Error(
        `${cmd.join(" ")}: exit ${code}${proc.signalCode ? ` (${proc.signalCode}, deadline ${timeoutMs} ms)` : ""}: ${(await new Response(proc.stderr).text()).trim()}`,
      );
  } finally {
    clearTimeout(timer);
  }
}

/** Flush dirty pages (of earlier steps) so they are not written back during a timed step. */
export async function syncAll(): Promise<void> {
  await run(["sync"], 120_000);
}

/**
 * Write `bytes` of incompressible, never-repeating data (a random 1 MiB block whose first 16 bytes
 * carry `salt` and the block number, so no two 4 MiB chunks of any file are equal and HyDFS's
 * content-addressed store cannot deduplicate them). Returns the SHA-256.
 */
export function generateFile(path: string, bytes: number, salt: number): string {
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

export async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const piece of Bun.file(path).stream()) hasher.update(piece);
  return hasher.digest("hex");
}

export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, Math.min(n, off + 65536)));
  return b;
}

/** One counter's value in a /metrics text; undefined when it is not there. */
export function metricValue(text: string, metric: string): number | undefined {
  const m = new RegExp(`^${metric} (\\d+(?:\\.\\d+)?)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Sum of one counter over the given nodes' /metrics. */
export async function metricSum(client: HydfsTestClient, nodes: number[], metric: string): Promise<number> {
  let total = 0;
  for (const k of nodes) {
    const v = metricValue(await (await client.request(k, "GET", "/metrics")).text(), metric);
    if (v === undefined) throw new Error(`node ${k} /metrics has no ${metric}`);
    total += v;
  }
  return total;
}

/** A file's size as a quorum read reports it (x-hydfs-size), without reading the body. */
export async function sizeOf(client: HydfsTestClient, k: number, name: string): Promise<number> {
  const res = await client.request(k, "GET", `/get?name=${encodeURIComponent(name)}`);
  await res.body?.cancel();
  if (!res.ok) throw new Error(`get ${name} via node ${k}: ${res.status}`);
  return Number(res.headers.get("x-hydfs-size"));
}

/** Where `name` goes, from the ring of node `via` and the daemons' own placement (it need not exist yet: ls answers 404 then). */
export async function owners(client: HydfsTestClient, c: LocalCluster, via: number, name: string): Promise<number[]> {
  const { members } = await client.listMemIds(via);
  // Placement depends on the ids' tokens only; the port is not used.
  const ring = new Ring(members.map((m) => ({ id: m.id, hydfsPort: 1 })));
  return ring.replicasFor(name).map((r) => Number(r.host.slice(c.subnet.length + 1)));
}

/** Use dist/bin executables only when they are newer than every source file memberd and hydfsd are built from. */
export function compiledIsFresh(): { fresh: boolean; why: string } {
  const bin = join(REPO_ROOT, "dist", "bin", "hydfsd");
  if (!existsSync(bin)) return { fresh: false, why: "no dist/bin/hydfsd" };
  // Only what memberd and hydfsd are built from (rainstorm/ and ctl/ do not go into them).
  const { newer } = staleness(REPO_ROOT, [bin], ["services"], (_, rel) => rel === "hydfsd.ts" || rel === "memberd.ts" || /^(hydfs|member|shared)\//.test(rel));
  const rels = newer.map((n) => n.slice("services/".length));
  return rels.length === 0
    ? { fresh: true, why: "dist/bin is newer than every service source" }
    : { fresh: false, why: `sources newer than dist/bin: ${firstThree(rels)}` };
}

export function newCluster(dir: string, preferCompiled: boolean): LocalCluster {
  return new LocalCluster({ dir, subnet: SUBNET, killOnExit: true, preferCompiled, extra: { hydfs: { max_body_bytes: 2 * 1024 * MiB } } });
}
