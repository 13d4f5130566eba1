#!/usr/bin/env bun
/**
 * Membership benchmark: failure-detection time, false failures and bandwidth for the four modes
 * (pingack/gossip x suspicion on/off), with default knobs otherwise.
 *
 *   bun scripts/bench/membership.ts [--quick] [--mode pingack+suspicion] [--sim-only] [--real-only] [--real-n 20]
 *
 * 1. Real processes (LocalCluster, 10 nodes on 127.0.30.k and 20 on 127.0.31.k): SIGKILL a random
 *    non-introducer, poll every survivor's /list_mem every ~20 ms, time kill -> failed/removed at
 *    the first and at all survivors; restart it and wait until all agree again. Bytes/s per node
 *    from /metrics over a quiet window.
 * 2. Simulator (services/testing/sim.ts): false failures per node-hour against drop_rate_recv (10
 *    nodes), crash detection at 200 nodes, simulated bytes/s per node at 10 and 200 nodes.
 * 3. hashicorp/memberlist LAN defaults from its published formulas (not measured).
 *
 * Progress goes to stderr; the Markdown report goes to stdout. `--quick` runs 3 trials and 5x
 * shorter simulations, for a smoke test.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { memberlistSuspicionTimeoutMs } from "../../services/member/suspicion.ts";
import type { Knobs } from "../../services/member/cluster_config.ts";
import { randomInt, type Rng, seededRng } from "../../services/shared/rng.ts";
import { LocalCluster } from "../../services/testing/cluster.ts";
import { Sim, type SimNode } from "../../services/testing/sim.ts";
import { fmtRate, fmtSec, mdTable, percentile } from "./stats.ts";

const QUICK = process.argv.includes("--quick");
/** Value of `--name value`, or undefined. */
function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
/** --mode: only this mode (e.g. pingack+suspicion); --sim-only / --real-only: one part; --real-n: only that cluster size. */
const ONLY_MODE = argValue("--mode");
const SIM_ONLY = process.argv.includes("--sim-only");
const REAL_ONLY = process.argv.includes("--real-only");
const REAL_N = argValue("--real-n") === undefined ? undefined : Number(argValue("--real-n"));
const TRIALS = QUICK ? 3 : 10;
/** Sim durations are divided by this in --quick. */
const SIM_SCALE = QUICK ? 5 : 1;
const REAL_BW_WINDOW_MS = QUICK ? 2_000 : 10_000;
/**
 * Settle time after `up` before the bandwidth window: news of the joins is still piggybacked for
 * tens of seconds (measured: ~2.1 KB/s per node in the first 10 s at 10 nodes, ~1.05 KB/s after 20 s).
 */
const REAL_BW_SETTLE_MS = QUICK ? 5_000 : 20_000;
const FALSE_FAIL_SIM_MS = (20 * 60_000) / SIM_SCALE;
const SIM200_BW_WINDOW_MS = 10_000 / SIM_SCALE;
const DROP_RATES = [0, 0.05, 0.1, 0.2, 0.3];
const POLL_MS = 20;
/** Per-trial deadline for every survivor to notice the crash. */
const DETECT_DEADLINE_MS = 20_000;
const REPO_PREFIX = `${join(import.meta.dir, "../..")}/`;
const SEED = Number(process.env.BENCH_SEED ?? 20261124);

interface Mode {
  name: string;
  knobs: Pick<Knobs, "protocol" | "suspicion">;
}
const ALL_MODES: Mode[] = [
  { name: "pingack+suspicion", knobs: { protocol: "pingack", suspicion: true } },
  { name: "pingack", knobs: { protocol: "pingack", suspicion: false } },
  { name: "gossip+suspicion", knobs: { protocol: "gossip", suspicion: true } },
  { name: "gossip", knobs: { protocol: "gossip", suspicion: false } },
];
const MODES = ALL_MODES.filter((m) => ONLY_MODE === undefined || m.name === ONLY_MODE);
if (MODES.length === 0) throw new Error(`--mode ${ONLY_MODE}: expected one of ${ALL_MODES.map((m) => m.name).join(", ")}`);
/** Longest wait for every broadcast queue to empty before the 200-node bandwidth window. */
const SIM200_DRAIN_LIMIT_MS = 120_000;

