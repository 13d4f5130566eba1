/**
 * A local multi-process cluster: node k runs its daemons on 127.0.X.k with the default ports,
 * so it looks exactly like k VMs. Used by scripts/cluster.ts (state kept in DIR/state.json so
 * separate invocations can manage one cluster) and by the multi-process tests (which pick their
 * subnet with testNet, see net.ts; the waits here go through scaled, see time.ts).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { memberHost } from "../member/state.ts";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Knobs } from "../member/cluster_config.ts";
import { DEFAULT_PORTS } from "../member/config.ts";
import { ClusterHttp } from "../shared/http.ts";
import { scaled } from "./time.ts";

/** Daemons of a node, in start order (hydfsd follows the memberd of its node). */
export const SERVICES = ["memberd", "hydfsd", "rainstormd"] as const;
export type Service = (typeof SERVICES)[number];

const REPO_ROOT = resolve(import.meta.dir, "../..");

export interface ClusterOptions {
  dir: string;
  /** First three octets, e.g. "127.0.0": node k is `${subnet}.${k}`. */
  subnet?: string;
  secret?: string;
  /** Membership knobs written into every node's config. */
  knobs?: Partial<Knobs>;
  /** Further settings merged into every node's config (e.g. `{ hydfs: { max_body_bytes: 1000 } }`). */
  extra?: Record<string, unknown>;
  /** Use dist/bin executables when present (default, unless SKIP_BUILD is set), or force the .ts entries. */
  preferCompiled?: boolean;
  /**
   * Tests: SIGKILL every daemon this process started when it exits, even on a crash, so no
   * test leaves processes behind. The CLI leaves it off (daemons outlive `up`).
   */
  killOnExit?: boolean;
}

interface NodeState {
  k: number;
  host: string;
  pids: Partial<Record<Service, number>>;
}

interface ClusterState {
  subnet: string;
  secret: string;
  knobs: Partial<Knobs>;
  extra: Record<string, unknown>;
  /** Settings of one node only, merged over `extra` (see setNodeExtra). */
  nodeExtra?: Record<string, Record<string, unknown>>;
  nodes: Record<string, NodeState>;
}

/** `over` merged into `base`, objects one level deep (so `{ hydfs: { failpoint } }` keeps the other hydfs settings). */
function mergeSettings(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  const out = { ...base };
  for (const [key, v] of Object.entries(over)) {
    const b = out[key];
    out[key] = isObject(b) && isObject(v) ? { ...b, ...v } : v;
  }
  return out;
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); treat it as dead.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.split(") ")[1]?.[0] !== "Z";
  } catch {
    return true;
  }
}

/** Write a file only its owner can read: node configs and the cluster state hold the secret. */
export function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600); // mode applies only when the file is created
}

/**
 * A fresh path under the temp dir, not yet created: test clusters create it when they start, so a
 * test file whose tests are all filtered out leaves nothing behind.
 */
export function tempPath(prefix: string): string {
  return join(tmpdir(), `${prefix}${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/** Poll `cond` every `everyMs` until it is truthy or `timeoutMs` passes (then throw `what`). */
export async function waitFor<T>(cond: () => Promise<T> | T, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastErr: unknown;
  while (performance.now() < deadline) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await Bun.sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ""}`);
}

export class LocalCluster {
  readonly dir: string;
  private state: ClusterState;
  private readonly preferCompiled: boolean;
  private readonly detached: boolean;
  /** Signs calls with the cluster's secret, as ctl does (a plain fetch is an unauthenticated caller). */
  readonly http: ClusterHttp;

  constructor(opts: ClusterOptions) {
    this.dir = resolve(opts.dir);
    // SKIP_BUILD=1 (scripts/test.ts) means "test the .ts entries": dist/bin may be stale then.
    this.preferCompiled = opts.preferCompiled ?? !process.env.SKIP_BUILD;
    this.detached = !opts.killOnExit;
    if (opts.killOnExit) {
      process.on("exit", () => {
        for (const k of this.nodeNumbers) {
          this.signal(k, "SIGKILL");
        }
      });
    }
    const saved = join(this.dir, "state.json");
    this.state = existsSync(saved)
      ? (JSON.parse(readFileSync(saved, "utf8")) as ClusterState)
      : { subnet: opts.subnet ?? "127.0.0", secret: opts.secret ?? "", knobs: opts.knobs ?? {}, extra: opts.extra ?? {}, nodes: {} };
    this.http = new ClusterHttp(this.state.secret);
  }

  get subnet(): string {
    return this.state.subnet;
  }
  get secret(): string {
    return this.state.secret;
  }
  get nodeNumbers(): number[] {
    return Object.keys(this.state.nodes)
      .map(Number)
      .sort((a, b) => a - b);
  }

