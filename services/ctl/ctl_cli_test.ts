/**
 * ctl without a cluster: where the config comes from and what it says about the cluster, node
 * names from a member list, the leader named by a 421, --version, unknown flags (exit 2), help
 * without colour or padding off a terminal (and with colour, at the terminal's width, on one),
 * and the shell's completion and history.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { colorFor, renderHelp, stripAnsi, unknownFlag, widthFor, wrapWords } from "../shared/cli.ts";
import { ClusterHttp } from "../shared/http.ts";
import { tempPath } from "../testing/cluster.ts";
import { defaultConfigPaths, loadClientConfig } from "./client_config.ts";
import { type Ctx, nodeHost, reachableSeed } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";
import { redirectedLeader } from "./leader.ts";
import { compareHosts, memberHost, namesFromMembers } from "./node_names.ts";
import { hydfsCommands } from "./hydfs.ts";
import { memberCommands } from "./member.ts";
import { rainstormCommands } from "./rainstorm.ts";
import { jobCommands } from "./jobs.ts";
import { completer, HISTORY_MAX, loadHistory, saveHistory } from "./shell.ts";
import { spawnPty } from "./testing_pty.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

const CTL = resolve(import.meta.dir, "../ctl.ts");
const PKG_VERSION = (JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8")) as { version: string }).version;
const dir = tempPath("ctl-cli-test-");
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ctl(args: string[], env: Record<string, string | undefined> = {}, cwd = dir): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, CTL, ...args], {
    cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, HOME: join(dir, "home"), RAINSTORM_CONFIG: "", ...env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(20_000));
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out, err };
}

function write(path: string, value: unknown): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe("config lookup: --config, then RAINSTORM_CONFIG, then ./config.json, then ~/.config/rainstorm/config.json", () => {
  const cwd = join(dir, "cwd");
  const home = join(dir, "lookup-home");
  const flagFile = write(join(dir, "flag.json"), { nodes: ["10.0.0.1"] });
  const envFile = write(join(dir, "env.json"), { nodes: ["10.0.0.2"] });
  const cwdFile = join(cwd, "config.json");
  const homeFile = join(home, ".config", "rainstorm", "config.json");

  test("each source in turn, the first that applies wins", () => {
    write(cwdFile, { nodes: ["10.0.0.3"] });
    write(homeFile, { nodes: ["10.0.0.4"] });
    const env = { RAINSTORM_CONFIG: envFile };
    expect(loadClientConfig(flagFile, { env, home, cwd }).seeds).toEqual(["10.0.0.1"]);
    expect(loadClientConfig(undefined, { env, home, cwd })).toMatchObject({ path: envFile, seeds: ["10.0.0.2"] });
    expect(loadClientConfig(undefined, { env: {}, home, cwd })).toMatchObject({ path: cwdFile, seeds: ["10.0.0.3"] });
    rmSync(cwdFile);
    expect(loadClientConfig(undefined, { env: {}, home, cwd })).toMatchObject({ path: homeFile, seeds: ["10.0.0.4"] });
    rmSync(homeFile);
    const none = loadClientConfig(undefined, { env: {}, home, cwd });
    expect(none.path).toBeUndefined();
    expect(none.tried).toEqual([cwdFile, homeFile]);
    expect(none.seeds).toEqual(["127.0.0.1"]);
    expect(defaultConfigPaths("/h")).toEqual(["./config.json", "/h/.config/rainstorm/config.json"]);
  });

  test("a file named by --config or RAINSTORM_CONFIG must exist", () => {
    expect(() => loadClientConfig(join(dir, "missing.json"), { env: {}, home, cwd })).toThrow(/config .*missing\.json: cannot read/);
    expect(() => loadClientConfig(undefined, { env: { RAINSTORM_CONFIG: join(dir, "missing.json") }, home, cwd })).toThrow("(named by RAINSTORM_CONFIG)");
  });

  /** [config file, the nodes ctl tries without --node, in order] */
  const SEEDS: [Record<string, unknown>, string[]][] = [
    [{ nodes: ["10.0.0.5", "node6.example.com"] }, ["10.0.0.5", "node6.example.com"]],
    [{ introducers: ["10.0.0.1:6000", "10.0.0.2:6000"] }, ["10.0.0.1", "10.0.0.2"]],
    // A node's own config works as a client config: alias 01 first (as before), then its host, then the introducers.
    [{ host: "10.0.0.7", introducers: ["10.0.0.1:6000"], aliases: { "01": "10.0.0.1", "02": "10.0.0.2" } }, ["10.0.0.1", "10.0.0.7"]],
    [{ aliases: { vm2: "10.0.0.2", vm1: "10.0.0.1" } }, ["10.0.0.1"]],
    [{ nodes: ["10.0.0.9"], introducers: ["10.0.0.1:6000"] }, ["10.0.0.9", "10.0.0.1"]],
    [{ cluster_secret: "s" }, ["127.0.0.1"]],
  ];
  for (const [file, seeds] of SEEDS) {
    test(`${JSON.stringify(file)} -> ${seeds.join(", ")}`, () => {
      expect(loadClientConfig(write(join(dir, "seeds.json"), file), { env: {} }).seeds).toEqual(seeds);
    });
  }

  test("aliases and rainstorm.leader count only when the file sets them; the secret comes from RAINSTORM_SECRET too", () => {
    const bare = loadClientConfig(write(join(dir, "bare.json"), { nodes: ["10.0.0.5"] }), { env: { RAINSTORM_SECRET: "from-env" } });
    expect([bare.aliases, bare.leader, bare.cfg.cluster_secret]).toEqual([undefined, undefined, "from-env"]);
    const full = loadClientConfig(write(join(dir, "full.json"), { aliases: { a: "10.0.0.1" }, rainstorm: { leader: "10.0.0.3" }, cluster_secret: "file" }), {
      env: {},
    });
    expect([full.aliases, full.leader, full.cfg.cluster_secret]).toEqual([{ a: "10.0.0.1" }, "10.0.0.3", "file"]);
  });

  test("bad nodes and bad settings name the file and the field", () => {
    for (const nodes of [[], ["10.0.0.300"], "10.0.0.1", [5], ["a b"]]) {
      expect(() => loadClientConfig(write(join(dir, "bad.json"), { nodes }), { env: {} })).toThrow(
        `bad.json: invalid configuration: nodes: expected a list of node addresses`,
      );
    }
    expect(() => loadClientConfig(write(join(dir, "bad.json"), { nodez: ["x"] }), { env: {} })).toThrow(
      /bad\.json: invalid configuration: nodez: unknown setting/,
    );
  });
});