function log(msg: string): void {
  const t = ((performance.now() - START) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${t}s] ${msg}\n`);
}
const START = performance.now();

// Clean up on Ctrl-C / SIGTERM: exiting runs LocalCluster's killOnExit handlers (SIGKILL daemons).
const tempDirs = new Set<string>();
process.on("exit", () => {
  for (const d of tempDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

// ---- detection samples -------------------------------------------------------------------------

interface Detection {
  firstMs: number[];
  allMs: number[];
  /** Trials where some survivor never noticed within the deadline. */
  misses: number;
  errors: string[];
}
const newDetection = (): Detection => ({ firstMs: [], allMs: [], misses: 0, errors: [] });

// ---- 1. real processes -------------------------------------------------------------------------

interface RealResult {
  mode: string;
  n: number;
  det: Detection;
  bytesPerSecPerNode?: number;
  trialsRun: number;
}

/** Sum of memberd_bytes_in_total + memberd_bytes_out_total over all message types at node k. */
async function bytesCounter(c: LocalCluster, k: number): Promise<number> {
  const res = await c.http.fetch(c.httpUrl(k, "/metrics"), { timeoutMs: 2000 });
  const text = await res.text();
  let sum = 0;
  for (const m of text.matchAll(/^memberd_bytes_(?:in|out)_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$/gm)) sum += Number(m[1]);
  return sum;
}

async function allBytes(c: LocalCluster, nodes: number[]): Promise<{ total: number; atMs: number }> {
  const t0 = performance.now();
  const values = await Promise.all(nodes.map((k) => bytesCounter(c, k)));
  return { total: values.reduce((a, b) => a + b, 0), atMs: (t0 + performance.now()) / 2 };
}

/**
 * Poll node j until it lists `victimId` as failed/left or no longer lists it. Returns ms since
 * `t0` (undefined at the deadline) and when j was first seen listing it as suspect (diagnostics).
 */
async function pollUntilGone(c: LocalCluster, j: number, victimId: string, t0: number): Promise<{ goneMs?: number; suspectMs?: number }> {
  const deadline = t0 + DETECT_DEADLINE_MS;
  let suspectMs: number | undefined;
  while (performance.now() < deadline) {
    try {
      const members = await c.members(j);
      const e = members.find((m) => m.id === victimId);
      if (e?.state === "suspect" && suspectMs === undefined) suspectMs = performance.now() - t0;
      if (!e || e.state === "failed" || e.state === "left") return { goneMs: performance.now() - t0, suspectMs };
    } catch {
      // node busy or a request timed out: retry until the deadline
    }
    await Bun.sleep(POLL_MS);
  }
  return { suspectMs };
}

let memberdCommand = "";

async function realRun(mode: Mode, n: number, subnet: string, rng: Rng): Promise<RealResult> {
  const tag = `[real ${mode.name} n=${n}]`;
  const result: RealResult = { mode: mode.name, n, det: newDetection(), trialsRun: 0 };
  const dir = mkdtempSync(join(tmpdir(), `bench-membership-${n}-`));
  tempDirs.add(dir);
  const c = new LocalCluster({ dir, subnet, killOnExit: true, knobs: { ...mode.knobs, t_cleanup_ms: 2000 } });
  try {
    memberdCommand = c.command("memberd").join(" ");
    log(`${tag} starting ${n} nodes (${memberdCommand})`);
    await c.up(n, 60_000);
    const nodes = c.nodeNumbers;
    log(`${tag} settling ${REAL_BW_SETTLE_MS / 1000} s, then a quiet bandwidth window of ${REAL_BW_WINDOW_MS / 1000} s`);
    await Bun.sleep(REAL_BW_SETTLE_MS);
    const b0 = await allBytes(c, nodes);
    await Bun.sleep(REAL_BW_WINDOW_MS);
    const b1 = await allBytes(c, nodes);
    result.bytesPerSecPerNode = (b1.total - b0.total) / nodes.length / ((b1.atMs - b0.atMs) / 1000);
    log(`${tag} bytes/s per node (in+out): ${result.bytesPerSecPerNode.toFixed(0)}`);

    for (let i = 1; i <= TRIALS; i++) {
      await Bun.sleep(500 + randomInt(rng, 500)); // random phase against the protocol period
      const k = 2 + randomInt(rng, n - 1);
      const self = (await c.get(k, "/list_self")) as { id: string };
      const victimId = self.id;
      c.kill(k);
      const t0 = performance.now();
      const survivors = nodes.filter((j) => j !== k);
      const polls = await Promise.all(survivors.map((j) => pollUntilGone(c, j, victimId, t0)));
      result.trialsRun++;
      const seen = polls.map((p) => p.goneMs).filter((t): t is number => t !== undefined);
      const suspects = polls.map((p) => p.suspectMs).filter((t): t is number => t !== undefined);
      const firstSuspect = suspects.length > 0 ? Math.min(...suspects) : undefined;
      const first = seen.length > 0 ? Math.min(...seen) : undefined;
      const all = seen.length === survivors.length ? Math.max(...seen) : undefined;
      if (first !== undefined) result.det.firstMs.push(first);
      if (all !== undefined) result.det.allMs.push(all);
      else result.det.misses++;
      log(
        `${tag} trial ${i}/${TRIALS}: killed node ${k}; first ${fmtSec(first)}, all ${all === undefined ? `MISSED (${seen.length}/${survivors.length} noticed)` : fmtSec(all)}` +
          (mode.knobs.suspicion ? ` (first seen suspect ${fmtSec(firstSuspect)})` : ""),
      );
      await c.restart(k);
      try {
        await c.waitAllAlive(nodes, 30_000);
      } catch (err) {
        // One more chance (e.g. a slow rejoin), then give up on this configuration.
        log(`${tag} cluster did not reconverge: ${(err as Error).message}; retrying once`);
        await c.waitAllAlive(nodes, 30_000);
      }
    }
  } catch (err) {
    const msg = (err as Error).message;
    result.det.errors.push(msg);
    log(`${tag} ERROR: ${msg}`);
  } finally {
    await c.down(true);
    tempDirs.delete(dir);
  }
  return result;
}

// ---- 2. simulator ------------------------------------------------------------------------------

function resetBytes(sim: Sim): void {
  for (const sn of sim.nodes) {
    sn.bytesIn = 0;
    sn.bytesOut = 0;
  }
}
function simBytesPerNodePerSec(sim: Sim, windowMs: number): number {
  const live = sim.live();
  const total = live.reduce((a, sn) => a + sn.bytesIn + sn.bytesOut, 0);
  return total / live.length / (windowMs / 1000);
}

interface FalseFailResult {
  /** Distinct members declared failed (none crashed), per drop rate. */
  members: number;
  /** 'failed' events about them, summed over all observers. */
  events: number;
  nodeHours: number;
  converged: boolean;
  bytesPerSecPerNode?: number;
}

function simFalseFailures(mode: Mode, drop: number, seed: number): FalseFailResult {
  const countBytes = drop === 0;
  const sim = new Sim({ seed, knobs: { ...mode.knobs, drop_rate_recv: drop }, countBytes });
  sim.addNodes(10);
  const converged = sim.runUntil(() => sim.converged(), 60_000) >= 0;
  for (const sn of sim.nodes) sn.events.length = 0;
  resetBytes(sim);
  sim.run(FALSE_FAIL_SIM_MS);
  const failedIds = new Set<string>();
  let events = 0;
  for (const sn of sim.nodes) {
    for (const e of sn.events) {
      if (e.kind === "failed") {
        failedIds.add(e.id);
        events++;
      }
    }
  }
  const nodeHours = (sim.nodes.length * FALSE_FAIL_SIM_MS) / 3_600_000;
  return {
    members: failedIds.size,
    events,
    nodeHours,
    converged,
    bytesPerSecPerNode: countBytes ? simBytesPerNodePerSec(sim, FALSE_FAIL_SIM_MS) : undefined,
  };
}

interface Sim200Result {
  det: Detection;
  convergeMs: number;
  /** From convergence until every broadcast queue was empty (-1: not within SIM200_DRAIN_LIMIT_MS; NaN: gossip, which does not use it). */
  drainMs: number;
  bytesPerSecPerNode?: number;
}

function gone(sn: SimNode, victimId: string): boolean {
  const e = sn.node.core.get(victimId);
  return !e || e.state === "failed" || e.state === "left";
}

function sim200(mode: Mode, seed: number, rng: Rng): Sim200Result {
  const tag = `[sim ${mode.name} n=200]`;
  const det = newDetection();
  const sim = new Sim({ seed, knobs: { ...mode.knobs, t_cleanup_ms: 2000 }, countBytes: true });
  sim.addNodes(200);
  const convergeMs = sim.runUntil(() => sim.converged(), 180_000);
  if (convergeMs < 0) {
    det.errors.push(`200 nodes did not converge within 180 simulated s (${sim.describe()})`);
    log(`${tag} did not converge`);
    return { det, convergeMs, drainMs: -1 };
  }
  log(`${tag} converged after ${fmtSec(convergeMs)} simulated`);
  // The bandwidth of a quiet cluster: after the news of the 200 joins has been piggybacked.
  // (gossip sends whole tables and piggybacks nothing: its queue is not used, so not waited for.)
  const drainMs =
    mode.knobs.protocol === "pingack" ? sim.runUntil(() => sim.live().every((sn) => sn.node.core.queuedUpdates === 0), SIM200_DRAIN_LIMIT_MS) : Number.NaN;
  log(`${tag} broadcast queues empty ${Number.isNaN(drainMs) ? "(not used by gossip)" : drainMs < 0 ? "NEVER" : `${fmtSec(drainMs)}`} after convergence`);
  resetBytes(sim);
  sim.run(SIM200_BW_WINDOW_MS);
  const bytesPerSecPerNode = simBytesPerNodePerSec(sim, SIM200_BW_WINDOW_MS);
  for (let i = 1; i <= TRIALS; i++) {
    sim.run(500 + randomInt(rng, 1000));
    const candidates = sim.live().filter((sn) => sn.index !== 1);
    const victim = candidates[randomInt(rng, candidates.length)]!;
    const victimId = victim.node.id;
    sim.crash(victim.index);
    let first: number | undefined;
    const start = sim.nowMs;
    const all = sim.runUntil(() => {
      const live = sim.live();
      const noticed = live.filter((sn) => gone(sn, victimId)).length;
      if (noticed > 0 && first === undefined) first = sim.nowMs - start;
      return noticed === live.length;
    }, DETECT_DEADLINE_MS);
    if (first !== undefined) det.firstMs.push(first);
    if (all >= 0) det.allMs.push(all);
    else det.misses++;
    log(`${tag} trial ${i}/${TRIALS}: crashed node ${victim.index}; first ${fmtSec(first)}, all ${all < 0 ? "MISSED" : fmtSec(all)}`);
  }
  return { det, convergeMs, drainMs, bytesPerSecPerNode };
}

// ---- 3. memberlist formulas --------------------------------------------------------------------

/** hashicorp/memberlist DefaultLANConfig. */
const ML = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  pushPullIntervalMs: 30_000,
};

/** memberlist's pushPullScale: the interval grows past 32 nodes. */
function pushPullIntervalMs(n: number): number {
  if (n <= 32) return ML.pushPullIntervalMs;
  return (Math.ceil(Math.log2(n) - Math.log2(32)) + 1) * ML.pushPullIntervalMs;
}

function memberlistRow(n: number): string[] {
  // SWIM: the expected time until some member's probe of a crashed node fails is e/(e-1) protocol
  // periods (the probe, its 500 ms timeout and the indirect checks all end within the period).
  const toSuspectMs = (Math.E / (Math.E - 1)) * ML.probeIntervalMs;
  const minTimeout = memberlistSuspicionTimeoutMs(n, ML.probeIntervalMs, ML.suspicionMult);
  const maxTimeout = ML.suspicionMaxTimeoutMult * minTimeout;
  // The dead message then spreads by gossip: fanout 3 every 200 ms, ~log4(N) rounds.
  const spreadMs = Math.ceil(Math.log(n) / Math.log(ML.gossipNodes + 1)) * ML.gossipIntervalMs;
  // Quiet bandwidth (rough): 1 ping + 1 ack sent and received per node per second (assumed ~70 B
  // and ~15 B payloads), plus push-pull of the full state (~60 B per member each way), one
  // initiated and one answered per node per push-pull interval.
  const probeBps = 2 * (70 + 15);
  const pushPullBps = (2 * 2 * n * 60) / (pushPullIntervalMs(n) / 1000);
  return [
    String(n),
    fmtSec(minTimeout),
    fmtSec(maxTimeout),
    fmtSec(toSuspectMs + minTimeout),
    fmtSec(toSuspectMs + maxTimeout),
    fmtSec(toSuspectMs + minTimeout + spreadMs),
    `~${fmtRate(probeBps + pushPullBps)}`,
  ];
}

// ---- report ------------------------------------------------------------------------------------

function detCells(d: Detection): string[] {
  return [
    fmtSec(percentile(d.firstMs, 50)),
    fmtSec(percentile(d.firstMs, 99)),
    fmtSec(percentile(d.allMs, 50)),
    fmtSec(percentile(d.allMs, 99)),
    String(d.misses) + (d.errors.length > 0 ? ` (error: ${d.errors.join("; ").replace(/\|/g, "/").slice(0, 160)})` : ""),
  ];
}

async function main(): Promise<void> {
  const rng = seededRng(SEED);
  log(`membership bench${QUICK ? " (--quick)" : ""}: ${TRIALS} trials, false-failure sims of ${FALSE_FAIL_SIM_MS / 60_000} simulated min`);
  const real = SIM_ONLY ? [] : await realRuns(rng);
  const falseFail = REAL_ONLY ? new Map<string, FalseFailResult[]>() : falseFailureSims();
  const big = REAL_ONLY ? new Map<string, Sim200Result>() : sim200Runs(rng, ALL_MODES.length * DROP_RATES.length);
  const totalS = (performance.now() - START) / 1000;
  const out = [
    ...headerLines(totalS),
    ...(SIM_ONLY ? [] : realSection(real)),
    ...(REAL_ONLY ? [] : falseFailSection(falseFail)),
    ...(REAL_ONLY ? [] : sim200Section(big, falseFail)),
    ...memberlistSection(),
    ...targetsSection(real, falseFail, big),
  ];
  process.stdout.write(out.join("\n"));
  log(`done in ${totalS.toFixed(0)} s`);
}

/** 1. Real processes: every mode at 10 nodes, then at 20. */
async function realRuns(rng: Rng): Promise<RealResult[]> {
  const real: RealResult[] = [];
  for (const [n, subnet] of [
    [10, "127.0.30"],
    [20, "127.0.31"],
  ] as const) {
    if (REAL_N !== undefined && n !== REAL_N) continue;
    for (const mode of MODES) real.push(await realRun(mode, n, subnet, rng));
  }
  return real;
}

/** 2a. False failures by drop rate, per mode; seeds SEED+1, SEED+2, ... in mode, then drop-rate order. */
function falseFailureSims(): Map<string, FalseFailResult[]> {
  const falseFail = new Map<string, FalseFailResult[]>();
  for (const mode of MODES) {
    const rows: FalseFailResult[] = [];
    for (const drop of DROP_RATES) {
      const t = performance.now();
      // Seeds by position among all modes, so --mode gives the same seeds as a full run.
      const r = simFalseFailures(mode, drop, SEED + ALL_MODES.indexOf(mode) * DROP_RATES.length + DROP_RATES.indexOf(drop) + 1);
      rows.push(r);
      log(
        `[sim ${mode.name} n=10 drop=${drop}] ${r.members} members falsely failed (${r.events} events) in ${r.nodeHours.toFixed(2)} node-h` +
          `${r.converged ? "" : " (never converged at start)"}; ${((performance.now() - t) / 1000).toFixed(1)} s wall`,
      );
    }
    falseFail.set(mode.name, rows);
  }
  return falseFail;
}

/** 2b. 200-node crash detection and bandwidth, per mode; seeds continue after the `seedsUsed` of falseFailureSims. */
function sim200Runs(rng: Rng, seedsUsed: number): Map<string, Sim200Result> {
  const big = new Map<string, Sim200Result>();
  for (const mode of MODES) big.set(mode.name, sim200(mode, SEED + 1000 + seedsUsed + ALL_MODES.indexOf(mode) + 1, rng));
  return big;
}

// ---- print -------------------------------------------------------------------------------------

function headerLines(totalS: number): string[] {
  return [
    `# Membership benchmark${QUICK ? " (--quick smoke run)" : ""}`,
    "",
    `${new Date().toISOString()} on ${hostname()}: nproc=${navigator.hardwareConcurrency} (${cpus()[0]?.model ?? "unknown CPU"}), Bun ${Bun.version}, ` +
      `seed ${SEED}. All times and ratios are from ONE run (${TRIALS} trials per cell; p99 is nearest-rank, so with ${TRIALS} samples it is the maximum). ` +
      `Total runtime ${totalS.toFixed(0)} s.`,
    "",
  ];
}