  host(k: number): string {
    return `${this.state.subnet}.${k}`;
  }
  /** The node number of `host` (or "host:port"), the inverse of host(k). */
  nodeOf(host: string): number {
    return Number(host.split(":")[0]!.slice(this.state.subnet.length + 1));
  }
  httpUrl(k: number, path = ""): string {
    return `http://${this.host(k)}:${DEFAULT_PORTS.http}${path}`;
  }
  configPath(k: number): string {
    return join(this.dir, `node-${k}`, "config.json");
  }
  /** Directory `multiappend` reads node k's local files from. */
  localDir(k: number): string {
    return join(this.dir, `node-${k}`, "data", "local");
  }
  logPath(k: number, service: Service): string {
    return join(this.dir, `node-${k}`, `${service}.log`);
  }
  pid(k: number, service: Service = "memberd"): number | undefined {
    return this.state.nodes[k]?.pids[service];
  }

  private save(): void {
    mkdirSync(this.dir, { recursive: true });
    writePrivate(join(this.dir, "state.json"), JSON.stringify(this.state, null, 2));
  }

  private writeNodeConfig(k: number): void {
    const nodeDir = join(this.dir, `node-${k}`);
    mkdirSync(join(nodeDir, "data"), { recursive: true });
    const aliases: Record<string, string> = {};
    for (let i = 1; i <= 20; i++) aliases[String(i).padStart(2, "0")] = this.host(i);
    const cfg = {
      host: this.host(k),
      data_dir: join(nodeDir, "data"),
      is_introducer: k === 1,
      introducers: [`${this.host(1)}:${DEFAULT_PORTS.introducer}`],
      cluster_secret: this.state.secret,
      aliases,
      membership: this.state.knobs,
      ...mergeSettings(this.state.extra ?? {}, this.state.nodeExtra?.[k] ?? {}),
    };
    writePrivate(this.configPath(k), JSON.stringify(cfg, null, 2));
  }

  /**
   * Tests: settings for node k only (e.g. a failpoint), merged over the cluster's `extra`; they
   * take effect the next time one of its services starts. `undefined` drops them.
   */
  setNodeExtra(k: number, extra: Record<string, unknown> | undefined): void {
    const all = (this.state.nodeExtra ??= {});
    if (extra) all[k] = extra;
    else delete all[k];
    this.save();
  }

  /** The command that runs a service: the compiled executable if built, else bun + entry. */
  command(service: Service): string[] {
    const bin = join(REPO_ROOT, "dist", "bin", service);
    if (this.preferCompiled && existsSync(bin)) return [bin];
    return [process.execPath, join(REPO_ROOT, "services", `${service}.ts`)];
  }

  startService(k: number, service: Service): number {
    this.writeNodeConfig(k);
    const log = openSync(this.logPath(k, service), "a");
    const proc = Bun.spawn([...this.command(service), "--config", this.configPath(k)], {
      cwd: REPO_ROOT,
      stdin: "ignore",
      stdout: log,
      stderr: log,
      env: { ...process.env, RAINSTORM_SECRET: "" },
      // The CLI's daemons get their own session, so a Ctrl-C in the terminal does not kill them.
      detached: this.detached,
    });
    closeSync(log);
    proc.unref();
    const node = (this.state.nodes[k] ??= { k, host: this.host(k), pids: {} });
    node.pids[service] = proc.pid;
    this.save();
    return proc.pid;
  }

  /** Start nodes 1..n (node 1 first: it is the introducer) and wait until all n see each other alive. */
  async up(n: number, timeoutMs = scaled(30_000)): Promise<void> {
    for (let k = 1; k <= n; k++) {
      for (const s of SERVICES) if (!isAlive(this.pid(k, s))) this.startService(k, s);
      if (k === 1) await this.waitServing(1, timeoutMs);
    }
    const live = this.nodeNumbers.filter((k) => isAlive(this.pid(k)));
    await this.waitAllAlive(live, timeoutMs);
    await this.waitHydfsRing(live, timeoutMs);
  }

  hydfsUrl(k: number, path = ""): string {
    return `http://${this.host(k)}:${DEFAULT_PORTS.hydfs}${path}`;
  }

  /** Wait until each of `nodes`' hydfsd has exactly those nodes on its ring. */
  async waitHydfsRing(nodes: number[], timeoutMs = scaled(30_000)): Promise<void> {
    const want = nodes
      .map((k) => this.host(k))
      .sort()
      .join(",");
    await waitFor(
      async () => {
        for (const k of nodes) {
          const res = await this.http.fetch(this.hydfsUrl(k, "/list_mem_ids"), { timeoutMs: 1000 });
          const hosts = ((await res.json()) as { members: { host: string }[] }).members
            .map((m) => m.host)
            .sort()
            .join(",");
          if (hosts !== want) return false;
        }
        return true;
      },
      timeoutMs,
      `hydfsd on nodes ${nodes.join(",")} to see the same ring`,
    );
  }