describe("finding a node that answers", () => {
  const ctxFor = (file: Record<string, unknown> | undefined): Ctx => {
    const client =
      file === undefined
        ? { ...loadClientConfig(undefined, { env: {}, home: join(dir, "nohome"), cwd: join(dir, "nocwd") }), seeds: [`${testNet(87)}.251`] }
        : loadClientConfig(write(join(dir, "probe.json"), file), { env: {} });
    return { cfg: client.cfg, host: "", json: false, timeoutMs: 1000, http: new ClusterHttp(""), client };
  };

  test("one node in the config: used as it is, nothing asked", async () => {
    expect(await reachableSeed(ctxFor({ nodes: [`${testNet(87)}.251`] }))).toBe(`${testNet(87)}.251`);
  });

  test("the first of several that answers", async () => {
    const server = Bun.serve({ hostname: `${testNet(87)}.252`, port: 0, fetch: () => Response.json({ ok: true }) });
    try {
      const ctx = ctxFor({ nodes: [`${testNet(87)}.251`, `${testNet(87)}.252`], ports: { http: server.port } });
      expect(await reachableSeed(ctx)).toBe(`${testNet(87)}.252`);
    } finally {
      server.stop(true);
    }
  });

  test("none answers: the error names each and why", async () => {
    const err = await reachableSeed(ctxFor({ nodes: [`${testNet(87)}.251`, `${testNet(87)}.253`] })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CtlError);
    const net = testNet(87).replaceAll(".", "\\.");
    expect((err as Error).message).toMatch(
      new RegExp(`^no node of .*probe\\.json answers: memberd at ${net}\\.251:8080 \\(.+\\), ${net}\\.253:8080 \\(.+\\)$`),
    );
  });

  test("no config file and the default node does not answer: the message lists the paths tried and a minimal config", async () => {
    const err = await reachableSeed(ctxFor(undefined)).catch((e: Error) => e);
    expect((err as Error).message).toContain(
      `no config file found (tried ${join(dir, "nocwd", "config.json")}, ${join(dir, "nohome", ".config", "rainstorm", "config.json")}; --config and RAINSTORM_CONFIG not given)`,
    );
    expect((err as Error).message).toContain(`{"nodes":["10.0.0.5"]} or {"introducers":["10.0.0.1:6000"]}`);
  });
});

