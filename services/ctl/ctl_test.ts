/**
 * ctl as users run it: a subprocess against a real memberd (in-process, testNet(24).1), one-shot and
 * through `shell` on stdin. Plus the shell tokenizer and key=value parsing as tables.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type RunningMemberd, startMemberd } from "../member/start.ts";
import { buildNodeConfig } from "../node_config.ts";
import { tempPath } from "../testing/cluster.ts";
import { makeLogger } from "../shared/log.ts";
import { CtlError } from "./errors.ts";
import { isHostname, resolveNodeName } from "./node_names.ts";
import { parseAssignments } from "./member.ts";
import { tokenize } from "./shell.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(30_000));

const CTL = resolve(import.meta.dir, "../ctl.ts");
const dir = tempPath("ctl-test-");
const configPath = join(dir, "config.json");

async function ctl(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, CTL, ...args, "--config", configPath], {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(20_000));
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out, err };
}

describe("ctl against a live memberd", () => {
  let daemon: RunningMemberd;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    const raw = { host: `${testNet(24)}.1`, is_introducer: true, introducers: [], data_dir: dir, aliases: { "01": `${testNet(24)}.1` } };
    writeFileSync(configPath, JSON.stringify(raw));
    daemon = await startMemberd(buildNodeConfig(raw), configPath, makeLogger("memberd-test", "silent"), () => {});
  });
  afterAll(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("list_mem --json prints the member list", async () => {
    const r = await ctl(["list_mem", "--json"]);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.out);
    expect(body.count).toBe(1);
    expect(body.members[0].id).toBe(daemon.daemon.node.id);
  });

  test("switch changes the protocol; a bad argument exits 1 with one error line", async () => {
    const ok = await ctl(["switch", "gossip", "nosuspect", "2s"]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("protocol gossip, suspicion disabled (suspicion_time 2000ms)");
    const bad = await ctl(["switch", "gossip", "sometimes"]);
    expect(bad.code).toBe(1);
    expect(bad.err.trim().split("\n").at(-1)).toBe('error: suspicion "sometimes": expected suspect or nosuspect');
  });

  test("set key=value validates on the server and names the knob", async () => {
    const bad = await ctl(["set", "t_fail_ms=fast"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("t_fail_ms: expected an integer");
    const ok = await ctl(["set", "t_fail_ms=1500", "--json"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).cluster.t_fail_ms).toBe(1500);
  });

  test("an unreachable node is a clear error within the timeout, not a hang", async () => {
    const t0 = performance.now();
    const r = await ctl(["list_mem", "--node", `${testNet(24)}.99`, "--timeout", "500"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("unreachable");
    expect(performance.now() - t0).toBeLessThan(scaled(10_000));
  });

  test("a node name that is neither an alias nor an address is refused before any connection, listing the aliases", async () => {
    for (const args of [
      ["list_mem", "--node", "99"],
      ["list_mem", "--node", "0x7f.1"],
      ["kill_task", "99", "123"],
    ]) {
      const r = await ctl(args);
      expect(r.code).toBe(1);
      const line = r.err.trim().split("\n").at(-1)!;
      expect(line).toContain(`"${args[0] === "kill_task" ? "99" : args[2]}": expected an alias (01), an IPv4 address`);
      expect(line).not.toContain("unreachable");
    }
  });

  test("shell runs the same commands from stdin, reports errors and goes on", async () => {
    const r = await ctl(["shell"], "display_protocol\nbogus\nswitch pingack suspect\ndisplay_protocol --json\nexit\nlist_mem\n");
    expect(r.code).toBe(0);
    expect(r.out).toContain("protocol gossip");
    expect(r.err).toContain('unknown command "bogus"');
    expect(r.out).toContain('"protocol": "pingack"');
    // Nothing after `exit` runs.
    expect(r.out).not.toContain("LAST UPDATE");
  });
});

describe("shell tokenizer", () => {
  const cases: [string, string[]][] = [
    ["list_mem", ["list_mem"]],
    ["  switch   gossip  suspect ", ["switch", "gossip", "suspect"]],
    [`rainstorm 2 3 -stage-config-map 'stage0 grep-wrapper "Sign Post" 4'`, ["rainstorm", "2", "3", "-stage-config-map", 'stage0 grep-wrapper "Sign Post" 4']],
    [`a "b c" d`, ["a", "b c", "d"]],
    [`a ""`, ["a", ""]],
    [`a\\ b`, ["a b"]],
    [`"x\\"y"`, ['x"y']],
  ];
  for (const [line, words] of cases) test(JSON.stringify(line), () => expect(tokenize(line)).toEqual(words));
  test("unterminated quote is an error", () => expect(() => tokenize(`a 'b`)).toThrow("unterminated ' quote"));
});

describe("set key=value parsing", () => {
  test("numbers, booleans and strings", () => {
    expect(parseAssignments(["t_fail_ms=1500", "suspicion=false", "protocol=gossip"])).toEqual({ t_fail_ms: 1500, suspicion: false, protocol: "gossip" });
  });
  test("a pair without = names itself", () => expect(() => parseAssignments(["t_fail_ms"])).toThrow('"t_fail_ms": expected key=value'));
});

describe("node names: an alias, an IPv4 dotted quad or a host name, nothing else", () => {
  const aliases = { "01": "127.0.0.1", "02": "127.0.0.2", vm3: "fa25-vm3.example.edu" };
  const ok: [string, string][] = [
    ["01", "127.0.0.1"],
    ["1", "127.0.0.1"], // "1" is alias 01
    ["02", "127.0.0.2"],
    ["vm3", "fa25-vm3.example.edu"],
    ["10.0.0.5", "10.0.0.5"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["localhost", "localhost"],
    ["node-1", "node-1"],
    ["fa25-cs425-a701.cs.illinois.edu", "fa25-cs425-a701.cs.illinois.edu"],
    ["1.2.3.example", "1.2.3.example"],
    ["a", "a"],
    ["constructor", "constructor"], // a host name, not the alias object's inherited property
  ];
  for (const [name, host] of ok) test(`${JSON.stringify(name)} -> ${host}`, () => expect(resolveNodeName(aliases, name, "--node")).toBe(host));

  const bad = [
    "99", // no alias 99: a URL would make it 0.0.0.99
    "3", // "03" is no alias either
    "",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "010.0.0.1", // octal to a URL parser
    "127.1",
    "0x7f000001", // hex IPv4 to a URL parser
    "0x7f.1",
    "host.123", // numeric last label
    "a..b",
    ".a",
    "a.",
    "-a",
    "a-",
    "a_b",
    "a b",
    "a/b",
    "a:15000",
    "user@host",
    "::1",
    "__proto__",
    "a\u0000b",
    `${"a".repeat(64)}.com`,
    `${"a.".repeat(127)}ab`,
  ];
  for (const name of bad) {
    test(`refuses ${JSON.stringify(name.slice(0, 40))} with a message listing the aliases`, () => {
      expect(() => resolveNodeName(aliases, name, "--node")).toThrow(CtlError);
      expect(() => resolveNodeName(aliases, name, "--node")).toThrow(
        `--node ${JSON.stringify(name)}: expected an alias (01, 02, vm3), an IPv4 address such as 10.0.0.5, or a host name`,
      );
    });
  }

  test("the message names where the value came from", () => {
    expect(() => resolveNodeName({}, "99", "kill_task node")).toThrow('kill_task node "99": expected an alias (none in the config)');
  });

  test("isHostname: labels, letters, numeric last label", () => {
    expect(isHostname("example.com")).toBe(true);
    expect(isHostname("1.2.3.4")).toBe(false); // an address, not a name
    expect(isHostname("x".repeat(63))).toBe(true);
    expect(isHostname("x".repeat(64))).toBe(false);
  });
});
