/**
 * In-process simulated HyDFS cluster: N real HydfsNodes (real FileStores in temp dirs) wired by
 * a simulated transport over a seeded network (loss, delay, partitions), a virtual clock, and a
 * member list given directly (no memberd). Nodes crash (their in-flight calls die, their disk
 * stays) and restart with a new boot id, as a real restart does. Minutes of protocol time run in
 * well under a second, and a run replays exactly from its seed: the nodes make progress only on
 * microtasks and simulated events, which fire one at a time in (time, order).
 *
 * As testing/sim.ts does for memberd; the chaos run that checks the HyDFS guarantees is
 * testing/hydfs_chaos.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HydfsNode } from "../hydfs/node.ts";
import type { NodeEnv } from "../hydfs/node_types.ts";
import { type NodeAddress, sameAddress } from "../hydfs/ring.ts";
import { FileStore } from "../hydfs/store.ts";
import { type Replica, routedTransport, type WriteKind } from "../hydfs/transport.ts";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import type { WatchedMember } from "../member/watch.ts";
import { type Rng, seededRng } from "../shared/rng.ts";

export interface HydfsSimOptions {
  seed: number;
  nodes: number;
  /** Probability that the network loses one message (a request or its answer). */
  lossRate?: number;
  /** One-way delay, uniform in [min, max] ms. */
  delayMs?: [number, number];
  /** A call whose request or answer is lost fails after this long (hydfs.request_timeout_ms). */
  requestTimeoutMs?: number;
  replicaCount?: number;
  /** Period of each node's background pass (hydfs.rereplicate_every_ms). */
  rereplicateEveryMs?: number;
}

/** Virtual wall clock at the start of every run: fixed, so op timestamps replay exactly. */
export const SIM_EPOCH_MS = 1_700_000_000_000;
/** Every node's HyDFS port (the hosts differ). */
const HYDFS_PORT = 10010;
/** Temp dirs live in memory when the machine has /dev/shm: the stores fsync every write. */
const TEMP_BASE = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

interface Event {
  atMs: number;
  order: number;
  fire: () => void;
}

export interface SimHydfsNode {
  index: number;
  host: string;
  dir: string;
  /** Bumped at every restart: the member id changes, and calls of an older boot die. */
  boot: number;
  up: boolean;
  node: HydfsNode;
  /** Rejecters of client calls this node coordinates (they fail if it crashes). */
  clientCalls: Set<(err: Error) => void>;
}

const text = (s: string) => new TextEncoder().encode(s);

export class HydfsSim {
  nowMs = SIM_EPOCH_MS;
  readonly rng: Rng;
  readonly nodes: SimHydfsNode[] = [];
  readonly root: string;
  lossRate: number;
  /** Messages carried (requests and answers), for reports. */
  messages = 0;
  /** Member list updates so far: a ring change moves files to other replicas. */
  ringChanges = 0;
  private readonly queue: Event[] = [];
  private order = 0;
  private readonly cuts = new Set<string>();

  constructor(readonly opts: HydfsSimOptions) {
    this.rng = seededRng(opts.seed);
    this.lossRate = opts.lossRate ?? 0;
    this.root = mkdtempSync(join(TEMP_BASE, "hydfs-sim-"));
    for (let i = 0; i < opts.nodes; i++) {
      const dir = join(this.root, `n${i}`);
      mkdirSync(dir, { recursive: true });
      const s: Omit<SimHydfsNode, "node"> = { index: i, host: `10.9.0.${i + 1}`, dir, boot: 0, up: false, clientCalls: new Set() };
      this.nodes.push(this.boot(s));
    }
    this.updateMembers();
  }

  address(i: number): NodeAddress {
    return { host: this.nodes[i]!.host, hydfsPort: HYDFS_PORT };
  }

  // ---- events and the clock -------------------------------------------------------------------

  /** Run `fire` `delayMs` from now (virtual). */
  at(delayMs: number, fire: () => void): void {
    const e = { atMs: this.nowMs + Math.max(0, delayMs), order: this.order++, fire };
    // Binary insertion keeps the queue sorted by (atMs, order); fine for the few thousand pending events.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.queue[mid]!;
      if (m.atMs < e.atMs || (m.atMs === e.atMs && m.order < e.order)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, e);
  }

  /** Let every continuation that is ready run (the nodes do no real I/O that waits). */
  private flush(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  private async step(): Promise<boolean> {
    const e = this.queue.shift();
    if (!e) return false;
    this.nowMs = Math.max(this.nowMs, e.atMs);
    e.fire();
    await this.flush();
    return true;
  }

  /** Run the cluster for `ms` of virtual time. */
  async runFor(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    await this.flush();
    while (this.queue.length > 0 && this.queue[0]!.atMs <= end) await this.step();
    this.nowMs = end;
  }

  /** Run until `p` settles (at most `limitMs` of virtual time), and return its result. */
  async until<T>(p: Promise<T>, limitMs = 120_000): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    const end = this.nowMs + limitMs;
    await this.flush();
    while (!done) {
      if (this.queue.length === 0 || this.queue[0]!.atMs > end) throw new Error(`simulated call still pending after ${limitMs} ms of virtual time`);
      await this.step();
    }
    return p;
  }

