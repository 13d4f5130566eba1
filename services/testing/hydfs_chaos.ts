/**
 * A seeded chaos run over the simulated HyDFS cluster (hydfs_sim.ts), shared by the test
 * (hydfs/hydfs_sim_test.ts) and the benchmark (scripts/bench/hydfs_sim.ts). Clients create,
 * append (with client and seq, retrying through other coordinators) and delete while nodes
 * crash and restart, the network partitions and loses messages; then everything heals and the
 * HyDFS guarantees are checked:
 * - every acknowledged append is in its file exactly once, and no block appears twice;
 * - each client's blocks are in the order it wrote them;
 * - every replica of a file converges to the same content;
 * - a file whose delete was acknowledged stays deleted (no replica brings it back).
 */
import { HydfsError } from "../hydfs/node_types.ts";
import { randomInt, type Rng, seededRng } from "../shared/rng.ts";
import { HydfsSim, SIM_EPOCH_MS } from "./hydfs_sim.ts";

export interface ChaosOptions {
  seed: number;
  nodes?: number;
  clients?: number;
  /** Shared files every client appends to. */
  files?: number;
  /** Operations per client (default 20). */
  opsPerClient?: number;
  /** Most nodes down at once. */
  maxDown?: number;
}

export interface ChaosReport {
  seed: number;
  acked: number;
  unacked: number;
  crashes: number;
  partitions: number;
  virtualMs: number;
  messages: number;
  /** Broken guarantees, each a sentence; empty when the run passed. */
  violations: string[];
}

/** Times a client sends one operation before it gives up on it (each through a random coordinator). */
const CLIENT_ATTEMPTS = 4;
/** Virtual time the cluster gets, after everything healed, for its replicas to converge. */
const CONVERGE_LIMIT_MS = 180_000;

interface Ledger {
  /** Acknowledged appends per file, as their block text. */
  acked: Map<string, Set<string>>;
  /** sim.ringChanges when each block (file and text) was acknowledged. */
  ackedInRing: Map<string, number>;
  /** Files whose delete was acknowledged (and never written again). */
  deleted: Set<string>;
  /** Guarantees broken while the run went on (found by the clients' reads). */
  violations: string[];
  /** Files a delete was sent for: one that looked failed may still have been applied. */
  deleteSent: Set<string>;
  unacked: number;
}

const lineOf = (client: number, seq: number) => `c${client}:${seq}\n`;

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const nodes = opts.nodes ?? 5;
  const sim = new HydfsSim({ seed: opts.seed, nodes, delayMs: [1, 8], requestTimeoutMs: 500 });
  const rng = seededRng(opts.seed ^ 0x5a5a5a5a);
  const files = Array.from({ length: opts.files ?? 2 }, (_, i) => `shared-${i}`);
  const ledger: Ledger = {
    acked: new Map(files.map((f) => [f, new Set()])),
    ackedInRing: new Map(),
    deleted: new Set(),
    violations: [],
    deleteSent: new Set(),
    unacked: 0,
  };
  const report: ChaosReport = { seed: opts.seed, acked: 0, unacked: 0, crashes: 0, partitions: 0, virtualMs: 0, messages: 0, violations: [] };
  const start = sim.nowMs;
  try {
    for (const [i, f] of files.entries()) await sim.until(sim.write(i % nodes, "create", f, "", "setup", i));
    let clientsDone = false;
    const clients = Array.from({ length: opts.clients ?? 4 }, (_, c) => runClient(sim, rng, c, files, opts.opsPerClient ?? 20, ledger));
    const all = Promise.all(clients).finally(() => (clientsDone = true));
    const chaos = runFaults(sim, rng, opts.maxDown ?? 2, () => clientsDone, report);
    await sim.until(Promise.all([all, chaos]), 600_000);
    // Heal everything, then let the background passes converge the replicas.
    sim.heal();
    sim.lossRate = 0;
    for (const s of sim.nodes) if (!s.up) sim.restart(s.index);
    sim.updateMembers();
    const names = [...ledger.acked.keys()];
    // A replica that missed a delete keeps its copy until the file is read (read repair) or the
    // ring changes: the background pass merges only files written or moved since. One read of
    // each file, as a client would make, starts that repair.
    for (const name of names) await sim.until(sim.read(0, name), 60_000).catch(() => undefined);
    try {
      await sim.waitFor(() => names.every((n) => converged(sim, n, ledger)), CONVERGE_LIMIT_MS, "replicas converge", 1000);
    } catch (err) {
      const differ = names.filter((n) => !converged(sim, n, ledger));
      report.violations.push(`${(err as Error).message}: ${differ.map((n) => `${n} (${describeCopies(sim, n)})`).join(", ")} still differ`);
    }
    report.violations.push(...ledger.violations);
    for (const name of names) await checkFile(sim, name, ledger, report.violations);
    report.acked = [...ledger.acked.values()].reduce((n, s) => n + s.size, 0);
    report.unacked = ledger.unacked;
  } finally {
    report.virtualMs = sim.nowMs - start;
    report.messages = sim.messages;
    sim.close();
  }
  return report;
}

