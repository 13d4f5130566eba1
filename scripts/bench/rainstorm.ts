#!/usr/bin/env bun
/**
 * RainStorm benchmark on real processes (LocalCluster: memberd + hydfsd + rainstormd per node).
 *
 *   bun scripts/bench/rainstorm.ts [--quick] [--no-build]
 *
 * On a 3-node cluster (127.0.36.k) and then a 5-node cluster (127.0.37.k), each in a fresh mkdtemp
 * directory, with the generated input stored in HyDFS first:
 * 1. End-to-end throughput at input_rate 0 of
 *      App 1: grep-wrapper SIGN_ 6 | aggregate-wrapper          (3 tasks per stage)
 *      App 2: grep-wrapper 'Street Name' 4 | transform-wrapper 3 (3 tasks per stage)
 *    over a generated 1,000,000-line traffic-sign CSV (the lines of testdata/dataset1.csv cycled,
 *    each with a fresh Sign Asset ID = its own line number, so every output names its input line).
 *    Time = the job's duration_ms from its done event (tuples/s = lines read / duration); the wall
 *    time from submit to the done event is reported beside it. The same computation as a Unix
 *    pipeline on the same local file, in the same run, is the baseline (median of 3):
 *      App 1: grep -F 'SIGN_' FILE | cut -d, -f7 | sort | uniq -c
 *      App 2: grep -F 'Street Name' FILE | cut -d, -f1-3 | wc -l
 * 2. Source-to-sink latency of App 2 at half the input rate App 2 reached on that cluster, over a
 *    prefix of the same file sized to last ~20 s. The source emits line n at t0 + n/rate (it
 *    paces to exactly that schedule); t0 is approximated by the arrival of the "accepted" event at
 *    the submitter, and each output's line number is read from its Sign Asset ID, so latency =
 *    arrival of the output at the submitter - (accepted + n/rate).
 * 3. Peak RSS (VmHWM, reset through /proc/<pid>/clear_refs before each phase) of every daemon per
 *    phase, and of every operator process (pids from the accepted event and list_tasks; VmHWM and
 *    VmRSS polled every 200 ms and once more at the done event, the max kept).
 * Every job's output is checked against a reference computed in this script while generating the
 * file (and against grep -c); a mismatch is flagged in the tables and on stderr, and the exit code
 * is 1.
 *
 * Progress goes to stderr, the Markdown report to stdout. `--quick`: 100,000 lines, the 3-node
 * cluster only, a ~5 s latency run (about a minute). Builds dist/ when it is missing or older than
 * the sources, unless --no-build.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { csvField, formatCsvRecord, parseCsvLine } from "../../ops/csv.ts";
import { partitionOf } from "../../services/rainstorm/plan.ts";
import { LocalCluster, SERVICES, type Service } from "../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../services/testing/hydfs_client.ts";
import { type JobRun, RainstormTestClient } from "../../services/testing/rainstorm_client.ts";
import { mdTable, percentile } from "./stats.ts";

const QUICK = process.argv.includes("--quick");
const NO_BUILD = process.argv.includes("--no-build");
const REPO_ROOT = resolve(import.meta.dir, "../..");
const LINES = QUICK ? 100_000 : 1_000_000;
const CLUSTERS: { nodes: number; subnet: string }[] = QUICK
  ? [{ nodes: 3, subnet: "127.0.36" }]
  : [
      { nodes: 3, subnet: "127.0.36" },
      { nodes: 5, subnet: "127.0.37" },
    ];
const TASKS = 3;
const APP1 = { pattern: "SIGN_", col: 6 };
const APP2 = { pattern: "Street Name", col: 4, fields: 3 };
/** Target of the issue: App 2 on the 5-node cluster. */
const TARGET_TUPLES_PER_S = 100_000;
const LATENCY_SECONDS = QUICK ? 5 : 20;
const PIPELINE_REPS = 3;
const JOB_TIMEOUT_MS = QUICK ? 5 * 60_000 : 15 * 60_000;
const UPLOAD_TIMEOUT_MS = 10 * 60_000;
const SAMPLE_MS = 200;
/** Whole-run watchdog: exits (which SIGKILLs the daemons and removes temp dirs) past this. */
const RUN_DEADLINE_MS = QUICK ? 10 * 60_000 : 60 * 60_000;
const MB = 1024; // kB per MiB, for /proc values