  /** Run until `check` holds, testing every `everyMs` (virtual), or throw after `limitMs`. */
  async waitFor(check: () => boolean | Promise<boolean>, limitMs: number, what: string, everyMs = 500): Promise<void> {
    const end = this.nowMs + limitMs;
    while (!(await check())) {
      if (this.nowMs >= end) throw new Error(`${what}: not reached within ${limitMs} ms of virtual time`);
      await this.runFor(everyMs);
    }
  }

  // ---- nodes and membership -------------------------------------------------------------------

  private env(s: Omit<SimHydfsNode, "node">): NodeEnv {
    const boot = s.boot;
    const alive = () => s.up && s.boot === boot;
    return {
      nowMs: () => this.nowMs,
      monoMs: () => this.nowMs,
      sleep: (ms) => new Promise((resolve) => this.at(ms, resolve)),
      random: () => this.rng.next(),
      newId: () =>
        Math.floor(this.rng.next() * 2 ** 48)
          .toString(16)
          .padStart(12, "0") +
        Math.floor(this.rng.next() * 2 ** 48)
          .toString(16)
          .padStart(12, "0"),
      setTimer: (fn, delayMs) => {
        let live = true;
        this.at(delayMs, () => live && alive() && fn());
        return () => (live = false);
      },
      // Its own store directly (but dead with the boot that made it), the others over the network.
      transport: (self, local) => routedTransport(self, guarded(local, alive), (to) => this.remote(s, boot, to)),
    };
  }

  /** Start a HydfsNode on the node's disk (a first start, or a restart) and mark it up. */
  private boot(s: Omit<SimHydfsNode, "node"> & { node?: HydfsNode }): SimHydfsNode {
    const cfg = buildNodeConfig({
      host: s.host,
      data_dir: s.dir,
      ports: { hydfs: HYDFS_PORT },
      hydfs: {
        replica_count: this.opts.replicaCount ?? 3,
        request_timeout_ms: this.opts.requestTimeoutMs ?? 1000,
        rereplicate_every_ms: this.opts.rereplicateEveryMs ?? 2000,
      },
    });
    s.node = new HydfsNode(cfg, new FileStore(join(s.dir, "hydfs")), makeLogger(`sim-${s.host}`, process.env.HYDFS_SIM_LOG ?? "silent"), this.env(s));
    s.up = true;
    s.node.setViewReady(true);
    return s as SimHydfsNode;
  }

  memberId(i: number): string {
    return `${this.nodes[i]!.host}:5000@${this.nodes[i]!.boot}`;
  }

  /** Every node that is up learns the member list: the nodes that are up (failure detected). */
  updateMembers(): void {
    const live: WatchedMember[] = this.nodes
      .filter((s) => s.up)
      .map((s) => ({ id: this.memberId(s.index), state: "alive", ports: { hydfs: HYDFS_PORT } }) as unknown as WatchedMember);
    for (const s of this.nodes) if (s.up) s.node.setMembers(live);
    this.ringChanges++;
  }

  /** The node dies: calls to and from it fail, client calls it coordinates fail; its disk stays. */
  crash(i: number): void {
    const s = this.nodes[i]!;
    if (!s.up) return;
    s.up = false;
    s.node.stop();
    for (const reject of s.clientCalls) reject(new Error(`${s.host} crashed`));
    s.clientCalls.clear();
  }

  /** Start it again on the same disk, with a new boot id, and tell everyone (membership). */
  restart(i: number): void {
    const s = this.nodes[i]!;
    if (s.up) return;
    s.boot++;
    this.boot(s);
    this.updateMembers();
  }

  /** Cut every link between the groups (node indexes); nodes in no group keep their links. */
  partition(...groups: number[][]): void {
    for (const [gi, g] of groups.entries()) for (const h of groups.slice(gi + 1)) for (const a of g) for (const b of h) this.cuts.add(linkKey(a, b));
  }

  heal(): void {
    this.cuts.clear();
  }

  private cut(a: number, b: number): boolean {
    return this.cuts.has(linkKey(a, b));
  }

  private byAddress(to: NodeAddress): SimHydfsNode | undefined {
    return this.nodes.find((s) => sameAddress(this.address(s.index), to));
  }

  // ---- the network ----------------------------------------------------------------------------

  private delay(): number {
    const [lo, hi] = this.opts.delayMs ?? [1, 5];
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }

  private lost(a: number, b: number): boolean {
    return this.cut(a, b) || this.rng.next() < this.lossRate;
  }