const sleep = (sim: HydfsSim, ms: number) => new Promise<void>((resolve) => sim.at(ms, resolve));

/** One operation, tried up to CLIENT_ATTEMPTS times through random coordinators that are up. */
async function attempt<T>(sim: HydfsSim, rng: Rng, op: (coordinator: number) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  let last: unknown;
  for (let k = 0; k < CLIENT_ATTEMPTS; k++) {
    const up = sim.nodes.filter((s) => s.up);
    if (up.length > 0) {
      try {
        return { ok: true, value: await op(up[randomInt(rng, up.length)]!.index) };
      } catch (err) {
        last = err;
        // A 4xx is the answer, not a failure to reach the cluster.
        if (err instanceof HydfsError && err.status < 500) break;
      }
    }
    await sleep(sim, 100 + randomInt(rng, 400));
  }
  return { ok: false, err: last };
}

/**
 * Client `c`: appends to the shared files, and takes its own file through create, appends and
 * delete. Its seq grows by one per operation, whatever file it goes to.
 */
async function runClient(sim: HydfsSim, rng: Rng, c: number, files: string[], ops: number, ledger: Ledger): Promise<void> {
  const own = `own-${c}`;
  let ownStage = 0; // 0: to create, 1..2: appends, 3: to delete, 4: done
  ledger.acked.set(own, new Set());
  for (let seq = 1; seq <= ops; seq++) {
    await sleep(sim, randomInt(rng, 300));
    if (rng.next() < 0.15) {
      await readMyWrites(sim, rng, c, files[randomInt(rng, files.length)]!, ledger);
      continue;
    }
    const toOwn = ownStage < 4 && rng.next() < 0.35;
    const name = toOwn ? own : files[randomInt(rng, files.length)]!;
    if (toOwn && ownStage === 3) {
      ledger.deleteSent.add(own);
      const r = await attempt(sim, rng, (i) => sim.delete(i, own));
      if (r.ok) ledger.deleted.add(own);
      ownStage = 4;
      continue;
    }
    const kind = toOwn && ownStage === 0 ? "create" : "append";
    const r = await attempt(sim, rng, (i) => sim.write(i, kind, name, lineOf(c, seq), `client-${c}`, seq));
    if (r.ok) {
      ledger.acked.get(name)!.add(lineOf(c, seq));
      ledger.ackedInRing.set(name + lineOf(c, seq), sim.ringChanges);
    } else ledger.unacked++;
    // A create answered 409 was decided in an earlier attempt that looked failed: the file exists.
    if (toOwn && (r.ok || kind === "append" || (r.err instanceof HydfsError && r.err.status === 409))) ownStage++;
  }
}

/**
 * A read by client `c` (when one succeeds) holds every block `c` had acknowledged in `name`
 * before it, once. Checked only on the ring the blocks were acknowledged on: across a ring change
 * a quorum of the new replicas may not include the one that holds a block until the background
 * pass re-replicates it (a limitation of quorums over a changing ring, seen with seed 11).
 */
async function readMyWrites(sim: HydfsSim, rng: Rng, c: number, name: string, ledger: Ledger): Promise<void> {
  const ring = sim.ringChanges;
  const mine = [...ledger.acked.get(name)!].filter((l) => l.startsWith(`c${c}:`) && ledger.ackedInRing.get(name + l) === ring);
  const r = await attempt(sim, rng, (i) => sim.read(i, name));
  if (!r.ok || sim.ringChanges !== ring) return;
  const lines = r.value.split("\n");
  for (const want of mine) {
    const n = lines.filter((l) => l === want.trimEnd()).length;
    if (n !== 1)
      ledger.violations.push(
        `${name}: client ${c}'s acknowledged block ${want.trimEnd()} appears ${n} times in its later read (t=${sim.nowMs - SIM_EPOCH_MS} ms)`,
      );
  }
}