function realSection(real: RealResult[]): string[] {
  return [
    `## Real processes: crash detection (SIGKILL -> failed/removed) and quiet bandwidth`,
    "",
    `Local memberd processes (\`${memberdCommand.replace(REPO_PREFIX, "")}\`), default knobs except t_cleanup_ms=2000; every survivor's /list_mem polled every ${POLL_MS} ms (adds up to ~${POLL_MS} ms + one HTTP round trip). ` +
      `Bandwidth: sum of memberd_bytes_in_total + memberd_bytes_out_total over a quiet ${REAL_BW_WINDOW_MS / 1000} s window (starting ${REAL_BW_SETTLE_MS / 1000} s after all joined, before any kill), divided by nodes (UDP payload bytes, no IP/UDP headers).`,
    "",
    mdTable(
      ["mode", "N", "trials", "first p50", "first p99", "all p50", "all p99", "missed", "bytes/s per node (in+out)"],
      real.map((r) => [r.mode, String(r.n), String(r.trialsRun), ...detCells(r.det), fmtRate(r.bytesPerSecPerNode)]),
    ),
    "",
  ];
}

function falseFailSection(falseFail: Map<string, FalseFailResult[]>): string[] {
  return [
    `## Simulator: false failures per node-hour by drop_rate_recv (10 nodes, ${FALSE_FAIL_SIM_MS / 60_000} simulated min each, nothing crashed)`,
    "",
    "Cell: distinct members declared failed per node-hour (members falsely failed / 'failed' events summed over observers). Node-hours per cell: " +
      `${((10 * FALSE_FAIL_SIM_MS) / 3_600_000).toFixed(2)}.`,
    "",
    mdTable(
      ["mode", ...DROP_RATES.map((d) => `drop ${d}`)],
      MODES.map((m) => [
        m.name,
        ...(falseFail.get(m.name) ?? []).map((r) => `${(r.members / r.nodeHours).toFixed(2)} (${r.members}/${r.events})${r.converged ? "" : " *"}`),
      ]),
    ),
    "",
    ...(MODES.some((m) => (falseFail.get(m.name) ?? []).some((r) => !r.converged))
      ? ["\\* the 10 nodes never all agreed before the measurement started.", ""]
      : []),
  ];
}

