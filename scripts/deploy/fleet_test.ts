/**
 * The deployment, for real: `npm run bundle`'s tarball, deployed with scripts/deploy.ts over ssh
 * to 4 "machines" (network namespaces at 127.1.0.1-4, each with its own sshd and a mount
 * namespace that hides this repository: the nodes run from what deploy copied), ctl in a fifth
 * namespace with a client config. Then App 1 exactly-once equals the reference, a stopped node
 * is listed `left` and rejoins when started, a rolling restart loses no HyDFS file, and a node's
 * binaries answer --version and refuse an unknown flag.
 *
 * Needs root (CI is root); elsewhere it is skipped with the reason. Everything it makes (the
 * namespaces with every process in them, the temp folders) goes in afterAll, and a fleet left
 * over by a killed run is removed by the next one (scripts/deploy/fleet.ts).
 * By hand: sudo node_modules/.bin/bun test scripts/deploy/fleet_test.ts
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseCsvLine } from "../../ops/csv.ts";
import { countViolations } from "../../services/testing/rainstorm_client.ts";
import { Fleet, fleetUnsupported } from "./fleet.ts";
import { scaled } from "../../services/testing/time.ts";

setDefaultTimeout(scaled(150_000));

const ROOT = resolve(import.meta.dir, "../..");
const NODES = 4;
const PATTERN = "SIGN_";
const COL = 6;
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

const unsupported = await fleetUnsupported();
if (unsupported) console.warn(`fleet_test: skipped: ${unsupported}`);

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function run(cmd: string[], opts: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<Ran> {
  const proc = Bun.spawn(cmd, { cwd: opts.cwd ?? ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...opts.env } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(opts.timeoutMs ?? 120_000));
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out, err };
}

const sha256 = (bytes: Uint8Array | string) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

describe.skipIf(unsupported !== undefined)("deploy to a fleet of network namespaces (127.1.0.1-4, ctl on 127.1.0.5)", () => {
  let tmp = "";
  let fleet: Fleet;
  let tarball = "";
  let hostsFile = "";
  const figures: Record<string, string> = {};

  /** scripts/deploy.ts in the client namespace (where ssh reaches the nodes). */
  const deploy = ([verb, ...rest]: string[], timeoutMs = 150_000) =>
    run(fleet.inNs(fleet.state.clientNs, [process.execPath, join(ROOT, "scripts", "deploy.ts"), verb!, "--hosts", hostsFile, ...rest]), { timeoutMs });
  /**
   * The bundle's ctl on the client machine: it runs in its folder, which holds the client
   * config.json (and its HOME is the test's, for ctl's client state).
   */
  const ctl = (args: string[], timeoutMs = 60_000) =>
    run(fleet.inNs(fleet.state.clientNs, [join(fleet.clientDir, "bin", "ctl"), ...args]), {
      cwd: fleet.clientDir,
      timeoutMs,
      env: { RAINSTORM_CONFIG: "", HOME: join(tmp, "home") },
    });
  const ok = (r: Ran, what: string) => {
    if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out}\n${r.err}`);
    return r.out;
  };
  const members = async (node: string) =>
    JSON.parse(ok(await ctl(["list_mem", "--node", node, "--json"]), `ctl list_mem --node ${node}`)).members as { id: string; state: string }[];

  beforeAll(async () => {
    const t0 = performance.now();
    tmp = mkdtempSync(join(tmpdir(), "rs-fleet-test-"));
    const b = await run([process.execPath, join(ROOT, "scripts", "bundle.ts"), "--out", join(tmp, "dist"), "--compress", "gzip"], { timeoutMs: 120_000 });
    ok(b, "bun scripts/bundle.ts");
    tarball = b.out.trim().split("\n").at(-1)!;
    figures.bundle = b.out.trim().split("\n").slice(-3, -1).join("; ");
    fleet = await Fleet.up({ dir: join(tmp, "fleet"), nodes: NODES });
    writeFileSync(join(tmp, "fleet", "secret"), `${crypto.randomUUID()}${crypto.randomUUID()}\n`, { mode: 0o600 });
    hostsFile = fleet.state.hostsFile;
    writeFileSync(hostsFile, `${readFileSync(hostsFile, "utf8")}secret_file=secret\n`);
    // The client machine: the unpacked bundle and a client config (from deploy), nothing else.
    ok(await run(["tar", "-xzf", tarball, "-C", fleet.clientDir, "--strip-components=1"]), "unpacking the bundle for the client");
    ok(await deploy(["client-config", "--out", join(fleet.clientDir, "config.json")]), "deploy.ts client-config");
    figures.setup = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  }, scaled(150_000));

  afterAll(async () => {
    if (Object.keys(figures).length) console.log(`fleet_test figures: ${JSON.stringify(figures, null, 1)}`);
    await fleet?.down(true);
    if (tmp && !process.env.RAINSTORM_KEEP_TEST_DIRS) rmSync(tmp, { recursive: true, force: true });
  }, scaled(60_000));

  test("deploy.ts up: 4 nodes that hold only the unpacked bundle and their config join", async () => {
    const r = await deploy(["up", "--bundle", tarball, "--timeout", "90"]);
    ok(r, "deploy.ts up");
    const joined = /cluster of 4 nodes joined ([\d.]+) s/.exec(r.out);
    expect(joined).not.toBeNull();
    figures.join = `${joined![1]} s from the first start to all 4 joined`;
    const bundleEntries = readdirSync(join(tmp, "dist", "bundle", readdirSync(join(tmp, "dist", "bundle"))[0]!)).sort();
    for (let k = 1; k <= NODES; k++) {
      const entries = readdirSync(fleet.nodeDir(k)).sort();
      expect(entries).toEqual([...new Set([...bundleEntries, "config.json", "var"])].sort());
      const config = readFileSync(join(fleet.nodeDir(k), "config.json"), "utf8");
      expect(JSON.parse(config)).toMatchObject({ host: fleet.address(k), introducers: [`${fleet.address(1)}:6000`], is_introducer: k === 1 });
      // 5 lines, and one more for the secret.
      expect(config.trimEnd().split("\n").length).toBe(6);
    }
    // The nodes run the copied binary, and this repository (with its bun) is out of their sight.
    const where = ok(
      await deploy([
        "run",
        "--",
        "sh",
        "-c",
        `readlink /proc/$(cat var/run/memberd.pid)/exe; test -e ${ROOT}/package.json && echo repo-visible || echo repo-hidden`,
      ]),
      "deploy.ts run",
    );
    expect(where.match(/\/opt\/rainstorm\/bin\/rainstorm/g)?.length).toBe(NODES);
    expect(where.match(/repo-hidden/g)?.length).toBe(NODES);
    expect(where).not.toContain("repo-visible");
    const status = await deploy(["status"]);
    ok(status, "deploy.ts status");
    expect(status.out.match(/4 of 4 hosts alive/g)?.length).toBe(NODES);
  });

  const LINES = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8")
    .split("\n")
    .filter((l, i, all) => i < all.length - 1 || l !== "");
  const reference = new Map<string, number>();
  for (const line of LINES) if (line.includes(PATTERN)) reference.set(parseCsvLine(line)[COL] ?? "", (reference.get(parseCsvLine(line)[COL] ?? "") ?? 0) + 1);
  const files = new Map<string, string>(); // HyDFS name -> sha256 of its content

  test("ctl in the client namespace: App 1 exactly-once gives exactly the reference counts", async () => {
    ok(await ctl(["create", join(ROOT, "testdata", "dataset1.csv"), "dataset1.csv"]), "ctl create");
    files.set("dataset1.csv", sha256(readFileSync(join(ROOT, "testdata", "dataset1.csv"))));
    const r = await ctl(
      [
        "rainstorm",
        "2",
        "3",
        "-stage-config-map",
        `stage0 grep-wrapper ${PATTERN} ${COL} stage1 aggregate-wrapper ${COL}`,
        "dataset1.csv",
        "app1.txt",
        "true",
        "false",
        "0",
        "0",
        "0",
      ],
      120_000,
    );
    ok(r, "ctl rainstorm (App 1, exactly-once)");
    expect(r.err).toContain("done");
    const outputs = r.out.split("\n").filter(Boolean);
    ok(await ctl(["get", "app1.txt", join(tmp, "app1.txt")]), "ctl get app1.txt");
    const stored = readFileSync(join(tmp, "app1.txt"), "utf8").split("\n").filter(Boolean);
    expect(countViolations(outputs, stored, reference)).toEqual([]);
    expect(reference.size).toBeGreaterThan(1);
    files.set("app1.txt", sha256(readFileSync(join(tmp, "app1.txt"))));
  });

  let stoppedId = "";
  test("deploy.ts stop (SIGTERM) of one host: its peers list it `left`", async () => {
    const target = fleet.address(3);
    stoppedId = (await members("01")).find((m) => m.id.startsWith(`${target}:`))!.id;
    // Watch from node 1 while the stop runs: `left` stays listed for t_cleanup_ms only.
    const seen = new Set<string>();
    // Until the node is seen left (or failed), with its own deadline.
    const watcher = (async () => {
      const until = Date.now() + 20_000;
      while (Date.now() < until) {
        const r = await ctl(["list_mem", "--node", "01", "--json"], 5000).catch(() => undefined);
        if (r?.code === 0) for (const m of JSON.parse(r.out).members as { id: string; state: string }[]) if (m.id === stoppedId) seen.add(m.state);
        if (seen.has("left") || seen.has("failed")) break;
        await Bun.sleep(50);
      }
    })();
    ok(await deploy(["stop", "--only", target]), "deploy.ts stop");
    await watcher;
    expect([...seen]).toContain("left");
    expect([...seen]).not.toContain("failed");
  });

  test("deploy.ts start of the stopped host: it rejoins under a new id", async () => {
    const target = fleet.address(3);
    const r = await deploy(["start", "--only", target, "--timeout", "60"]);
    ok(r, "deploy.ts start");
    const m = /joined ([\d.]+) s after the start/.exec(r.out);
    expect(m).not.toBeNull();
    figures.rejoin = `${m![1]} s from deploy.ts start to every node listing it alive`;
    for (const node of ["01", "02", "04"]) {
      const list = await members(node);
      const alive = list.filter((x) => x.state === "alive");
      expect(alive.length).toBe(NODES);
      const again = alive.find((x) => x.id.startsWith(`${target}:`));
      expect(again).toBeDefined();
      expect(again!.id).not.toBe(stoppedId);
    }
  });

  test("deploy.ts rolling-restart: one node at a time, and every HyDFS file intact afterwards", async () => {
    // A few more files: small, several 4 MiB chunks, and one with appends.
    for (const [name, size] of [
      ["small.bin", 1000],
      ["chunks.bin", 9 * 1024 * 1024 + 17],
    ] as const) {
      const bytes = crypto.getRandomValues(new Uint8Array(size));
      writeFileSync(join(tmp, name), bytes);
      ok(await ctl(["create", join(tmp, name), name]), `ctl create ${name}`);
      files.set(name, sha256(bytes));
    }
    writeFileSync(join(tmp, "log-part"), "line one\n");
    ok(await ctl(["create", join(tmp, "log-part"), "appended.txt"]), "ctl create appended.txt");
    writeFileSync(join(tmp, "log-part"), "line two\n");
    ok(await ctl(["append", join(tmp, "log-part"), "appended.txt"]), "ctl append appended.txt");
    files.set("appended.txt", sha256("line one\nline two\n"));

    // An upgrade: push the bundle again (swapped in under the running daemons), then restart.
    ok(await deploy(["push", "--bundle", tarball]), "deploy.ts push (again)");
    const r = await deploy(["rolling-restart", "--timeout", "90"], 240_000);
    ok(r, "deploy.ts rolling-restart");
    const restarted = [
      ...r.out.matchAll(/(\S+): restarted: rejoined ([\d.]+) s after its stop \(([\d.]+) s after its start\), HyDFS re-replicated ([\d.]+) s later/g),
    ];
    expect(restarted.map((x) => x[1])).toEqual([2, 3, 4, 1].map((k) => fleet.address(k)));
    figures.rolling = restarted.map((x) => `${x[1]} rejoined ${x[3]} s after start (${x[2]} s after stop), re-replicated +${x[4]} s`).join("; ");
    figures.rollingTotal = /done in ([\d.]+ s)/.exec(r.out)?.[1] ?? "?";
    for (const [name, want] of files) {
      ok(await ctl(["get", name, join(tmp, `got-${name}`)]), `ctl get ${name}`);
      expect(`${name} ${sha256(readFileSync(join(tmp, `got-${name}`)))}`).toBe(`${name} ${want}`);
    }
    const status = await deploy(["status"]);
    ok(status, "deploy.ts status after the rolling restart");
    // Every daemon runs the pushed files, not the ones they replaced.
    const exes = ok(
      await deploy(["run", "--", "sh", "-c", "for d in memberd hydfsd rainstormd; do readlink /proc/$(cat var/run/$d.pid)/exe; done"]),
      "deploy.ts run readlink",
    );
    expect(exes.match(/^\/opt\/rainstorm\/bin\/rainstorm$/gm)?.length).toBe(3 * NODES);
  });

  test("a node's programs answer --version and refuse an unknown flag (exit 2)", async () => {
    const node = fleet.address(2);
    const programs = ["memberd", "hydfsd", "rainstormd", "ctl"];
    const got: string[] = [];
    for (const p of programs) {
      const v = await deploy(["run", "--only", node, "--", `bin/${p}`, "--version"]);
      got.push(`${p} --version: exit ${v.code}: ${v.out.split("\n")[1] ?? ""}`);
      const bad = await deploy(["run", "--only", node, "--", `bin/${p}`, "--no-such-flag"]);
      got.push(`${p} --no-such-flag: exit ${bad.code}${bad.out.includes("--no-such-flag") ? ", names the flag" : `: ${bad.out}`}`);
    }
    expect(got).toEqual(programs.flatMap((p) => [`${p} --version: exit 0: ${p} ${VERSION}`, `${p} --no-such-flag: exit 2, names the flag`]));
    // deploy.ts itself refuses an unknown flag too.
    const own = await deploy(["status", "--no-such-flag"]);
    expect(own.code).toBe(2);
  });

  test("deploy.ts logs shows each daemon's log", async () => {
    const r = await deploy(["logs", "--only", "1", "--lines", "5"]);
    ok(r, "deploy.ts logs");
    for (const d of ["memberd", "hydfsd", "rainstormd"]) expect(r.out).toContain(`var/log/${d}.log`);
  });
});