/** Faults until the clients are done: crashes (detected by membership a little later), restarts, partitions, loss. */
async function runFaults(sim: HydfsSim, rng: Rng, maxDown: number, done: () => boolean, report: ChaosReport): Promise<void> {
  while (!done()) {
    await sleep(sim, 200 + randomInt(rng, 1000));
    const down = sim.nodes.filter((s) => !s.up);
    const roll = rng.next();
    if (roll < 0.3 && down.length < maxDown) {
      const up = sim.nodes.filter((s) => s.up);
      const victim = up[randomInt(rng, up.length)]!.index;
      sim.crash(victim);
      report.crashes++;
      sim.at(200 + randomInt(rng, 2000), () => sim.updateMembers());
    } else if (roll < 0.55 && down.length > 0) {
      sim.restart(down[randomInt(rng, down.length)]!.index);
    } else if (roll < 0.75) {
      const cutOff = randomInt(rng, sim.nodes.length);
      sim.partition(
        [cutOff],
        sim.nodes.map((s) => s.index).filter((i) => i !== cutOff),
      );
      report.partitions++;
      sim.at(300 + randomInt(rng, 3000), () => sim.heal());
    } else {
      sim.lossRate = rng.next() * 0.05;
    }
  }
}

/**
 * Every owner holds the same copy; deleted (acknowledged), no node holds one. A file may be
 * absent everywhere when its delete looked failed, or when nothing of it was acknowledged.
 */
function converged(sim: HydfsSim, name: string, ledger: Ledger): boolean {
  if (ledger.deleted.has(name)) return sim.nodes.every((s) => sim.copyOf(s.index, name) === undefined);
  const copies = sim.owners(name).map((i) => sim.copyOf(i, name));
  return copies.every((c) => c === copies[0]) && (copies[0] !== undefined || ledger.deleteSent.has(name) || ledger.acked.get(name)!.size === 0);
}

/**
 * Who holds what of `name`, per node: * for an owner, its copy's line count (- for none), then
 * t when it holds a tombstone, d when the file is dirty there, m while a background pass runs.
 */
function describeCopies(sim: HydfsSim, name: string): string {
  const owners = sim.owners(name);
  return sim.nodes
    .map(
      (s) =>
        `n${s.index}${owners.includes(s.index) ? "*" : ""}:${sim.copyOf(s.index, name)?.split("\n").length ?? "-"}${s.node.store.deletedAt(name) !== undefined ? "t" : ""}${s.node.dirty.has(name) ? "d" : ""}${s.node.maintaining ? "m" : ""}`,
    )
    .join(" ");
}

async function checkFile(sim: HydfsSim, name: string, ledger: Ledger, violations: string[]): Promise<void> {
  let content: string;
  try {
    content = await sim.until(sim.read(0, name), 60_000);
  } catch (err) {
    if (ledger.deleteSent.has(name) && err instanceof HydfsError && err.status === 404) return;
    if (ledger.acked.get(name)!.size > 0 || !(err instanceof HydfsError && err.status === 404))
      violations.push(`${name}: read failed: ${(err as Error).message}`);
    return;
  }
  if (ledger.deleted.has(name)) return void violations.push(`${name}: deleted (acknowledged), but a read returns ${JSON.stringify(content.slice(0, 80))}`);
  const lines = content.split("\n").filter((l) => l !== "");
  const seen = new Map<string, number>();
  for (const l of lines) seen.set(l, (seen.get(l) ?? 0) + 1);
  for (const [l, n] of seen) if (n > 1) violations.push(`${name}: block ${l} appears ${n} times`);
  for (const want of ledger.acked.get(name)!) if (!seen.has(want.trimEnd())) violations.push(`${name}: acknowledged block ${want.trimEnd()} is missing`);
  const lastSeq = new Map<string, number>();
  for (const l of lines) {
    const [client, seq] = l.split(":");
    if ((lastSeq.get(client!) ?? 0) > Number(seq)) violations.push(`${name}: ${client}'s block ${seq} comes after its block ${lastSeq.get(client!)}`);
    lastSeq.set(client!, Number(seq));
  }
}