function sim200Section(big: Map<string, Sim200Result>, falseFail: Map<string, FalseFailResult[]>): string[] {
  return [
    `## Simulator: crash detection at 200 nodes, and simulated bandwidth`,
    "",
    `Default knobs except t_cleanup_ms=2000 (200 nodes); a fresh random non-introducer crashes each trial in one simulation (N shrinks by one per trial), after a random 0.5-1.5 s gap. ` +
      `Bytes/s per node: encoded datagrams in+out (wire codec, no IP/UDP headers), quiet cluster, drop 0: 10 nodes over ${FALSE_FAIL_SIM_MS / 60_000} min, 200 nodes over ${SIM200_BW_WINDOW_MS / 1000} s starting when every broadcast queue is empty ('queues empty after', counted from convergence).`,
    "",
    mdTable(
      ["mode", "join convergence (200)", "queues empty after", "first p50", "first p99", "all p50", "all p99", "missed", "bytes/s per node @10", "bytes/s per node @200"],
      MODES.map((m) => {
        const b = big.get(m.name)!;
        const ten = (falseFail.get(m.name) ?? [])[0];
        return [
          m.name,
          b.convergeMs >= 0 ? fmtSec(b.convergeMs) : "did not converge",
          Number.isNaN(b.drainMs) ? "n/a (no piggyback)" : b.drainMs >= 0 ? `+${fmtSec(b.drainMs)}` : "never",
          ...detCells(b.det),
          fmtRate(ten?.bytesPerSecPerNode),
          fmtRate(b.bytesPerSecPerNode),
        ];
      }),
    ),
    "",
  ];
}

