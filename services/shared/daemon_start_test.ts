/**
 * Starting the daemons as real processes on testNet(85).k (the compiled executables when built,
 * else the .ts entries; SKIP_BUILD=1 forces the latter): --version, unknown flags, a run with no
 * argument (./config.json), paths relative to the config file, JSON logs, the ready line, bind
 * conflicts, a hydfsd or rainstormd that disagrees with its node's memberd, a missing ops_dir,
 * and a memberd that waits for its introducer. Every process is killed in afterAll (and at exit).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalCluster, type Service, tempPath, waitFor } from "../testing/cluster.ts";
import { VERSION } from "./version.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(60_000));

const SUBNET = testNet(85);
const host = (k: number) => `${SUBNET}.${k}`;
const root = tempPath("daemon-start-");
// Only for the command that runs a service (compiled or .ts); this cluster starts nothing itself.
const commands = new LocalCluster({ dir: join(root, "unused") });

/** A daemon process whose stdout and stderr are collected as they come. */
class Proc {
  readonly proc: ReturnType<typeof Bun.spawn>;
  out = "";
  err = "";
  readonly exited: Promise<number>;

  constructor(service: Service, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
    this.proc = Bun.spawn([...commands.command(service), ...args], {
      cwd: opts.cwd ?? root,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, RAINSTORM_SECRET: "", LOG_FORMAT: "", ...opts.env },
    });
    const drain = async (stream: ReadableStream<Uint8Array>, to: "out" | "err") => {
      const dec = new TextDecoder();
      for await (const chunk of stream) this[to] += dec.decode(chunk, { stream: true });
    };
    const done = Promise.all([drain(this.proc.stdout as ReadableStream<Uint8Array>, "out"), drain(this.proc.stderr as ReadableStream<Uint8Array>, "err")]);
    this.exited = this.proc.exited.then(async (code) => {
      await done;
      return code;
    });
    running.push(this);
  }

  /** The parsed ready line (the first stdout line). */
  async ready(timeoutMs = 20_000): Promise<Record<string, any>> {
    await waitFor(
      () => this.out.includes("\n") || this.proc.exitCode !== null,
      scaled(timeoutMs),
      `the ready line (stderr so far: ${this.err.slice(-500)})`,
      20,
    );
    if (!this.out.includes("\n")) throw new Error(`exited ${this.proc.exitCode} without a ready line: ${this.err}`);
    return JSON.parse(this.out.split("\n")[0]!);
  }

  /** Exit code, within `timeoutMs`. */
  async exit(timeoutMs = 20_000): Promise<number> {
    return Promise.race([
      this.exited,
      Bun.sleep(scaled(timeoutMs)).then(() => Promise.reject(new Error(`still running after ${scaled(timeoutMs)} ms; stderr: ${this.err}`))),
    ]);
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}

const running: Proc[] = [];
process.on("exit", () => {
  for (const p of running) p.kill();
});

function nodeConfig(dir: string, settings: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(settings, null, 2));
  return path;
}

afterAll(async () => {
  for (const p of running) p.kill();
  await Promise.all(running.map((p) => p.exited));
  rmSync(root, { recursive: true, force: true });
});

describe("daemon command lines", () => {
  test("--version prints '<name> <version>' and exits 0, for every daemon", async () => {
    mkdirSync(root, { recursive: true });
    const procs = (["memberd", "hydfsd", "rainstormd"] as const).map((s) => [s, new Proc(s, ["--version"])] as const);
    for (const [s, p] of procs) {
      expect(await p.exit()).toBe(0);
      expect(p.out).toBe(`${s} ${VERSION}\n`);
    }
  });

  test("an unknown flag or a stray argument exits 2 naming it, and nothing starts", async () => {
    const cases = [
      [new Proc("memberd", ["--foo"]), "unknown flag --foo; see --help"],
      [new Proc("hydfsd", ["--config", "x.json", "--bogus=1"]), "unknown flag --bogus; see --help"],
      [new Proc("rainstormd", ["config.json"]), 'unexpected argument "config.json"'],
    ] as const;
    for (const [p, message] of cases) {
      expect(await p.exit()).toBe(2);
      expect(p.err).toContain(message);
      expect(p.out).toBe("");
    }
  });
});