describe("node names learned from the cluster", () => {
  test("members alive or suspected, by host order, 01..NN", () => {
    const members = [
      { id: "127.0.0.10:5000@3", state: "alive" },
      { id: "127.0.0.2:5000@1", state: "suspect" },
      { id: "127.0.0.9:5000@1", state: "failed" },
      { id: "127.0.0.2:5000@0", state: "left" },
      { id: "node-b.example.com:5000@1", state: "alive" },
      { id: "127.0.0.1:5000@7", state: "alive" },
    ];
    expect(namesFromMembers(members)).toEqual({ "01": "127.0.0.1", "02": "127.0.0.2", "03": "127.0.0.10", "04": "node-b.example.com" });
    const many = Array.from({ length: 120 }, (_, i) => ({ id: `10.0.${i >> 8}.${i & 255}:5000@1`, state: "alive" }));
    const names = namesFromMembers(many);
    expect([names["001"], names["120"], Object.keys(names).length]).toEqual(["10.0.0.0", "10.0.0.119", 120]);
  });

  test("hosts compare as numbers; member ids give their host", () => {
    expect(["10.0.0.10", "b.example", "10.0.0.9", "a.example", "9.0.0.0"].sort(compareHosts)).toEqual([
      "9.0.0.0",
      "10.0.0.9",
      "10.0.0.10",
      "a.example",
      "b.example",
    ]);
    expect(memberHost("127.0.0.1:5000@1795513617028")).toBe("127.0.0.1");
  });

  test("with aliases in the config, only they are names: anything else is refused before any connection", async () => {
    const client = loadClientConfig(write(join(dir, "aliases.json"), { aliases: { "01": `${testNet(87)}.251` } }), { env: {} });
    const ctx: Ctx = { cfg: client.cfg, host: "", json: false, timeoutMs: 300, http: new ClusterHttp(""), client };
    expect(await nodeHost(ctx, "1", "--node")).toBe(`${testNet(87)}.251`);
    expect(await nodeHost(ctx, "10.1.2.3", "--node")).toBe("10.1.2.3");
    await expect(nodeHost(ctx, "2", "--node")).rejects.toThrow('--node "2": expected an alias (01)');
  });

  test("without aliases a number asks the cluster, and a name it does not know is refused listing the names", async () => {
    const server = Bun.serve({
      hostname: `${testNet(87)}.252`,
      port: 0,
      fetch: () =>
        Response.json({
          count: 2,
          members: [
            { id: `${testNet(87)}.5:5000@1`, state: "alive" },
            { id: `${testNet(87)}.4:5000@1`, state: "alive" },
          ],
        }),
    });
    try {
      const client = loadClientConfig(write(join(dir, "learn.json"), { nodes: [`${testNet(87)}.252`], ports: { http: server.port } }), { env: {} });
      const ctx: Ctx = { cfg: client.cfg, host: "", json: false, timeoutMs: 1000, http: new ClusterHttp(""), client };
      expect(await nodeHost(ctx, "2", "kill_task node")).toBe(`${testNet(87)}.5`);
      expect(await nodeHost(ctx, "01", "kill_task node")).toBe(`${testNet(87)}.4`);
      await expect(nodeHost(ctx, "3", "kill_task node")).rejects.toThrow(
        `kill_task node "3": no such node; the cluster's members by host order are 01=${testNet(87)}.4, 02=${testNet(87)}.5`,
      );
      await expect(nodeHost(ctx, "0x7f.1", "--node")).rejects.toThrow('--node "0x7f.1": expected an alias (none in the config)');
    } finally {
      server.stop(true);
    }
  });
});