  async waitServing(k: number, timeoutMs = scaled(15_000)): Promise<void> {
    await waitFor(async () => (await this.http.fetch(this.httpUrl(k, "/list_self"), { timeoutMs: 500 })).ok, timeoutMs, `node ${k} to serve HTTP`);
  }

  /** Wait until each of `nodes` lists exactly those nodes' hosts as alive. */
  async waitAllAlive(nodes: number[], timeoutMs = scaled(30_000)): Promise<void> {
    const want = nodes
      .map((k) => this.host(k))
      .sort()
      .join(",");
    await waitFor(
      async () => {
        for (const k of nodes) {
          const alive = (await this.members(k)).filter((m) => m.state === "alive").map((m) => memberHost(m.id));
          if (alive.sort().join(",") !== want) return false;
        }
        return true;
      },
      timeoutMs,
      `nodes ${nodes.join(",")} to see each other alive`,
    );
  }

  async members(k: number): Promise<{ id: string; state: string; incarnation: number }[]> {
    const res = await this.http.fetch(this.httpUrl(k, "/list_mem"), { timeoutMs: 1000 });
    return ((await res.json()) as { members: { id: string; state: string; incarnation: number }[] }).members;
  }

  async get(k: number, path: string): Promise<unknown> {
    const res = await this.http.fetch(this.httpUrl(k, path), { timeoutMs: 1000 });
    return res.json();
  }

  async post(k: number, path: string, body: unknown, auth = true): Promise<Response> {
    const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
    return auth
      ? this.http.fetch(this.httpUrl(k, path), { ...init, timeoutMs: 2000 })
      : fetch(this.httpUrl(k, path), { ...init, signal: AbortSignal.timeout(2000) });
  }

  signal(k: number, sig: NodeJS.Signals, service?: Service): void {
    for (const s of service ? [service] : SERVICES) {
      const pid = this.pid(k, s);
      if (pid && isAlive(pid)) process.kill(pid, sig);
    }
  }

  kill(k: number, service?: Service): void {
    this.signal(k, "SIGKILL", service);
  }
  pause(k: number): void {
    this.signal(k, "SIGSTOP");
  }
  resume(k: number): void {
    this.signal(k, "SIGCONT");
  }

  async restart(k: number): Promise<void> {
    this.kill(k);
    await waitFor(() => SERVICES.every((s) => !isAlive(this.pid(k, s))), scaled(5000), `node ${k} to exit`);
    for (const s of SERVICES) this.startService(k, s);
    await this.waitServing(k);
  }

  /** Start one stopped service of node k again (e.g. after `kill K --service hydfsd`). */
  startAgain(k: number, service: Service): void {
    if (!isAlive(this.pid(k, service))) this.startService(k, service);
  }

  async status(): Promise<{ k: number; host: string; services: Record<string, { pid?: number; alive: boolean }>; members?: number; error?: string }[]> {
    const rows = [];
    for (const k of this.nodeNumbers) {
      const services: Record<string, { pid?: number; alive: boolean }> = {};
      for (const s of SERVICES) services[s] = { pid: this.pid(k, s), alive: isAlive(this.pid(k, s)) };
      let members: number | undefined;
      let error: string | undefined;
      try {
        if (services.memberd!.alive) members = (await this.members(k)).filter((m) => m.state === "alive").length;
      } catch (err) {
        error = (err as Error).message;
      }
      rows.push({ k, host: this.host(k), services, members, error });
    }
    return rows;
  }

  /** Stop every process (SIGCONT first, so stopped ones can die), then remove the state file. */
  async down(removeDir = false): Promise<void> {
    for (const k of this.nodeNumbers) {
      this.signal(k, "SIGCONT");
      this.signal(k, "SIGTERM");
    }
    try {
      await waitFor(() => this.nodeNumbers.every((k) => SERVICES.every((s) => !isAlive(this.pid(k, s)))), scaled(3000), "daemons to stop");
    } catch {
      for (const k of this.nodeNumbers) this.kill(k);
    }
    this.state.nodes = {};
    // RAINSTORM_KEEP_TEST_DIRS=1 keeps logs and data of test clusters for a post-mortem.
    if (removeDir && !process.env.RAINSTORM_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
    else if (removeDir) console.error(`kept cluster dir ${this.dir}`);
    else this.save();
  }
}