const START = performance.now();
function log(msg: string): void {
  const t = ((performance.now() - START) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${t}s] ${msg}\n`);
}

// ---- cleanup -----------------------------------------------------------------------------------

const tempDirs = new Set<string>();
function removeTempDirs(): void {
  for (const d of tempDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  tempDirs.clear();
}
// LocalCluster's killOnExit handlers SIGKILL the daemons on exit, whatever the cause.
process.on("exit", removeTempDirs);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));
const watchdog = setTimeout(() => {
  log(`run deadline of ${RUN_DEADLINE_MS / 60_000} min passed; exiting`);
  process.exit(2);
}, RUN_DEADLINE_MS);

function newTempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

// ---- formatting --------------------------------------------------------------------------------

const int = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "n/a" : Math.round(n).toLocaleString("en-US"));
const fmtMs = (ms: number | undefined, digits = 1) => (ms === undefined || !Number.isFinite(ms) ? "n/a" : `${ms.toFixed(digits)} ms`);
const fmtS = (ms: number | undefined) => (ms === undefined || !Number.isFinite(ms) ? "n/a" : `${(ms / 1000).toFixed(2)} s`);
const fmtMB = (kb: number | undefined) => (kb === undefined || !Number.isFinite(kb) ? "n/a" : `${(kb / MB).toFixed(1)}`);
const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

// ---- input generation ----------------------------------------------------------------------------

const DATASET = readFileSync(join(REPO_ROOT, "testdata", "dataset1.csv"), "utf8")
  .split("\n")
  .map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
  .filter((l) => l !== "");
const HEADER = DATASET[0]!;
/** Each data row without its first field (Sign Asset ID): the rest, starting at its comma. */
const ROW_TAILS = DATASET.slice(1).map((line) => {
  if (!line.startsWith('"')) return line.slice(line.indexOf(","));
  let i = 1;
  for (;;) {
    const q = line.indexOf('"', i);
    if (q < 0) throw new Error(`dataset1.csv: unterminated quote in ${line.slice(0, 60)}`);
    if (line[q + 1] === '"') {
      i = q + 2;
      continue;
    }
    return line.slice(q + 1);
  }
});

/** 1234567 -> "1,234,567" (quoted when it holds a comma), like the real Sign Asset IDs. */
function assetId(n: number): string {
  const s = String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return s.includes(",") ? `"${s}"` : s;
}

/** Line n (1-based, as the source numbers them) of the generated file: line 1 is the header. */
function genLine(n: number): string {
  return n === 1 ? HEADER : `${assetId(n)}${ROW_TAILS[(n - 2) % ROW_TAILS.length]}`;
}

/** The file line an App 2 output came from: its first field is the Sign Asset ID = line number. */
function lineOfOutput(value: string): number {
  return Number((parseCsvLine(value)[0] ?? "").replaceAll(",", ""));
}

/** Tuples each of TASKS tasks receives: stage 0 from the source keys `src:n`, stage 1 from `keys`. */
function shares(src: string, lines: number, keys: Map<string, number>): [number[], number[]] {
  const s0 = new Array<number>(TASKS).fill(0);
  for (let n = 1; n <= lines; n++) s0[partitionOf(`${src}:${n}`, TASKS)]!++;
  const s1 = new Array<number>(TASKS).fill(0);
  for (const [k, count] of keys) s1[partitionOf(k, TASKS)]! += count;
  return [s0, s1];
}

interface Reference {
  lines: number;
  bytes: number;
  /** Lines containing APP2.pattern (= App 2 outputs). */
  app2: number;
  /** Lines containing APP1.pattern (= App 1 outputs: one count update per matching line). */
  app1: number;
  /** Final App 1 count per group (CSV field APP1.col of matching lines). */
  app1Counts: Map<string, number>;
  /** App 2's stage-1 keys (CSV field APP2.col of matching lines) and how many of each. */
  app2Keys: Map<string, number>;
}

/** Write lines 1..lines of the generated file to `path` (1 MiB writes) and compute the references. */
function writeInput(path: string, lines: number): Reference {
  const ref: Reference = { lines, bytes: 0, app2: 0, app1: 0, app1Counts: new Map(), app2Keys: new Map() };
  const enc = new TextEncoder();
  const fd = openSync(path, "w");
  try {
    let parts: string[] = [];
    let chars = 0;
    const flush = () => {
      const bytes = enc.encode(`${parts.join("\n")}\n`);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      ref.bytes += bytes.length;
      parts = [];
      chars = 0;
    };
    for (let n = 1; n <= lines; n++) {
      const line = genLine(n);
      if (line.includes(APP2.pattern)) {
        ref.app2++;
        const k = csvField(line, APP2.col) ?? "";
        ref.app2Keys.set(k, (ref.app2Keys.get(k) ?? 0) + 1);
      }
      if (line.includes(APP1.pattern)) {
        ref.app1++;
        const g = csvField(line, APP1.col) ?? "";
        ref.app1Counts.set(g, (ref.app1Counts.get(g) ?? 0) + 1);
      }
      parts.push(line);
      chars += line.length + 1;
      if (chars >= 1 << 20) flush();
    }
    if (parts.length > 0) flush();
  } finally {
    closeSync(fd);
  }
  return ref;
}

// ---- processes -----------------------------------------------------------------------------------

/** Run `sh -c cmd` (LC_ALL=C) with a deadline; returns its stdout and how long it took. */
async function timeShell(cmd: string, timeoutMs: number): Promise<{ ms: number; out: string }> {
  const t0 = performance.now();
  const proc = Bun.spawn(["sh", "-c", cmd], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, LC_ALL: "C" } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    const ms = performance.now() - t0;
    if (code !== 0) throw new Error(`${cmd}: exit ${code}${proc.signalCode ? ` (${proc.signalCode}, deadline ${timeoutMs} ms)` : ""}: ${err.trim()}`);
    return { ms, out };
  } finally {
    clearTimeout(timer);
  }
}

function procStatus(pid: number): { hwm?: number; rss?: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = /VmHWM:\s+(\d+)/.exec(text);
    const rss = /VmRSS:\s+(\d+)/.exec(text);
    return { hwm: hwm ? Number(hwm[1]) : undefined, rss: rss ? Number(rss[1]) : undefined };
  } catch {
    return {};
  }
}

const CLK_TCK = 100;
/** CPU time (user + system) a process has used so far, in seconds. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Reset a process's peak RSS (VmHWM) to its current RSS; false when the kernel refuses. */
function resetPeak(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Use dist/ only when every executable exists and is newer than every source it is built from. */
function compiledIsFresh(): { fresh: boolean; why: string } {
  const exes = [...SERVICES.map((s) => join(REPO_ROOT, "dist", "bin", s)), join(REPO_ROOT, "dist", "ops", "rainstorm-op")];
  const missing = exes.filter((e) => !existsSync(e));
  if (missing.length > 0) return { fresh: false, why: `missing ${missing.map((m) => m.slice(REPO_ROOT.length + 1)).join(", ")}` };
  const oldest = Math.min(...exes.map((e) => statSync(e).mtimeMs));
  const newer: string[] = [];
  for (const top of ["services", "ops"]) {
    for (const rel of readdirSync(join(REPO_ROOT, top), { recursive: true }) as string[]) {
      if (!rel.endsWith(".ts") || rel.endsWith("_test.ts") || rel.startsWith("testing/")) continue;
      if (statSync(join(REPO_ROOT, top, rel)).mtimeMs > oldest) newer.push(`${top}/${rel}`);
    }
  }
  return newer.length === 0 ? { fresh: true, why: "dist/ is newer than every source" } : { fresh: false, why: `sources newer than dist/: ${newer.slice(0, 3).join(", ")}${newer.length > 3 ? ", ..." : ""}` };
}

async function ensureBuilt(): Promise<string> {
  const state = compiledIsFresh();
  if (state.fresh) return `dist/bin + dist/ops executables (${state.why})`;
  if (NO_BUILD) return `${existsSync(join(REPO_ROOT, "dist", "bin", "rainstormd")) ? "dist/ executables" : "bun + .ts sources"}, --no-build (${state.why})`;
  log(`building dist/ (${state.why})`);
  const t0 = performance.now();
  await timeShell(`${shq(process.execPath)} ${shq(join(REPO_ROOT, "scripts", "build.ts"))}`, 600_000);
  log(`built dist/ in ${fmtS(performance.now() - t0)}`);
  return `dist/bin + dist/ops executables (built by this run: ${state.why})`;
}

// ---- jobs ----------------------------------------------------------------------------------------

interface OpPeak {
  stage: number;
  index: number;
  node: string;
  pid: number;
  hwm: number;
  rss: number;
  /** CPU seconds, last seen (the done event comes before the tasks are stopped). */
  cpu: number;
  /** From the worker's task list, last poll: tuples given to the operator and input batches. */
  inputs?: number;
  batches?: number;
}

interface JobResult {
  label: string;
  run: JobRun;
  wallMs: number;
  /** performance.now() when the accepted event reached us. */
  acceptedAt?: number;
  /** Output events with their arrival time (kept only when asked for). */
  arrivals: { t: number; lines: string[] }[];
  ops: Map<string, OpPeak>;
  /** CPU seconds each daemon ("k/service") used from submission to the done event. */
  daemonCpu: Map<string, number>;
  /** CPU seconds this process (the submitter, reading the event stream) used in that time. */
  clientCpu: number;
}

async function runJob(c: LocalCluster, rs: RainstormTestClient, label: string, args: string[], trackArrivals: boolean): Promise<JobResult> {
  const result: JobResult = { label, run: { events: [], outputs: [] }, wallMs: NaN, arrivals: [], ops: new Map(), daemonCpu: new Map(), clientCpu: NaN };
  const daemonPids = c.nodeNumbers.flatMap((k) => SERVICES.map((s) => ({ key: `${k}/${s}`, pid: c.pid(k, s) })));
  const cpuBefore = new Map(daemonPids.map((d) => [d.key, cpuSeconds(d.pid)]));
  const clientBefore = process.cpuUsage();
  let jobId: string | undefined;
  let ticks = 0;
  let listing = false;
  const track = (stage: number, index: number, node: string, pid: number) => {
    const key = `${stage}/${index}/${pid}`;
    if (!result.ops.has(key)) result.ops.set(key, { stage, index, node, pid, hwm: 0, rss: 0, cpu: 0 });
  };
  const sample = () => {
    for (const op of result.ops.values()) {
      const s = procStatus(op.pid);
      if (s.hwm !== undefined) op.hwm = Math.max(op.hwm, s.hwm);
      if (s.rss !== undefined) op.rss = Math.max(op.rss, s.rss);
      op.cpu = cpuSeconds(op.pid) ?? op.cpu;
    }
  };
  /** Each worker's task list: tuples and batches per task (for the mean batch size). */
  const pollWorkers = () =>
    Promise.allSettled(
      c.nodeNumbers.map(async (k) => {
        const res = await fetch(rs.url(k, "/worker/tasks"), { signal: AbortSignal.timeout(2000) });
        for (const t of (await res.json()) as { job: string; stage: number; index: number; pid: number; inputs: number; batches: number }[]) {
          const op = result.ops.get(`${t.stage}/${t.index}/${t.pid}`);
          if (t.job === jobId && op) {
            op.inputs = t.inputs;
            op.batches = t.batches;
          }
        }
      }),
    );
  const sampler = setInterval(() => {
    sample();
    // list_tasks once a second picks up restarted tasks (new pids).
    if (jobId && ++ticks % 5 === 0 && !listing) {
      listing = true;
      rs.tasks()
        .then((ts) => {
          for (const t of ts) if (t.job === jobId && t.pid) track(t.stage, t.task, t.node, t.pid);
          return pollWorkers();
        })
        .catch(() => {})
        .finally(() => {
          listing = false;
        });
    }
  }, SAMPLE_MS);
  let deadline: Timer | undefined;
  const t0 = performance.now();
  try {
    const run = await Promise.race([
      rs.run(args, JOB_TIMEOUT_MS, (ev) => {
        const now = performance.now();
        if (ev.event === "accepted") {
          result.acceptedAt = now;
          jobId = ev.job;
          for (const t of ev.tasks as { stage: number; index: number; node: string; pid: number }[]) track(t.stage, t.index, t.node, t.pid);
          sample();
          log(`${label}: accepted as ${ev.job} after ${fmtMs(now - t0)}; tasks ${(ev.tasks as { stage: number; index: number; node: string; pid: number }[]).map((t) => `s${t.stage}[${t.index}]@${t.node.split(".").pop()}`).join(" ")}`);
        } else if (ev.event === "output") {
          if (trackArrivals) result.arrivals.push({ t: now, lines: ev.lines });
        } else if (ev.event === "done") {
          // The done event comes before the leader stops the tasks: their last peak is readable now.
          sample();
          for (const d of daemonPids) result.daemonCpu.set(d.key, (cpuSeconds(d.pid) ?? NaN) - (cpuBefore.get(d.key) ?? NaN));
          const cu = process.cpuUsage(clientBefore);
          result.clientCpu = (cu.user + cu.system) / 1e6;
        } else if (ev.event === "task_restarted") {
          log(`${label}: task stage${ev.stage}[${ev.index}] restarted on ${ev.node} as pid ${ev.pid}: ${ev.reason}`);
          track(ev.stage, ev.index, ev.node, ev.pid);
        } else if (ev.event === "failed") {
          log(`${label}: FAILED: ${ev.error}`);
        }
      }),
      new Promise<never>((_, reject) => {
        deadline = setTimeout(() => reject(new Error(`${label}: no done event within ${JOB_TIMEOUT_MS / 1000} s`)), JOB_TIMEOUT_MS + 5000);
      }),
    ]);
    result.wallMs = performance.now() - t0;
    result.run = run;
  } finally {
    clearInterval(sampler);
    clearTimeout(deadline);
  }
  if (result.run.rejected) throw new Error(`${label}: rejected: ${result.run.rejected.status} ${result.run.rejected.error}`);
  if (result.run.failed) throw new Error(`${label}: failed: ${result.run.failed}`);
  if (!result.run.done) throw new Error(`${label}: the event stream ended without a done event`);
  return result;
}

const app1Args = (src: string, dest: string, rate = 0) => [
  "2",
  String(TASKS),
  "-stage-config-map",
  `stage0 grep-wrapper ${APP1.pattern} ${APP1.col} stage1 aggregate-wrapper`,
  src,
  dest,
  "false",
  "false",
  String(rate),
  "0",
  "0",
];
const app2Args = (src: string, dest: string, rate = 0) => [
  "2",
  String(TASKS),
  "-stage-config-map",
  `stage0 grep-wrapper '${APP2.pattern}' ${APP2.col} stage1 transform-wrapper ${APP2.fields}`,
  src,
  dest,
  "false",
  "false",
  String(rate),
  "0",
  "0",
];

// ---- checks --------------------------------------------------------------------------------------

const mismatches: string[] = [];
/** `grep -F -c` of the App 2 pattern over the big file, a second reference for App 2. */
let grepCount: number | undefined;
function mismatch(what: string): string {
  mismatches.push(what);
  log(`!!!!!!!! MISMATCH: ${what}`);
  return `**MISMATCH**: ${what}`;
}

/** App 1: one count update per matching line, and the final count of each group = the reference. */
function checkApp1(label: string, run: JobRun, ref: Reference): string {
  const problems: string[] = [];
  if (run.done?.tuples_read !== ref.lines) problems.push(`tuples_read ${run.done?.tuples_read}, file has ${ref.lines} lines`);
  if (run.outputs.length !== ref.app1) problems.push(`${run.outputs.length} outputs, reference ${ref.app1} matching lines`);
  const final = new Map<string, number>();
  for (const line of run.outputs) {
    const tab = line.lastIndexOf("\t");
    const key = line.slice(0, tab);
    final.set(key, Math.max(final.get(key) ?? 0, Number(line.slice(tab + 1))));
  }
  const keys = new Set([...final.keys(), ...ref.app1Counts.keys()]);
  const bad = [...keys].filter((k) => final.get(k) !== ref.app1Counts.get(k));
  if (bad.length > 0) problems.push(`${bad.length} of ${keys.size} groups differ (e.g. ${JSON.stringify(bad[0])}: got ${final.get(bad[0]!)}, want ${ref.app1Counts.get(bad[0]!)})`);
  return problems.length === 0 ? `ok (${ref.app1Counts.size} groups, final counts = reference)` : mismatch(`${label}: ${problems.join("; ")}`);
}

/** App 2: exactly one output per matching line, each the first 3 fields of its line, re-quoted. */
function checkApp2(label: string, run: JobRun, ref: Reference, grepCount: number | undefined): string {
  const problems: string[] = [];
  if (run.done?.tuples_read !== ref.lines) problems.push(`tuples_read ${run.done?.tuples_read}, file has ${ref.lines} lines`);
  if (grepCount !== undefined && grepCount !== ref.app2) problems.push(`grep -c says ${grepCount}, in-script reference ${ref.app2}`);
  if (run.outputs.length !== ref.app2) problems.push(`${run.outputs.length} outputs, reference ${ref.app2} matching lines`);
  const seen = new Set<number>();
  let wrong = 0;
  let firstWrong = "";
  for (const line of run.outputs) {
    const tab = line.indexOf("\t");
    const key = line.slice(0, tab);
    const value = line.slice(tab + 1);
    const n = lineOfOutput(value);
    const input = Number.isInteger(n) && n >= 1 && n <= ref.lines ? genLine(n) : undefined;
    const ok = input !== undefined && input.includes(APP2.pattern) && key === (csvField(input, APP2.col) ?? "") && value === formatCsvRecord(parseCsvLine(input).slice(0, APP2.fields));
    if (!ok) {
      wrong++;
      firstWrong ||= line.slice(0, 120);
    } else seen.add(n);
  }
  if (wrong > 0) problems.push(`${wrong} outputs are not a matching input's first ${APP2.fields} fields (e.g. ${JSON.stringify(firstWrong)})`);
  if (seen.size !== run.outputs.length - wrong) problems.push(`${run.outputs.length - wrong - seen.size} duplicate outputs`);
  return problems.length === 0 ? `ok (${int(ref.app2)} lines, each value checked)` : mismatch(`${label}: ${problems.join("; ")}`);
}

