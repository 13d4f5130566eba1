/**
 * The pure parts of the bundle and deploy tooling: the hosts file, the configs deploy writes,
 * the join and re-replication verdicts, the multi-call dispatch, the sample config's
 * completeness, the supervisor script and the systemd units, the bundle's VERSION, tar command and
 * summary, and the test fleet's sshd setup. (fleet_test.ts runs it all for real.)
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Ring } from "../../services/hydfs/ring.ts";
import { buildNodeConfig } from "../../services/node_config.ts";
import { type BundleResult, missingKeys, sampleConfig, summaryLines, tarCommand, versionText } from "../bundle.ts";
import { dispatch, VERSION } from "../bundle/multicall.ts";
import { joinedVerdict, parseProbe, replicatedVerdict } from "./checks.ts";
import { hiddenPaths, sshdConfig, sshdScript, sshProbe } from "./fleet.ts";
import { clientConfig, formatConfig, hostConfig, HostsError, parseHosts, parseHostsText, parseLine, words } from "./hosts.ts";
import * as remote from "./remote.ts";
import { shq } from "./ssh.ts";

const ROOT = resolve(import.meta.dir, "../..");

describe("hosts file lines", () => {
  test("parseLine: a settings line or a host line, each word checked", () => {
    const host = (address: string, introducer: boolean, kv: Record<string, string> = {}, options: string[] = []) => ({
      host: { line: 7, address, introducer, kv, options },
    });
    const cases: [string, ReturnType<typeof parseLine>][] = [
      [
        "user=root ssh_key=k",
        {
          settings: [
            ["user", "root"],
            ["ssh_key", "k"],
          ],
        },
      ],
      [
        "ssh_option=A=1 ssh_option=B=2",
        {
          settings: [
            ["ssh_option", "A=1"],
            ["ssh_option", "B=2"],
          ],
        },
      ],
      ["10.0.0.1", host("10.0.0.1", false)],
      ["node3.example.com introducer", host("node3.example.com", true)],
      ["10.0.0.2 ssh=vm2 user=admin ssh_option=X=1 ssh_option=Y=2", host("10.0.0.2", false, { ssh: "vm2", user: "admin" }, ["X=1", "Y=2"])],
      ['10.0.0.3 dir="/srv/a b"', host("10.0.0.3", false, { dir: "/srv/a b" })],
    ];
    for (const [line, want] of cases) expect([line, parseLine(line, 7, "hosts:7")]).toEqual([line, want]);
    const refused: [string, RegExp][] = [
      ["user=root stray", /^hosts:7: expected key=value settings on a settings line, got "stray"$/],
      ["colour=blue", /^hosts:7: unknown setting "colour"; known: user, /],
      ["10.0.0.1 secret_file=x", /^hosts:7: "secret_file=x": expected "introducer" or one of ssh=, /],
      ["10.0.0.1 intro", /^hosts:7: "intro": expected "introducer"/],
      ["256.0.0.1x!", /^hosts:7: "256.0.0.1x!": expected a host's cluster address/],
      ['10.0.0.1 "open', /^hosts:7: .*unterminated/],
    ];
    for (const [line, re] of refused) expect(() => parseLine(line, 7, "hosts:7")).toThrow(re);
  });

  test("parseHostsText: settings gathered from anywhere, comments dropped, the first host the default introducer", () => {
    const parsed = parseHostsText("user=a # who\n10.0.0.1\nssh_option=X=1\n  # only a comment\nuser=b ssh_option=Y=2\n10.0.0.2 # second\n", "f");
    expect(parsed).toEqual({
      global: { user: "b" },
      globalOptions: ["X=1", "Y=2"],
      hosts: [
        { line: 2, address: "10.0.0.1", introducer: true, kv: {}, options: [] },
        { line: 6, address: "10.0.0.2", introducer: false, kv: {}, options: [] },
      ],
    });
    expect(parseHostsText("10.0.0.1\n10.0.0.2 introducer\n", "f").hosts.map((h) => h.introducer)).toEqual([false, true]);
    expect(() => parseHostsText("user=a\n", "f")).toThrow(/^f: no hosts/);
    expect(() => parseHostsText("10.0.0.1\n\n10.0.0.1\n", "f")).toThrow(/^f:3: host 10.0.0.1 is listed twice$/);
  });
});

describe("hosts file", () => {
  test("words: whitespace separates, quotes group", () => {
    expect(words(`a  b="c d" 'e f'g`)).toEqual(["a", "b=c d", "e fg"]);
    expect(() => words(`a "b`)).toThrow(/unterminated/);
  });

  test("settings apply to every host, a host's own key=value wins, flags win over both", () => {
    const dir = mkdtempSync(join(tmpdir(), "rs-hosts-"));
    try {
      writeFileSync(join(dir, "key"), "k");
      writeFileSync(join(dir, "secret"), "s3cret\n");
      const text = [
        "# comment",
        "user=root ssh_key=key",
        'ssh_option="StrictHostKeyChecking=accept-new"',
        "secret_file=secret",
        "",
        "10.0.0.1 introducer   # the first",
        "10.0.0.2 ssh=vm2.example.com user=admin ssh_port=2222 ssh_option=ConnectTimeout=5",
        "node3.example.com dir=/srv/rs supervisor=plain",
      ].join("\n");
      const inv = parseHosts(text, join(dir, "hosts"), {}, {});
      expect(inv.secret).toBe("s3cret");
      expect(inv.hosts.map((h) => [h.address, h.introducer, h.sshHost, h.user, h.sshPort, h.dir, h.supervisor])).toEqual([
        ["10.0.0.1", true, "10.0.0.1", "root", undefined, "/opt/rainstorm", "auto"],
        ["10.0.0.2", false, "vm2.example.com", "admin", 2222, "/opt/rainstorm", "auto"],
        ["node3.example.com", false, "node3.example.com", "root", undefined, "/srv/rs", "plain"],
      ]);
      expect(inv.hosts[0]!.sshKey).toBe(join(dir, "key"));
      expect(inv.hosts[1]!.sshOptions).toEqual(["StrictHostKeyChecking=accept-new", "ConnectTimeout=5"]);
      const over = parseHosts(text, join(dir, "hosts"), { user: "ops", sshOptions: ["Port=22"], dir: "/x" }, {});
      expect(over.hosts.map((h) => [h.user, h.dir, h.sshOptions.at(-1)])).toEqual([
        ["ops", "/x", "Port=22"],
        ["ops", "/x", "Port=22"],
        ["ops", "/x", "Port=22"],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the first host is the introducer when none is marked; the secret may come from RAINSTORM_SECRET", () => {
    const inv = parseHosts("10.0.0.1\n10.0.0.2\n", "hosts", {}, { RAINSTORM_SECRET: "env-secret" });
    expect(inv.hosts.map((h) => h.introducer)).toEqual([true, false]);
    expect(inv.secret).toBe("env-secret");
  });

  test("mistakes are refused with the line and what was expected", () => {
    const bad = (text: string, re: RegExp) => expect(() => parseHosts(text, "hosts", {}, {})).toThrow(re);
    bad("", /no hosts/);
    bad("colour=blue\n10.0.0.1\n", /hosts:1: unknown setting "colour"/);
    bad("10.0.0.1 intro\n", /hosts:1: "intro": expected "introducer"/);
    bad("10.0.0.1\n10.0.0.1\n", /listed twice/);
    bad("dir=relative/path\n10.0.0.1\n", /dir: expected an absolute folder/);
    bad("dir=/opt/../etc\n10.0.0.1\n", /dir: expected an absolute folder/);
    bad("10.0.0.1 ssh_port=70000\n", /ssh_port: expected a port/);
    bad("10.0.0.1 supervisor=runit\n", /supervisor: expected one of auto, systemd, plain/);
    bad("no_such_host!\n", /expected a host's cluster address/);
    expect(() => parseHosts("10.0.0.1\n", "hosts", {}, {})).not.toThrow(HostsError);
  });

  test("a host's config is the 5-line config (one more line for the secret) and a valid node config", () => {
    const inv = parseHosts("10.0.0.1 introducer\n10.0.0.2\n", "hosts", {}, {});
    const text = formatConfig(hostConfig(inv, inv.hosts[1]!));
    expect(text).toBe('{\n  "host": "10.0.0.2",\n  "introducers": ["10.0.0.1:6000"],\n  "is_introducer": false\n}\n');
    const cfg = buildNodeConfig(JSON.parse(text));
    expect([cfg.host, cfg.introducers, cfg.is_introducer]).toEqual(["10.0.0.2", ["10.0.0.1:6000"], false]);
    const withSecret = parseHosts("10.0.0.1\n", "hosts", {}, { RAINSTORM_SECRET: "x" });
    expect(formatConfig(hostConfig(withSecret, withSecret.hosts[0]!)).trimEnd().split("\n")).toHaveLength(6);
  });

  test("the client config names the introducers, 01.. for the hosts, and the secret", () => {
    const inv = parseHosts("10.0.0.1\n10.0.0.2 introducer\n", "hosts", {}, { RAINSTORM_SECRET: "x" });
    expect(clientConfig(inv)).toEqual({ introducers: ["10.0.0.2:6000"], aliases: { "01": "10.0.0.1", "02": "10.0.0.2" }, cluster_secret: "x" });
    expect(() => buildNodeConfig(clientConfig(inv))).not.toThrow();
  });

  test("shell quoting", () => {
    expect(shq("plain/path-1.2")).toBe("plain/path-1.2");
    expect(shq("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(shq("")).toBe("''");
  });
});

describe("join and re-replication verdicts", () => {
  const hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"];
  const ids = hosts.map((h, i) => `${h}:5000@${1000 + i}`);
  const block = (node: string, cmd: string, body: unknown, code = 0) =>
    `@@ ${node} ${cmd} ${code}\n${typeof body === "string" ? body : JSON.stringify(body, null, 2)}\n`;
  const memberList = (states: string[]) => ({ count: ids.length, members: ids.map((id, i) => ({ id, state: states[i] })) });

  test("joined: every node alive, ready and seeing all others alive", () => {
    const all = hosts
      .map(
        (h, i) => block(h, "list_self", { id: ids[i], state: "alive", ready: true }) + block(h, "list_mem", memberList(["alive", "alive", "alive", "alive"])),
      )
      .join("");
    expect(joinedVerdict(parseProbe(all), hosts)).toEqual({ ok: true, why: [] });
    const suspect = all.replace(
      block(hosts[3]!, "list_mem", memberList(["alive", "alive", "alive", "alive"])),
      block(hosts[3]!, "list_mem", memberList(["alive", "suspect", "alive", "alive"])),
    );
    expect(joinedVerdict(parseProbe(suspect), hosts).why).toEqual(["10.0.0.4 lists 10.0.0.2 alive 0 times"]);
    const down = all.replace(
      block(hosts[0]!, "list_self", { id: ids[0], state: "alive", ready: true }),
      block(hosts[0]!, "list_self", "error: memberd at 10.0.0.1:8080 unreachable: connection refused", 1),
    );
    expect(joinedVerdict(parseProbe(down), hosts).why[0]).toBe(
      "10.0.0.1: memberd does not answer (error: memberd at 10.0.0.1:8080 unreachable: connection refused)",
    );
  });

  test("replicated: every file on exactly its ring successors, copies alike", () => {
    const ring = new Ring(ids.map((id) => ({ id, hydfsPort: 10010 })));
    const names = ["a.csv", "b.txt", "rainstorm/job-1/stage1-task0.log"];
    const listing = (h: string, drop?: string) => ({
      files: names.filter((n) => n !== drop && ring.replicasFor(n, 3).some((r) => r.host === h)).map((name) => ({ name, size: 10, ops: 2 })),
    });
    const ringAnswer = { count: 4, members: ids.map((id) => ({ id, host: id.split(":")[0], token: "0" })) };
    const probe = (drop?: { host: string; name: string }) =>
      parseProbe(hosts.map((h) => block(h, "liststore", listing(h, drop?.host === h ? drop.name : undefined)) + block(h, "list_mem_ids", ringAnswer)).join(""));
    expect(replicatedVerdict(probe(), hosts, 3, 10010)).toEqual({ ok: true, why: [], files: 3 });
    const holder = ring.replicasFor("b.txt", 3)[0]!.host;
    const missing = replicatedVerdict(probe({ host: holder, name: "b.txt" }), hosts, 3, 10010);
    expect(missing.ok).toBe(false);
    expect(missing.why[0]).toStartWith("b.txt: on ");
    const partialRing = parseProbe(
      hosts.map((h) => block(h, "liststore", listing(h)) + block(h, "list_mem_ids", { ...ringAnswer, members: ringAnswer.members.slice(1) })).join(""),
    );
    expect(replicatedVerdict(partialRing, hosts, 3, 10010).why[0]).toContain(
      "ring holds 10.0.0.2, 10.0.0.3, 10.0.0.4; expected 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4",
    );
  });
});

describe("bundle", () => {
  test("the multi-call binary runs the program it is invoked as, or its first argument", () => {
    expect(dispatch("/opt/rainstorm/bin/memberd", ["--config", "c.json"])).toEqual({ kind: "program", program: "memberd", args: ["--config", "c.json"] });
    expect(dispatch("bin/rainstorm", ["ctl", "list_mem"])).toEqual({ kind: "program", program: "ctl", args: ["list_mem"] });
    expect(dispatch("/x/ops/grep-wrapper", ["SIGN_", "6"])).toEqual({ kind: "operator", invokedAs: "grep-wrapper", args: ["SIGN_", "6"] });
    expect(dispatch("/x/ops/rainstorm-op", ["grep", "a", "1"])).toEqual({ kind: "operator", invokedAs: "rainstorm-op", args: ["grep", "a", "1"] });
    expect(dispatch("rainstorm", ["aggregate-wrapper", "6"])).toEqual({ kind: "operator", invokedAs: "aggregate-wrapper", args: ["6"] });
    expect(dispatch("rainstorm", ["--version"])).toEqual({ kind: "version" });
    expect(dispatch("rainstorm", [])).toEqual({ kind: "usage", code: 2 });
    expect(dispatch("rainstorm", ["--help"])).toEqual({ kind: "usage", code: 0 });
    expect(dispatch("rainstorm", ["rm", "-rf"])).toEqual({ kind: "usage", code: 2 });
  });

  test("the sample config is complete (every setting) and valid", () => {
    expect(() => sampleConfig()).not.toThrow();
    expect(missingKeys({ a: 1, b: { c: 1, d: 2 }, aliases: { x: "y" } }, { a: 1, b: { c: 1 }, aliases: {} })).toEqual(["b.d"]);
  });

  test("every remote script parses", () => {
    for (const [name, script] of Object.entries(remote)) {
      const r = Bun.spawnSync(["bash", "-n", "-c", script as string]);
      expect(`${name}: ${r.exitCode} ${r.stderr.toString()}`).toBe(`${name}: 0 `);
    }
  });

  test("the supervisor script parses, and the units start memberd first, restart on failure and log to the journal", async () => {
    const n = Bun.spawnSync(["bash", "-n", join(ROOT, "deploy", "supervise")]);
    expect(n.exitCode).toBe(0);
    for (const d of ["memberd", "hydfsd", "rainstormd"]) {
      const unit = readFileSync(join(ROOT, "deploy", "systemd", `rainstorm-${d}.service`), "utf8");
      expect(unit).toContain(`ExecStart=/opt/rainstorm/bin/${d} --config /opt/rainstorm/config.json`);
      expect(unit).toContain("Restart=on-failure");
      expect(unit).toContain("StandardError=journal");
      if (d !== "memberd") expect(unit).toMatch(/^After=.*rainstorm-memberd\.service/m);
    }
  });
});

describe("bundle pieces", () => {
  test.each([
    { commit: "abc1234", dirty: false, line: "commit abc1234" },
    { commit: "abc1234", dirty: true, line: "commit abc1234 (with uncommitted changes)" },
    { commit: "", dirty: false, line: "commit unknown" },
  ])("VERSION names the commit: $line", ({ commit, dirty, line }) => {
    expect(versionText(commit, dirty, "2026-01-02T03:04:05.000Z", "1.4.4", "x64")).toBe(
      `rainstorm ${VERSION}\n${line}\nbuilt 2026-01-02T03:04:05.000Z\nbun 1.4.4\nplatform linux-x64\n`,
    );
  });

  test.each([
    { program: "xz -T0 -6", compress: ["-I", "xz -T0 -6"] },
    { program: "", compress: [] },
  ])("tar packs the staging folder reproducibly, compressed by '$program'", ({ program, compress }) => {
    expect(tarCommand("/d/r.tar.xz", "/d", "r", program, 1700000000)).toEqual([
      "tar",
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mtime=@1700000000",
      ...compress,
      "-cf",
      "/d/r.tar.xz",
      "-C",
      "/d/bundle",
      "r",
    ]);
  });

  test("the summary: sizes in MB, times in seconds as measured", () => {
    const r: BundleResult = {
      name: "rainstorm-x",
      tarball: "/d/r.tar.xz",
      stage: "/d/bundle/r",
      binaryBytes: 110_400_000,
      unpackedBytes: 110_460_000,
      tarballBytes: 40_050_000,
      ms: { compile: 1050, pack: 2000, total: 4000 },
    };
    const lines = summaryLines(r, "xz", 1049.6, 1999.4);
    expect(lines[0]).toStartWith("bundle rainstorm-x: one executable of 110.4 MB behind ");
    expect(lines[0]).toEndWith(" operator names (smoke runs ok)");
    expect(lines[1]).toBe("unpacked 110.5 MB; xz tarball 40.0 MB; compiled in 1.0 s, packed in 2.0 s");
  });
});

describe("fleet", () => {
  test.each([
    { dir: "/tmp/rsfleet-1", existing: ["/repo", "/run/systemd"], want: ["/repo", "/run/systemd"] },
    { dir: "/repo/var/fleet", existing: ["/repo", "/run/systemd"], want: ["/run/systemd"] },
    { dir: "/repository/fleet", existing: ["/repo"], want: ["/repo"] },
  ])("a node hides $want when the fleet is in $dir", ({ dir, existing, want }) => {
    expect(hiddenPaths(dir, existing)).toEqual([...want]);
  });

  test("a node's sshd: root by key only on its own address, in a mount namespace with /opt/rainstorm its own folder", () => {
    const config = sshdConfig("127.1.0.2", "/f/sshd-2", "/f/authorized_keys").split("\n");
    expect(config.slice(0, 5)).toEqual([
      "ListenAddress 127.1.0.2",
      "Port 22",
      "HostKey /f/sshd-2/host_ed25519",
      "PidFile /f/sshd-2/sshd.pid",
      "AuthorizedKeysFile /f/authorized_keys",
    ]);
    expect(config).toContain("PasswordAuthentication no");
    expect(config.at(-1)).toBe("");
    expect(sshdScript(["/repo"], "/f/node-2", "/f/sshd-2").split(" && ")).toEqual([
      "mount -t tmpfs -o size=1m,mode=0755 tmpfs '/repo'",
      "mount -t tmpfs -o mode=0755 tmpfs /opt",
      "mkdir -p /opt/rainstorm",
      "mount --bind '/f/node-2' /opt/rainstorm",
      "exec /usr/sbin/sshd -D -f '/f/sshd-2/sshd_config' -E '/f/sshd-2/sshd.log'",
    ]);
    const probe = sshProbe("/f/id_ed25519", "/f/known_hosts", "127.1.0.2");
    expect(probe.slice(0, 5)).toEqual(["ssh", "-F", "/dev/null", "-i", "/f/id_ed25519"]);
    expect(probe).toContain("UserKnownHostsFile=/f/known_hosts");
    expect(probe.slice(-2)).toEqual(["root@127.1.0.2", "test -d /opt/rainstorm && ! test -e /run/systemd/system"]);
  });
});