describe("a node started from one config file", () => {
  const nodeDir = join(root, "node1");
  let config = "";
  let memberd: Proc;
  let hydfsd: Proc;

  test("with no argument memberd runs with ./config.json; its ready line carries the version; LOG_FORMAT=json lines parse", async () => {
    config = nodeConfig(nodeDir, { host: host(1), is_introducer: true, introducers: [], data_dir: "data" });
    memberd = new Proc("memberd", [], { cwd: nodeDir, env: { LOG_FORMAT: "json" } });
    const ready = await memberd.ready();
    expect(ready).toMatchObject({ event: "ready", service: "memberd", version: VERSION, host: host(1) });
    expect(ready.id).toStartWith(`${host(1)}:5000@`);
    const lines = memberd.err.split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const rec = JSON.parse(line);
      expect(Object.keys(rec)).toEqual(["time", "level", "service", "msg"]);
      expect(rec.service).toBe("memberd");
      expect(Number.isNaN(Date.parse(rec.time))).toBe(false);
    }
    const metrics = await (await fetch(`http://${host(1)}:8080/metrics`)).text();
    expect(metrics).toContain(`memberd_build_info{version="${VERSION}"} 1`);
  });

  test("hydfsd started elsewhere with --config: data_dir is relative to the config file's folder; text log lines carry timestamps", async () => {
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere, { recursive: true });
    hydfsd = new Proc("hydfsd", ["--config", "../node1/config.json"], { cwd: elsewhere });
    const ready = await hydfsd.ready();
    expect(ready).toMatchObject({ event: "ready", service: "hydfsd", version: VERSION, host: host(1), view_current: true });
    expect(existsSync(join(nodeDir, "data", "hydfs"))).toBe(true);
    expect(existsSync(join(elsewhere, "data"))).toBe(false);
    for (const line of hydfsd.err.split("\n").filter((l) => l && !l.startsWith(" ")))
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR|DEBUG) +\[hydfsd\] /);
    const metrics = await (await fetch(`http://${host(1)}:10010/metrics`)).text();
    expect(metrics).toContain(`hydfsd_build_info{version="${VERSION}"} 1`);
    expect(metrics).toContain("hydfs_"); // its own series are still there
  });

  test("hydfsd whose --host differs from its memberd's refuses to start and says why", async () => {
    const p = new Proc("hydfsd", ["--config", config, "--host", host(9)]);
    expect(await p.exit()).toBe(1);
    expect(p.err).toContain(`hydfsd host ${host(9)} differs from this node's memberd (host ${host(1)}`);
    expect(p.out).toBe("");
  });

  test("rainstormd that would follow another leader than its memberd's config implies refuses to start", async () => {
    const p = new Proc("rainstormd", ["--config", config, "--introducer", `${host(5)}:6000`]);
    expect(await p.exit()).toBe(1);
    expect(p.err).toContain(`would follow leader ${host(5)}, but this node's memberd's config implies leader ${host(1)}`);
  });

  test("a port in use: the message names the setting, the address and the port", async () => {
    const p = new Proc("hydfsd", ["--config", config]);
    expect(await p.exit()).toBe(1);
    expect(p.err).toContain(`ports.hydfs 10010 on ${host(1)} is in use`);

    const udp = await Bun.udpSocket({ hostname: host(2), port: 5000 });
    const http = Bun.serve({ hostname: host(3), port: 8080, fetch: () => new Response("taken") });
    try {
      const a = new Proc("memberd", ["--config", nodeConfig(join(root, "node2"), { host: host(2), is_introducer: true, introducers: [], data_dir: "data" })]);
      const b = new Proc("memberd", ["--config", nodeConfig(join(root, "node3"), { host: host(3), is_introducer: true, introducers: [], data_dir: "data" })]);
      expect(await a.exit()).toBe(1);
      expect(a.err).toContain(`ports.udp 5000 on ${host(2)} is in use`);
      expect(a.err).not.toContain("bind EADDRINUSE");
      expect(await b.exit()).toBe(1);
      expect(b.err).toContain(`ports.http 8080 on ${host(3)} is in use`);
    } finally {
      udp.close();
      http.stop(true);
    }
  });

  test("rainstormd without its operators directory refuses to start, and no word of npm", async () => {
    const dir = join(root, "node4");
    const p = new Proc("rainstormd", [
      "--config",
      nodeConfig(dir, { host: host(4), introducers: [`${host(1)}:6000`], data_dir: "data", rainstorm: { ops_dir: "ops-missing" } }),
    ]);
    expect(await p.exit()).toBe(1);
    expect(p.err).toContain(`rainstorm.ops_dir ${join(dir, "ops-missing")} is not a directory`);
    expect(p.err).not.toMatch(/npm/i);
  });
});

describe("a memberd whose introducer does not answer", () => {
  test("says so, keeps retrying, prints no ready line; once the introducer is up it joins and prints it", async () => {
    const joiner = new Proc("memberd", [
      "--config",
      nodeConfig(join(root, "node7"), { host: host(7), introducers: [`${host(8)}:6000`], data_dir: "data", join_retry_ms: 200 }),
    ]);
    await waitFor(() => joiner.err.includes("not ready until an introducer answers"), scaled(10_000), `memberd to say it waits (stderr: ${joiner.err})`);
    await Bun.sleep(500);
    expect(joiner.out).toBe("");
    expect(joiner.proc.exitCode).toBeNull();
    const introducer = new Proc("memberd", [
      "--config",
      nodeConfig(join(root, "node8"), { host: host(8), is_introducer: true, introducers: [], data_dir: "data" }),
    ]);
    await introducer.ready();
    const ready = await joiner.ready();
    expect(ready.id).toStartWith(`${host(7)}:5000@`);
    expect(joiner.err).toContain(`joined through introducer ${host(8)}:6000`);
  });
});