// ---- the benchmark per cluster -------------------------------------------------------------------

interface ThroughputRow {
  cluster: string;
  app: string;
  lines: number;
  outputs: number;
  expected: number;
  check: string;
  durationMs: number;
  wallMs: number;
  tuplesPerS: number;
  pipeline: string;
  pipelineMs: number;
  pipelineCheck: string;
}
interface UploadRow {
  cluster: string;
  what: string;
  bytes: number;
  ms: number;
}
interface LatencyRow {
  cluster: string;
  rate: number;
  lines: number;
  outputs: number;
  expected: number;
  check: string;
  durationMs: number;
  samples: number[];
}
interface DaemonRow {
  cluster: string;
  node: number;
  service: Service;
  idleKb?: number;
  /** Peak per phase, in phase order. */
  peaks: (number | undefined)[];
}
interface JobStats {
  cluster: string;
  job: string;
  durationMs: number;
  /** Operator command of each stage. */
  stageOps: string[];
  ops: OpPeak[];
  /** Exact tuples per task of stage 0 and stage 1 (the same partition function as the workers). */
  shares: [number[], number[]];
  daemonCpu: Map<string, number>;
  clientCpu: number;
}

const PHASES = ["upload", "App 1", "App 2", "latency"] as const;
type Phase = (typeof PHASES)[number];

