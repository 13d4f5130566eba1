/**
 * ctl as a client of a real cluster it knows almost nothing about: 3 nodes on testNet(87).k with a
 * secret, whose RainStorm leader is node 2 (config rainstorm.leader), not the first introducer.
 * The client config names one node (node 3); the secret comes from RAINSTORM_SECRET. ctl learns
 * the node names and the leader from the cluster (following the 421 of node 1's rainstormd),
 * kill_task honours --node, the config is looked up in its four places, and the shell at a
 * terminal has history (across sessions), Up-arrow recall and Tab completion.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { spawnPty } from "./testing_pty.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(60_000));

const CTL = resolve(import.meta.dir, "../ctl.ts");
const SECRET = "ctl-cluster-test-secret-87";

describe("ctl learns the cluster from one node", () => {
  const c = new LocalCluster({
    dir: tempPath("ctl-cluster-"),
    subnet: testNet(87),
    secret: SECRET,
    killOnExit: true,
    extra: { rainstorm: { leader: `${testNet(87)}.2` } },
  });
  const work = tempPath("ctl-cluster-work-");
  const home = join(work, "home");
  const cwd = join(work, "cwd");
  /** The whole client config: one node, no secret, no aliases, no leader. */
  const client = join(work, "client.json");

  /** The environment of a ctl run; an `undefined` in `extra` removes that variable. */
  function env(extra: Record<string, string | undefined> = {}): Record<string, string> {
    const all = {
      ...process.env,
      HOME: home,
      RAINSTORM_SECRET: SECRET,
      RAINSTORM_CONFIG: client,
      RAINSTORM_CTL_STATE: join(work, "state.json"),
      NO_COLOR: "1",
      ...extra,
    };
    return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
  }

  async function ctl(args: string[], extra: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
    const proc = Bun.spawn([process.execPath, CTL, ...args], { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: env(extra) });
    const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(30_000));
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    clearTimeout(timer);
    return { code, out, err };
  }

  /** The host of the node a command reached: its own member entry. */
  async function reached(args: string[], extra: Record<string, string | undefined> = {}): Promise<string> {
    const r = await ctl(["list_self", "--json", ...args], extra);
    expect([r.code, r.err]).toEqual([0, ""]);
    return (JSON.parse(r.out) as { id: string }).id.split(":")[0]!;
  }

  beforeAll(async () => {
    mkdirSync(cwd, { recursive: true });
    mkdirSync(home, { recursive: true });
    writeFileSync(client, JSON.stringify({ nodes: [c.host(3)] }));
    await c.up(3);
    await waitFor(async () => (await c.http.fetch(`http://${c.host(2)}:15000/tasks`, { timeoutMs: 1000 })).ok, scaled(30_000), "node 2's rainstormd to lead");
  });
  afterAll(async () => {
    await c.down(true);
    rmSync(work, { recursive: true, force: true });
  });

  test("the secret comes from RAINSTORM_SECRET: without it the cluster refuses ctl", async () => {
    const r = await ctl(["list_mem"], { RAINSTORM_SECRET: "" });
    expect(r.code).toBe(1);
    expect(r.err).toContain("(HTTP 401)");
    expect((await ctl(["list_mem"])).code).toBe(0);
  });

  test("nodes: names 01..03 by host order, the states, and the leader found through node 1's 421", async () => {
    const r = await ctl(["nodes", "--json"]);
    expect([r.code, r.err]).toEqual([0, ""]);
    const data = JSON.parse(r.out);
    expect(data.names_from).toBe("cluster");
    expect(data.asked).toBe(c.host(3));
    expect(data.leader).toBe(c.host(2));
    expect(data.nodes.map((n: { names: string[]; host: string; state: string; leader: boolean }) => [n.names.join(","), n.host, n.state, n.leader])).toEqual([
      ["01", c.host(1), "alive", false],
      ["02", c.host(2), "alive", true],
      ["03", c.host(3), "alive", false],
    ]);
    const human = await ctl(["nodes"]);
    expect(human.out).toContain(`RainStorm leader: ${c.host(2)}`);
    expect(human.out).toMatch(new RegExp(`^02 +${c.host(2).replaceAll(".", "\\.")} +alive +leader$`, "m"));
  });

  test("--node takes a learned name (1, 01), an address, or is refused listing the names", async () => {
    expect(await reached([])).toBe(c.host(3));
    expect(await reached(["--node", "1"])).toBe(c.host(1));
    expect(await reached(["--node", "02"])).toBe(c.host(2));
    expect(await reached(["--node", c.host(1)])).toBe(c.host(1));
    const bad = await ctl(["list_self", "--node", "7"]);
    expect(bad.code).toBe(1);
    expect(bad.err.trim()).toBe(
      `error: --node "7": no such node; the cluster's members by host order are 01=${c.host(1)}, 02=${c.host(2)}, 03=${c.host(3)} (see ctl nodes); or give an IPv4 address or a host name`,
    );
  });

  test("leader commands find the leader without being told: from the cluster, or by following a 421 once", async () => {
    // No --node: node 3's memberd names node 1 as the introducer, node 1's rainstormd answers 421 naming node 2.
    const tasks = await ctl(["list_tasks"]);
    expect([tasks.code, tasks.err, tasks.out.trim()]).toEqual([0, "", "no running tasks"]);
    // --node 01 (not the leader): the 421 is followed too.
    expect((await ctl(["list_tasks", "--node", "01", "--json"])).out).toContain('"tasks": []');
    // A config that names the wrong leader is corrected by the cluster the same way.
    const wrong = join(work, "wrong-leader.json");
    writeFileSync(wrong, JSON.stringify({ nodes: [c.host(3)], rainstorm: { leader: c.host(3) } }));
    expect((await ctl(["list_tasks", "--config", wrong])).code).toBe(0);
  });

  test("kill_task: the task's node may be a learned name, and --node is honoured", async () => {
    const leader = await ctl(["kill_task", "02", "999999"]);
    expect(leader.code).toBe(1);
    expect(leader.err.trim()).toBe(`error: ${c.host(2)}: no running task with pid 999999 on node ${c.host(2)} (see list_tasks) (HTTP 404)`);
    // Asked through node 1: redirected to the leader, same answer.
    expect((await ctl(["kill_task", "02", "999999", "--node", "01"])).err).toContain(`no running task with pid 999999 on node ${c.host(2)}`);
    // Asked through a node that does not exist: ctl goes there (and fails there), not to the leader.
    const elsewhere = await ctl(["kill_task", c.host(2), "999999", "--node", `${testNet(87)}.250`, "--timeout", "1000"]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.err).toContain(`rainstormd at ${testNet(87)}.250:15000 unreachable`);
  });

  test("config lookup: --config, then RAINSTORM_CONFIG, then ./config.json, then ~/.config/rainstorm/config.json", async () => {
    const flag = join(work, "flag.json");
    writeFileSync(flag, JSON.stringify({ nodes: [c.host(1)] }));
    const homeConfig = join(home, ".config", "rainstorm", "config.json");
    mkdirSync(join(homeConfig, ".."), { recursive: true });
    writeFileSync(homeConfig, JSON.stringify({ introducers: [`${c.host(2)}:6000`] }));
    writeFileSync(join(cwd, "config.json"), JSON.stringify({ aliases: { "01": c.host(1) } }));
    try {
      expect(await reached(["--config", flag])).toBe(c.host(1));
      expect(await reached([])).toBe(c.host(3)); // RAINSTORM_CONFIG
      expect(await reached([], { RAINSTORM_CONFIG: undefined })).toBe(c.host(1)); // ./config.json
      rmSync(join(cwd, "config.json"));
      expect(await reached([], { RAINSTORM_CONFIG: undefined })).toBe(c.host(2)); // ~/.config/rainstorm/config.json
    } finally {
      rmSync(join(cwd, "config.json"), { force: true });
      rmSync(homeConfig, { force: true });
    }
  });

  test("shell at a terminal: Up recalls the last command (also from an earlier session), Tab completes, history is kept", async () => {
    const historyFile = join(home, ".rainstorm", "ctl_history");
    rmSync(historyFile, { force: true });
    const sh = spawnPty([process.execPath, CTL, "shell"], { env: env(), cwd });
    await sh.waitFor(/ctl> $/);
    let mark = sh.output().length;
    sh.type("display_protocol\r");
    await sh.waitFor(/protocol pingack[^]*ctl> $/, mark);
    // Up then Enter runs it again, instead of sending ^[[A as a command.
    mark = sh.output().length;
    sh.type("\x1b[A");
    await sh.waitFor(/display_protocol/, mark);
    sh.type("\r");
    const again = await sh.waitFor(/protocol pingack[^]*ctl> $/, mark);
    expect(again).not.toContain("unknown command");
    expect(again).not.toContain("^[[A");
    // Tab completes a unique prefix: "list_se" -> "list_self ".
    mark = sh.output().length;
    sh.type("list_se\t");
    await sh.waitFor(/list_self $/, mark);
    sh.type("--json\r");
    await sh.waitFor(new RegExp(`"id": "${c.host(3).replace(/\./g, "\\.")}:5000@[^]*ctl> $`), mark);
    // Ctrl-C clears the line being typed; Ctrl-D leaves.
    mark = sh.output().length;
    sh.type("bogus-half-typed\x03");
    await sh.waitFor(/\^C\r?\n[^]*ctl> $/, mark);
    sh.type("\x04");
    expect(await sh.exited()).toBe(0);
    expect(sh.output()).not.toContain('unknown command "bogus-half-typed"');
    expect(readFileSync(historyFile, "utf8").split("\n").filter(Boolean)).toEqual(["display_protocol", "list_self --json"]);

    // A new session starts with that history: Up Up is display_protocol.
    const next = spawnPty([process.execPath, CTL, "shell", "--json"], { env: env(), cwd });
    await next.waitFor(/ctl> $/);
    mark = next.output().length;
    next.type("\x1b[A\x1b[A");
    await next.waitFor(/display_protocol/, mark);
    next.type("\r");
    await next.waitFor(/"protocol": "pingack"[^]*ctl> $/, mark);
    next.type("exit\r");
    expect(await next.exited()).toBe(0);
    expect(existsSync(historyFile)).toBe(true);
  });

  test("shell with piped commands reads plain lines (no prompt, no escape codes)", async () => {
    const proc = Bun.spawn([process.execPath, CTL, "shell", "--node", "02"], {
      cwd,
      stdin: new Blob(["list_self --json\nexit\n"]),
      stdout: "pipe",
      stderr: "pipe",
      env: env(),
    });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect([await proc.exited, err]).toEqual([0, ""]);
    expect(out).not.toContain("ctl>");
    expect(out).not.toContain("\u001B");
    expect(JSON.parse(out).id.startsWith(`${c.host(2)}:`)).toBe(true);
  });
});