function memberlistSection(): string[] {
  return [
    "## hashicorp/memberlist LAN defaults — formula, not measured",
    "",
    "Formula, not measured. DefaultLANConfig: ProbeInterval 1 s, ProbeTimeout 500 ms, IndirectChecks 3, SuspicionMult 4, SuspicionMaxTimeoutMult 6, GossipInterval 200 ms, GossipNodes 3, PushPullInterval 30 s (scaled above 32 nodes). " +
      "Suspicion timeout min = 4 x max(1, log10 N) x 1 s; Lifeguard starts the timer at 6x min and shrinks it to min as 2 independent confirmations arrive. " +
      "Time to suspicion: SWIM's expected e/(e-1) probe periods (~1.58 s) until some member's probe (with its 500 ms timeout and 3 indirect checks) fails. " +
      "'All' adds ceil(log4 N) gossip rounds of 200 ms for the dead message. Bandwidth is a rough estimate (assumes ~70 B ping, ~15 B ack, ~60 B per member per push-pull direction), no headers.",
    "",
    mdTable(
      [
        "N",
        "suspicion timeout (min)",
        "suspicion timeout (max, 6x)",
        "first, expected (min timeout)",
        "first, no confirmations (max timeout)",
        "all, expected",
        "bytes/s per node (rough)",
      ],
      [10, 20, 200].map(memberlistRow),
    ),
    "",
  ];
}