const throughputRows: ThroughputRow[] = [];
const uploadRows: UploadRow[] = [];
const latencyRows: LatencyRow[] = [];
const daemonRows: DaemonRow[] = [];
const jobStats: JobStats[] = [];
const errors: string[] = [];
let resetRefused = false;

async function upload(hydfs: HydfsTestClient, cluster: string, what: string, name: string, path: string, bytes: number): Promise<void> {
  log(`${cluster}: storing ${what} (${(bytes / 1024 / 1024).toFixed(1)} MiB) in HyDFS as ${name}`);
  const t0 = performance.now();
  const res = await hydfs.write(1, "create", name, Bun.file(path));
  const ms = performance.now() - t0;
  if (res.size !== undefined && res.size !== bytes) throw new Error(`create ${name}: acknowledged ${res.size} bytes, sent ${bytes}`);
  uploadRows.push({ cluster, what, bytes, ms });
  log(`${cluster}: stored ${name} in ${fmtS(ms)} (${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(1)} MiB/s)`);
}

function recordJob(cluster: string, job: string, stageOps: string[], r: JobResult, shares: [number[], number[]]): void {
  const ops = [...r.ops.values()].sort((a, b) => a.stage - b.stage || a.index - b.index || a.pid - b.pid);
  jobStats.push({ cluster, job, durationMs: r.run.done!.duration_ms, stageOps, ops, shares, daemonCpu: r.daemonCpu, clientCpu: r.clientCpu });
}