describe("the leader a 421 names", () => {
  const notLeader = (to: string) => new CtlHttpError("x", 421, { error: `this node is not the RainStorm leader; send jobs to ${to}` });
  test.each([
    [notLeader("127.0.0.2"), "127.0.0.1", "127.0.0.2"],
    [notLeader("node2.example.com"), "127.0.0.1", "node2.example.com"],
    [new CtlHttpError("x", 421, { error: "not the leader", leader: "10.0.0.3" }), "127.0.0.1", "10.0.0.3"],
    [notLeader("127.0.0.1"), "127.0.0.1", undefined], // itself: no loop
    [notLeader("a/b"), "127.0.0.1", undefined],
    [new CtlHttpError("x", 404, { error: "send jobs to 127.0.0.2" }), "127.0.0.1", undefined],
    [new CtlError("unreachable"), "127.0.0.1", undefined],
  ])("%#", (err, from, want) => expect(redirectedLeader(err, from)).toBe(want));
});

describe("--version and unknown flags", () => {
  test("--version prints `ctl <version>` and exits 0", async () => {
    for (const args of [["--version"], ["list_mem", "--version"]]) {
      const r = await ctl(args);
      expect([r.code, r.out, r.err]).toEqual([0, `ctl ${PKG_VERSION}\n`, ""]);
    }
  });

  /** [arguments, the line on stderr] */
  const REFUSED: [string[], string][] = [
    [["list_mem", "--bogus"], "error: unknown flag --bogus for ctl list_mem; it takes --node, --json, --config, --timeout (see ctl list_mem --help)"],
    [["list_mem", "--nod=1"], "error: unknown flag --nod for ctl list_mem; it takes --node, --json, --config, --timeout (see ctl list_mem --help)"],
    [["kill_task", "01", "5", "-x"], "error: unknown flag -x for ctl kill_task; it takes --node, --json, --config, --timeout (see ctl kill_task --help)"],
    [["--node", "02", "list_mem"], "error: unknown flag --node for ctl; flags go after the command (see ctl <command> --help)"],
    [
      ["rainstorm", "1", "1", "echo", "x", "a", "b", "false", "false", "0", "1", "2", "--rate=5"],
      "error: unknown flag --rate for ctl rainstorm; it takes --node, --json, --config, --timeout and the job's --rate-schedule (see ctl rainstorm --help)",
    ],
    [["shell", "--verbose"], "error: unknown flag --verbose for ctl shell; it takes --node, --json, --config, --timeout (see ctl shell --help)"],
    [["bogus"], 'error: unknown command "bogus"; commands are nodes, list_mem,'],
  ];
  for (const [args, line] of REFUSED) {
    test(`ctl ${args.join(" ")}: exit 2, naming it`, async () => {
      const r = await ctl(args, { RAINSTORM_CONFIG: write(join(dir, "unreachable.json"), { nodes: [`${testNet(87)}.251`] }) });
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err.startsWith(line)).toBe(true);
      expect(r.err.trim().split("\n").length).toBe(1);
    });
  }

  test("flags that exist in any spelling are taken: --no-json, --json=false, -h, a value after --", async () => {
    const kill = rainstormCommands.kill_task;
    expect(await unknownFlag(kill, ["--no-json", "--json=false", "--node", "x", "--timeout=5", "01", "5"])).toBeUndefined();
    expect(await unknownFlag(kill, ["-h"])).toBeUndefined();
    expect(await unknownFlag(kill, ["01", "5", "--", "--anything"])).toBeUndefined();
    expect(await unknownFlag(kill, ["--node", "--json", "--bogus"])).toBe("--bogus");
    expect(await unknownFlag(kill, ["--version"])).toBe("--version");
    expect(await unknownFlag(kill, ["--version"], true)).toBeUndefined();
  });

  test("a missing argument is a usage error too (exit 2), with the command's usage", async () => {
    const r = await ctl(["kill_task"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("USAGE ctl kill_task [options] <TARGET> <PID>");
    expect(r.err.trim().split("\n").at(-1)).toBe("error: Missing required positional argument: TARGET");
  });
});

describe("help", () => {
  const lines = (text: string) => text.split("\n");

  test("off a terminal: no colour codes, no line over 100 columns, no trailing blanks", async () => {
    for (const args of [["--help"], [], ["kill_task", "--help"], ["rainstorm", "--help"]]) {
      const r = await ctl(args);
      expect(r.code).toBe(0);
      expect(r.out).not.toContain("\u001B");
      expect(r.out).toContain("USAGE ctl");
      for (const line of lines(r.out)) {
        expect(line.length).toBeLessThanOrEqual(100);
        expect(line).toBe(line.trimEnd());
      }
    }
  });

  test("every command's description is there, whole, once wrapping is undone", async () => {
    const r = await ctl(["--help"]);
    const flat = r.out.replace(/\s+/g, " ");
    for (const cmd of Object.values({ ...memberCommands, ...hydfsCommands, ...rainstormCommands, ...jobCommands })) {
      expect(flat).toContain((cmd.meta as { description: string }).description.replace(/\s+/g, " "));
    }
  });

  test("on a terminal: colour, wrapped to the terminal's width; NO_COLOR turns colour off", async () => {
    for (const [noColor, cols] of [
      [undefined, 72],
      ["1", 60],
    ] as const) {
      const pty = spawnPty([process.execPath, CTL, "--help"], { env: { ...process.env, NO_COLOR: noColor, TERM: "xterm-256color" }, cols });
      expect(await pty.exited()).toBe(0);
      const out = pty.output().replace(/\r\n/g, "\n");
      expect(out.includes("\u001B[")).toBe(noColor === undefined);
      expect(stripAnsi(out)).toContain("COMMANDS");
      for (const line of lines(stripAnsi(out))) expect(line.length).toBeLessThanOrEqual(cols);
      expect(Math.max(...lines(stripAnsi(out)).map((l) => l.length))).toBeGreaterThan(cols - 15);
    }
  });

  test("renderHelp, colorFor, widthFor and wrapWords as tables", async () => {
    const plain = await renderHelp(memberCommands.list_mem, { color: false, width: 60 });
    expect(plain).not.toContain("\u001B");
    expect(Math.max(...lines(plain).map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(plain).toContain("  --node <node>        node to talk to:");
    const colored = await renderHelp(memberCommands.list_mem, { color: true, width: 60 });
    expect(colored).toContain("\u001B[36m--node <node>\u001B[39m");
    expect(stripAnsi(colored)).toBe(plain);
    expect(colorFor({ isTTY: true }, {})).toBe(true);
    expect(colorFor({ isTTY: false }, {})).toBe(false);
    expect(colorFor({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(colorFor({ isTTY: true }, { NO_COLOR: "" })).toBe(true);
    expect(colorFor({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(widthFor({ isTTY: false, columns: 300 })).toBe(100);
    expect(widthFor({ isTTY: true, columns: 300 })).toBe(300);
    expect(widthFor({ isTTY: true, columns: 10 })).toBe(40);
    expect(wrapWords("aa bb cc dd", 5)).toEqual(["aa bb", "cc dd"]);
    expect(wrapWords("a verylongword b", 4)).toEqual(["a", "verylongword", "b"]);
  });
});

describe("shell completion and history", () => {
  const commands = { ...memberCommands, ...hydfsCommands, ...rainstormCommands };
  const complete = completer(commands);

  test.each([
    ["list_t", ["list_tasks "], "list_t"],
    ["dis", ["display_protocol", "display_suspects"], "dis"],
    ["ex", ["exit "], "ex"],
    ["help multic", ["multicreate "], "multic"],
    ["list_mem --j", ["--json "], "--j"],
    ["kill_task 01 5 --no", ["--node "], "--no"],
    ["create a", [], "a"],
    ["zzz", [], "zzz"],
  ])("%p", (line, hits, on) => expect(complete(line)).toEqual([hits, on]));

  test("the first word offers every command", () => {
    const [all] = complete("");
    expect(all).toEqual(expect.arrayContaining([...Object.keys(commands), "help", "exit"]));
  });

  test("history: newest first in memory, oldest first on disk, at most HISTORY_MAX lines, mode 0600", () => {
    const path = join(dir, "hist", "ctl_history");
    expect(loadHistory(path)).toEqual([]);
    const many = Array.from({ length: HISTORY_MAX + 50 }, (_, i) => `cmd ${HISTORY_MAX + 49 - i}`);
    saveHistory(["list_mem ", ...many, "list_mem"], path);
    const onDisk = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(onDisk.length).toBe(HISTORY_MAX);
    expect(onDisk.at(-1)).toBe("list_mem");
    expect(onDisk[0]).toBe("cmd 51");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadHistory(path).slice(0, 2)).toEqual(["list_mem", `cmd ${HISTORY_MAX + 49}`]);
  });
});