  /** A replica at `to` as node `from` (of boot `boot`) reaches it: every method is a message. */
  private remote(from: Omit<SimHydfsNode, "node">, boot: number, to: NodeAddress): Replica {
    return new Proxy({ address: to } as Replica, {
      get: (target, key) => {
        if (key === "address") return target.address;
        // Only the Replica's calls (not `then` and the like, which would make it look like a promise).
        if (typeof key !== "string" || !REPLICA_CALLS.has(key)) return undefined;
        // Arguments are copied, as a wire would: the target never shares the caller's objects.
        return (...args: unknown[]) =>
          this.send(from, boot, to, key, (r) => (r as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[key]!(...structuredClone(args)));
      },
    });
  }

  /**
   * One call: the request travels (or is lost), the target runs it, the answer travels back (or
   * is lost). Like an HTTP call with hydfs.request_timeout_ms, it fails once that much time
   * passed without an answer, whatever happened to it (lost, cut, or the target died mid-call).
   */
  private send<T>(from: Omit<SimHydfsNode, "node">, boot: number, to: NodeAddress, what: string, run: (r: Replica) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (ok: boolean, value: unknown) => {
        if (settled) return;
        settled = true;
        if (ok) resolve(structuredClone(value) as T);
        else reject(value);
      };
      const fail = (why: string) => settle(false, new Error(`${to.host}:${to.hydfsPort} ${what}: ${why}`));
      if (!(from.up && from.boot === boot)) return fail("the caller crashed");
      this.at(this.opts.requestTimeoutMs ?? 1000, () => fail("timed out"));
      const target = this.byAddress(to);
      this.messages++;
      if (!target || this.lost(from.index, target.index)) return;
      this.at(this.delay(), () => {
        if (!target.up) return fail("connection refused");
        const targetBoot = target.boot;
        const reply = (ok: boolean, value: unknown) => {
          if (!target.up || target.boot !== targetBoot) return fail("connection reset");
          this.messages++;
          if (!this.lost(from.index, target.index)) this.at(this.delay(), () => settle(ok, value));
        };
        run(target.node.at(to)).then(
          (v) => reply(true, v),
          (err) => reply(false, err),
        );
      });
    });
  }

  // ---- clients ----------------------------------------------------------------------------------

  /** A client call coordinated by node `i`: it fails when that node crashes before it answers. */
  call<T>(i: number, fn: (node: HydfsNode) => Promise<T>): Promise<T> {
    const s = this.nodes[i]!;
    if (!s.up) return Promise.reject(new Error(`${s.host} is down`));
    return new Promise<T>((resolve, reject) => {
      const rejecter = (err: Error) => reject(err);
      s.clientCalls.add(rejecter);
      fn(s.node).then(
        (v) => s.clientCalls.delete(rejecter) && resolve(v),
        (err) => s.clientCalls.delete(rejecter) && reject(err),
      );
    });
  }

  write(i: number, kind: WriteKind, name: string, data: string, clientId: string, seq: number) {
    const bytes = text(data);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    });
    return this.call(i, (n) => n.write(kind, name, body, clientId, seq));
  }

  delete(i: number, name: string) {
    return this.call(i, (n) => n.delete(name));
  }

  /** A quorum read through node `i`, its bytes as text. */
  read(i: number, name: string): Promise<string> {
    return this.call(i, async (n) => {
      const r = await n.read(name);
      const reader = r.body.getReader();
      const parts: Uint8Array[] = [];
      for (let c = await reader.read(); !c.done; c = await reader.read()) parts.push(c.value);
      return Buffer.concat(parts).toString("utf8");
    });
  }

  /** Node `i`'s own copy of `name` as text (undefined: none), read from its store. */
  copyOf(i: number, name: string): string | undefined {
    const store = this.nodes[i]!.node.store;
    const ops = store.view(name);
    if (!ops) return undefined;
    return Buffer.concat(ops.flatMap((o) => o.chunks.map((c) => store.readChunk(c.id)))).toString("utf8");
  }

  /** The nodes that are up and own `name` on the ring of node `i`. */
  owners(name: string, i = this.nodes.findIndex((s) => s.up)): number[] {
    return this.nodes[i]!.node.replicas(name).map((r) => this.byAddress(r)!.index);
  }

  /** Stop every node and remove the temp dirs. */
  close(): void {
    for (const s of this.nodes) s.node.stop();
    this.queue.length = 0;
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The calls of transport.ts's Replica, which the simulated network carries. */
const REPLICA_CALLS: ReadonlySet<string> = new Set<keyof Replica>([
  "apply",
  "abort",
  "manifest",
  "putChunk",
  "getChunk",
  "prepare",
  "accept",
  "delete",
  "adopt",
  "digest",
]);

function linkKey(a: number, b: number): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** `r` while `alive()`; afterwards every call fails (a crashed boot touches its disk no more). */
function guarded(r: Replica, alive: () => boolean): Replica {
  return new Proxy(r, {
    get: (target, key) => {
      const v = (target as unknown as Record<string | symbol, unknown>)[key];
      if (typeof v !== "function") return v;
      return (...args: unknown[]) =>
        alive() ? (v as (...a: unknown[]) => unknown).apply(target, args) : Promise.reject(new Error(`${target.address.host} crashed`));
    },
  });
}