async function benchCluster(nodes: number, subnet: string, bigPath: string, bigRef: Reference, pipelines: { app1: { ms: number; check: string }; app2: { ms: number; check: string } }): Promise<void> {
  const cluster = `${nodes} nodes`;
  const dir = newTempDir(`bench-rainstorm-${nodes}n-`);
  const c = new LocalCluster({ dir: join(dir, "cluster"), subnet, killOnExit: true, extra: { hydfs: { max_body_bytes: 2 * 1024 * 1024 * 1024 } } });
  const hydfs = new HydfsTestClient(c, `bench-rainstorm-${nodes}`, UPLOAD_TIMEOUT_MS);
  const rs = new RainstormTestClient(c);
  const daemons = new Map<string, DaemonRow>();
  const resetAll = () => {
    for (const k of c.nodeNumbers) for (const s of SERVICES) if (!resetPeak(c.pid(k, s))) resetRefused = true;
  };
  const readPeaks = (phase: Phase) => {
    for (const row of daemons.values()) row.peaks[PHASES.indexOf(phase)] = procStatus(c.pid(row.node, row.service) ?? 0).hwm;
  };
  try {
    log(`${cluster}: starting on ${subnet}.1-${nodes} in ${dir}`);
    await c.up(nodes, 60_000);
    log(`${cluster}: up`);
    for (const k of c.nodeNumbers) {
      for (const s of SERVICES) {
        const row: DaemonRow = { cluster, node: k, service: s, idleKb: procStatus(c.pid(k, s) ?? 0).rss, peaks: [] };
        daemons.set(`${k}/${s}`, row);
        daemonRows.push(row);
      }
    }

    // Input.
    resetAll();
    await upload(hydfs, cluster, `${int(bigRef.lines)}-line input`, "input.csv", bigPath, bigRef.bytes);
    readPeaks("upload");

    // 1. Throughput.
    resetAll();
    log(`${cluster}: App 1 over ${int(bigRef.lines)} lines`);
    const a1 = await runJob(c, rs, `${cluster} App 1`, app1Args("input.csv", "out-app1.txt"), false);
    readPeaks("App 1");
    const a1check = checkApp1(`${cluster} App 1`, a1.run, bigRef);
    log(`${cluster}: App 1 done: ${a1.run.done!.duration_ms} ms, ${int(a1.run.done!.tuples_per_s)} tuples/s; ${a1check}`);
    throughputRows.push({
      cluster,
      app: "App 1 (grep \\| aggregate)",
      lines: a1.run.done!.tuples_read,
      outputs: a1.run.outputs.length,
      expected: bigRef.app1,
      check: a1check,
      durationMs: a1.run.done!.duration_ms,
      wallMs: a1.wallMs,
      tuplesPerS: a1.run.done!.tuples_read / (a1.run.done!.duration_ms / 1000),
      pipeline: `grep -F '${APP1.pattern}' \\| cut -d, -f7 \\| sort \\| uniq -c`,
      pipelineMs: pipelines.app1.ms,
      pipelineCheck: pipelines.app1.check,
    });
    recordJob(cluster, "App 1", [`grep-wrapper ${APP1.pattern} ${APP1.col}`, "aggregate-wrapper"], a1, shares("input.csv", bigRef.lines, bigRef.app1Counts));
    a1.run.outputs.length = 0;
    a1.run.events.length = 0;

    resetAll();
    log(`${cluster}: App 2 over ${int(bigRef.lines)} lines`);
    const a2 = await runJob(c, rs, `${cluster} App 2`, app2Args("input.csv", "out-app2.txt"), false);
    readPeaks("App 2");
    const a2check = checkApp2(`${cluster} App 2`, a2.run, bigRef, grepCount);
    const app2Rate = a2.run.done!.tuples_read / (a2.run.done!.duration_ms / 1000);
    log(`${cluster}: App 2 done: ${a2.run.done!.duration_ms} ms, ${int(app2Rate)} tuples/s; ${a2check}`);
    throughputRows.push({
      cluster,
      app: "App 2 (grep \\| transform)",
      lines: a2.run.done!.tuples_read,
      outputs: a2.run.outputs.length,
      expected: bigRef.app2,
      check: a2check,
      durationMs: a2.run.done!.duration_ms,
      wallMs: a2.wallMs,
      tuplesPerS: app2Rate,
      pipeline: `grep -F '${APP2.pattern}' \\| cut -d, -f1-3 \\| wc -l`,
      pipelineMs: pipelines.app2.ms,
      pipelineCheck: pipelines.app2.check,
    });
    recordJob(cluster, "App 2", [`grep-wrapper '${APP2.pattern}' ${APP2.col}`, `transform-wrapper ${APP2.fields}`], a2, shares("input.csv", bigRef.lines, bigRef.app2Keys));
    a2.run.outputs.length = 0;
    a2.run.events.length = 0;

    // 2. Latency at half the App 2 rate, over a prefix sized to last LATENCY_SECONDS.
    const rate = Math.max(1, Math.floor(app2Rate / 2));
    const latLines = Math.min(LINES, Math.max(2000, Math.round(rate * LATENCY_SECONDS)));
    const latPath = join(dir, `latency-${latLines}.csv`);
    const latRef = writeInput(latPath, latLines);
    await upload(hydfs, cluster, `${int(latLines)}-line latency input`, "latency.csv", latPath, latRef.bytes);
    rmSync(latPath, { force: true });
    resetAll();
    log(`${cluster}: App 2 at input_rate ${rate} over ${int(latLines)} lines (expected ${fmtS((latLines / rate) * 1000)})`);
    const lat = await runJob(c, rs, `${cluster} App 2 latency`, app2Args("latency.csv", "out-latency.txt", rate), true);
    readPeaks("latency");
    const latCheck = checkApp2(`${cluster} App 2 at input_rate ${rate}`, lat.run, latRef, undefined);
    const samples: number[] = [];
    for (const { t, lines } of lat.arrivals) {
      for (const line of lines) {
        const n = lineOfOutput(line.slice(line.indexOf("\t") + 1));
        if (Number.isInteger(n) && n >= 1) samples.push(t - (lat.acceptedAt! + (n / rate) * 1000));
      }
    }
    latencyRows.push({ cluster, rate, lines: latLines, outputs: lat.run.outputs.length, expected: latRef.app2, check: latCheck, durationMs: lat.run.done!.duration_ms, samples });
    log(`${cluster}: latency run done in ${lat.run.done!.duration_ms} ms: p50 ${fmtMs(percentile(samples, 50))}, p99 ${fmtMs(percentile(samples, 99))}; ${latCheck}`);
    recordJob(cluster, "App 2 latency", [`grep-wrapper '${APP2.pattern}' ${APP2.col}`, `transform-wrapper ${APP2.fields}`], lat, shares("latency.csv", latRef.lines, latRef.app2Keys));
  } catch (err) {
    const msg = `${cluster}: ${(err as Error).message}`;
    errors.push(msg);
    log(`ERROR ${msg}`);
  } finally {
    log(`${cluster}: tearing down`);
    await c.down(true);
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}


// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadStart = loadavg();
  const daemonsUsed = await ensureBuilt();
  log(`daemons: ${daemonsUsed}`);

  const scratch = newTempDir("bench-rainstorm-input-");
  const bigPath = join(scratch, "input.csv");
  log(`generating ${int(LINES)} lines into ${bigPath}`);
  const t0 = performance.now();
  const bigRef = writeInput(bigPath, LINES);
  log(`generated ${(bigRef.bytes / 1024 / 1024).toFixed(1)} MiB in ${fmtS(performance.now() - t0)}: ${int(bigRef.app1)} lines contain ${APP1.pattern} (${bigRef.app1Counts.size} groups), ${int(bigRef.app2)} contain '${APP2.pattern}'`);

  // Unix pipeline baselines, on the same file (warm page cache, like HyDFS's chunks), median of 3.
  const file = shq(bigPath);
  grepCount = Number((await timeShell(`grep -F -c ${shq(APP2.pattern)} ${file}`, 120_000)).out.trim());
  const pipe1: number[] = [];
  const pipe2: number[] = [];
  let pipe1Check = "";
  let pipe2Check = "";
  for (let rep = 0; rep < PIPELINE_REPS; rep++) {
    const p1 = await timeShell(`grep -F ${shq(APP1.pattern)} ${file} | cut -d, -f7 | sort | uniq -c`, 300_000);
    pipe1.push(p1.ms);
    const groups = p1.out.trim().split("\n").filter(Boolean);
    const total = groups.reduce((s, g) => s + Number(g.trim().split(/\s+/)[0]), 0);
    pipe1Check = total === bigRef.app1 ? `counts sum to ${int(total)} = reference; ${groups.length} groups (cut's field 7 is not CSV-aware)` : mismatch(`pipeline App 1: counts sum to ${total}, reference ${bigRef.app1}`);
    const p2 = await timeShell(`grep -F ${shq(APP2.pattern)} ${file} | cut -d, -f1-3 | wc -l`, 300_000);
    pipe2.push(p2.ms);
    const n = Number(p2.out.trim());
    pipe2Check = n === bigRef.app2 ? `${int(n)} lines = reference` : mismatch(`pipeline App 2: ${n} lines, reference ${bigRef.app2}`);
  }
  const pipelines = {
    app1: { ms: percentile(pipe1, 50)!, check: pipe1Check },
    app2: { ms: percentile(pipe2, 50)!, check: pipe2Check },
  };
  log(`pipelines: App 1 ${fmtMs(pipelines.app1.ms)} (${pipe1.map((m) => m.toFixed(0)).join(", ")}), App 2 ${fmtMs(pipelines.app2.ms)} (${pipe2.map((m) => m.toFixed(0)).join(", ")}); grep -c ${grepCount}`);

  for (const { nodes, subnet } of CLUSTERS) await benchCluster(nodes, subnet, bigPath, bigRef, pipelines);
  rmSync(bigPath, { force: true });

  // ---- report ----
  const loadEnd = loadavg();
  const out: string[] = [];
  out.push(`# RainStorm benchmark${QUICK ? " (--quick)" : ""}`);
  out.push("");
  out.push(
    `${startedAt.toISOString()}, nproc ${availableParallelism()}, load average ${loadStart.map((l) => l.toFixed(2)).join(" ")} at start (${loadEnd.map((l) => l.toFixed(2)).join(" ")} at end), ` +
      `one run, same machine; Bun ${Bun.version}; daemons and operators: ${daemonsUsed}; total ${fmtS(performance.now() - START)}.`,
  );
  out.push("");
  out.push(
    `Input: ${int(bigRef.lines)} lines (${(bigRef.bytes / 1024 / 1024).toFixed(1)} MiB): the header of testdata/dataset1.csv, then its ${ROW_TAILS.length} rows cycled, ` +
      `each with Sign Asset ID := its line number. ${int(bigRef.app1)} lines contain \`${APP1.pattern}\` (App 1), ${int(bigRef.app2)} contain \`${APP2.pattern}\` (App 2). ` +
      `Clusters: ${CLUSTERS.map((x) => `${x.nodes} nodes on ${x.subnet}.k`).join(", ")}; memberd + hydfsd + rainstormd per node, default config (batch_size 256, window 8), ${TASKS} tasks per stage, exactly_once=false, input_rate 0.`,
  );
  out.push("");
  out.push("## 1. End-to-end throughput (input_rate 0)");
  out.push("");
  out.push(
    mdTable(
      ["cluster", "job", "lines in", "outputs", "check", "job duration", "wall (submit to done)", "tuples/s", "Unix pipeline (same file)", "pipeline time", "pipeline lines/s", "ours / pipeline"],
      throughputRows.map((r) => {
        const pipeRate = r.lines / (r.pipelineMs / 1000);
        return [r.cluster, r.app, int(r.lines), int(r.outputs), r.check, fmtS(r.durationMs), fmtS(r.wallMs), `**${int(r.tuplesPerS)}**`, `\`${r.pipeline}\` (${r.pipelineCheck})`, fmtS(r.pipelineMs), int(pipeRate), `${(r.tuplesPerS / pipeRate).toFixed(3)}x (pipeline ${(pipeRate / r.tuplesPerS).toFixed(0)}x faster)`];
      }),
    ),
  );
  out.push("");
  const target = throughputRows.find((r) => r.cluster === "5 nodes" && r.app.startsWith("App 2"));
  out.push(
    target
      ? `Target: App 2 on the 5-node cluster >= ${int(TARGET_TUPLES_PER_S)} tuples/s: **${target.tuplesPerS >= TARGET_TUPLES_PER_S ? "PASS" : "FAIL"}** (${int(target.tuplesPerS)} tuples/s, ${((100 * target.tuplesPerS) / TARGET_TUPLES_PER_S).toFixed(0)}% of the target).`
      : `Target: App 2 on the 5-node cluster >= ${int(TARGET_TUPLES_PER_S)} tuples/s: **not measured**${QUICK ? " (--quick runs the 3-node cluster only)" : " (the 5-node run failed; see errors)"}.`,
  );
  out.push("");
  out.push(
    "tuples/s = lines read by the source / the job's duration_ms (from submission, including task start-up and the creation of dest, to the last result appended to dest). " +
      "Pipeline lines/s = lines of the file / the pipeline's wall time (median of 3, LC_ALL=C, page cache warm). `cut` is not CSV-aware: the quoted Sign Asset ID and Asset Location ID " +
      "hold commas, so `cut -f7` is not Asset Category and `cut -f1-3` splits quoted fields; the pipeline is a throughput baseline for the same amount of work, not an identical result " +
      "(its line counts are checked). App 1 outputs one updated count per matching line (the aggregate emits every change), so its output count equals the matching lines.",
  );
  out.push("");
  out.push("HyDFS create of the inputs (through node 1, streamed from the local file):");
  out.push("");
  out.push(mdTable(["cluster", "file", "size", "time", "MiB/s"], uploadRows.map((u) => [u.cluster, u.what, `${(u.bytes / 1024 / 1024).toFixed(1)} MiB`, fmtS(u.ms), (u.bytes / 1024 / 1024 / (u.ms / 1000)).toFixed(1)])));
  out.push("");
  out.push("## 2. Source-to-sink latency of App 2 at half its maximum rate");
  out.push("");
  out.push(
    mdTable(
      ["cluster", "input_rate (tuples/s)", "lines", "outputs", "check", "job duration (paced: lines/rate)", "min", "p50", "p90", "p99", "max", "p50 / p99 upper bound (- min)"],
      latencyRows.map((r) => {
        const min = r.samples.reduce((a, b) => Math.min(a, b), Infinity);
        const p50 = percentile(r.samples, 50);
        const p99 = percentile(r.samples, 99);
        return [
          r.cluster,
          int(r.rate),
          int(r.lines),
          int(r.outputs),
          r.check,
          `${fmtS(r.durationMs)} (${fmtS((r.lines / r.rate) * 1000)})`,
          fmtMs(min),
          `**${fmtMs(p50)}**`,
          fmtMs(percentile(r.samples, 90)),
          `**${fmtMs(p99)}**`,
          fmtMs(percentile(r.samples, 100)),
          min < 0 && p50 !== undefined && p99 !== undefined ? `${fmtMs(p50 - min)} / ${fmtMs(p99 - min)}` : "(min >= 0: as measured)",
        ];
      }),
    ),
  );
  out.push("");
  out.push(
    "Method: input_rate = half the App 2 tuples/s measured above on the same cluster; the file is the first rate x " +
      `${LATENCY_SECONDS} s lines of the same generated input. The source paces line n to t0 + n/rate (leader.ts runSource; it flushes its partial batches whenever it is more than 5 ms ahead), ` +
      "and events carry no timestamps, so t0 is approximated by the moment the job's `accepted` event reaches the submitter (the leader starts the source right after sending it: ~1 ms early). " +
      "Each output's line number n is its Sign Asset ID (generated = line number; transform keeps the first 3 fields), and latency = arrival of its `output` event at the submitter - (accepted + n/rate). " +
      "So it covers source batching, both stages, the sink's HyDFS append to dest (the sink streams a batch to the submitter before appending it) and the event stream; " +
      "a source that falls behind its schedule shows up as latency too. Percentiles are nearest-rank over every output line. " +
      "Both errors of the method make the figures too low: the source sends each line 0-5 ms before its scheduled time (it sends a burst once it is 5 ms ahead, then sleeps), " +
      "and `accepted` reaches the submitter a little after the real t0. A negative minimum measures that bias; the last column subtracts it (assumes the fastest line took 0 ms), " +
      "so the true p50/p99 lie between the bold figures and that column.",
  );
  out.push("");
  out.push("## 3. Peak RSS");
  out.push("");
  out.push(`Daemons: VmRSS when idle (after the cluster is up), then VmHWM per phase (MiB), reset through /proc/<pid>/clear_refs before each phase${resetRefused ? " (**the kernel refused some resets: those peaks include earlier phases**)" : ""}.`);
  out.push("");
  out.push(
    mdTable(
      ["cluster", "node", "daemon", "idle RSS", ...PHASES.map((p) => (p === "upload" ? "peak: input upload" : p === "latency" ? "peak: latency run" : `peak: ${p}`))],
      daemonRows.map((r) => [r.cluster, String(r.node), r.service, fmtMB(r.idleKb), ...PHASES.map((_, i) => fmtMB(r.peaks[i]))]),
    ),
  );
  out.push("");
  out.push(
    `Operator processes (one per task): VmHWM (MiB) polled every ${SAMPLE_MS} ms and at the done event, max VmRSS seen, CPU seconds used by the done event. ` +
      "Tuples in = the task's exact share (the workers' partition function applied to the keys: stage 0 is keyed by `src:line`, stage 1 by the grep key). " +
      "Mean batch = tuples / input batches from the worker's task list at its last poll (about 1 s before the end).",
  );
  out.push("");
  out.push(
    mdTable(
      ["cluster", "job", "stage: operator", "task", "node", "pid", "tuples in", "mean batch", "CPU s", "peak RSS (VmHWM)", "max VmRSS"],
      jobStats.flatMap((j) =>
        j.ops.map((p) => [
          j.cluster,
          j.job,
          `${p.stage}: \`${j.stageOps[p.stage]}\``,
          String(p.index),
          p.node.split(".").pop()!,
          String(p.pid),
          int(j.shares[p.stage]?.[p.index]),
          p.inputs && p.batches ? (p.inputs / p.batches).toFixed(1) : "n/a",
          p.cpu.toFixed(2),
          fmtMB(p.hwm),
          fmtMB(p.rss),
        ]),
      ),
    ),
  );
  out.push("");
  out.push("## 4. Where the CPU time goes");
  out.push("");
  out.push(
    `CPU seconds (user + system, from /proc/<pid>/stat) each group of processes used from submission to the done event. The machine has ${availableParallelism()} CPUs, so ` +
      "utilization = total / (duration x CPUs). Node 1's rainstormd is the leader: it reads the source from HyDFS, partitions and sends it, receives every result (sink), " +
      "streams it to the submitter and appends it to dest; it is also node 1's worker.",
  );
  out.push("");
  const sumCpu = (j: JobStats, pred: (node: number, svc: string) => boolean) => [...j.daemonCpu].filter(([k]) => pred(Number(k.split("/")[0]), k.split("/")[1]!)).reduce((a, [, v]) => a + v, 0);
  out.push(
    mdTable(
      ["cluster", "job", "duration", "rainstormd node 1 (leader)", "rainstormd others", "hydfsd node 1", "hydfsd others", "memberd (all)", "operators stage 0", "operators stage 1", "submitter (this script)", "total", "utilization"],
      jobStats.map((j) => {
        const parts = [
          sumCpu(j, (n, s) => n === 1 && s === "rainstormd"),
          sumCpu(j, (n, s) => n !== 1 && s === "rainstormd"),
          sumCpu(j, (n, s) => n === 1 && s === "hydfsd"),
          sumCpu(j, (n, s) => n !== 1 && s === "hydfsd"),
          sumCpu(j, (_, s) => s === "memberd"),
          j.ops.filter((o) => o.stage === 0).reduce((a, o) => a + o.cpu, 0),
          j.ops.filter((o) => o.stage === 1).reduce((a, o) => a + o.cpu, 0),
          j.clientCpu,
        ];
        const total = parts.reduce((a, b) => a + b, 0);
        return [j.cluster, j.job, fmtS(j.durationMs), ...parts.map((x) => x.toFixed(2)), total.toFixed(2), `${((100 * total) / ((j.durationMs / 1000) * availableParallelism())).toFixed(0)}%`];
      }),
    ),
  );
  out.push("");
  if (mismatches.length > 0 || errors.length > 0) {
    out.push("## Problems");
    out.push("");
    for (const m of mismatches) out.push(`- **MISMATCH**: ${m}`);
    for (const e of errors) out.push(`- **ERROR**: ${e}`);
    out.push("");
  }
  process.stdout.write(`${out.join("\n")}\n`);
  if (mismatches.length > 0) log(`!!!!!!!! ${mismatches.length} MISMATCH(ES): ${mismatches.join(" | ")}`);
  if (errors.length > 0) log(`${errors.length} error(s): ${errors.join(" | ")}`);
  log(`done in ${fmtS(performance.now() - START)}`);
  return mismatches.length > 0 || errors.length > 0 ? 1 : 0;
}

main()
  .then((code) => {
    clearTimeout(watchdog);
    removeTempDirs();
    process.exit(code);
  })
  .catch((err) => {
    log(`fatal: ${(err as Error).stack ?? err}`);
    removeTempDirs();
    process.exit(1);
  });