/** The targets for the default mode (pingack+suspicion), each PASS or FAIL. */
function targetsSection(real: RealResult[], falseFail: Map<string, FalseFailResult[]>, big: Map<string, Sim200Result>): string[] {
  const checks: [string, boolean][] = [];
  for (const n of [10, 20]) {
    const def = real.find((r) => r.mode === "pingack+suspicion" && r.n === n);
    if (!def) continue;
    const allP99 = percentile(def.det.allMs, 99);
    checks.push([
      `failed-at-all p99 <= 3 s at ${n} real nodes (got ${fmtSec(allP99)}${def.det.misses ? `, ${def.det.misses} missed` : ""})`,
      allP99 !== undefined && allP99 <= 3000 && def.det.misses === 0,
    ]);
    checks.push([`<= 1.5 KB/s per node (real ${n} nodes: ${fmtRate(def.bytesPerSecPerNode)})`, def.bytesPerSecPerNode !== undefined && def.bytesPerSecPerNode <= 1500]);
  }
  const ff = falseFail.get("pingack+suspicion");
  if (ff) {
    const worst = Math.max(...DROP_RATES.filter((d) => d <= 0.2).map((d) => ff[DROP_RATES.indexOf(d)]?.members ?? Number.POSITIVE_INFINITY));
    checks.push([`zero false failures up to 20% drop (got ${worst})`, worst === 0]);
  }
  const b = big.get("pingack+suspicion");
  if (b) {
    checks.push([`200 simulated nodes converge within 5 s (got ${b.convergeMs >= 0 ? fmtSec(b.convergeMs) : "never"})`, b.convergeMs >= 0 && b.convergeMs <= 5000]);
    checks.push([`<= 1.5 KB/s per node at 200 simulated nodes (got ${fmtRate(b.bytesPerSecPerNode)})`, b.bytesPerSecPerNode !== undefined && b.bytesPerSecPerNode <= 1500]);
  }
  return ["## Targets (pingack+suspicion)", "", ...checks.map(([what, ok]) => `- ${ok ? "PASS" : "FAIL"}: ${what}`), ""];
}

await main();
