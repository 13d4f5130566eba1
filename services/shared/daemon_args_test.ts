/**
 * Starting a daemon, in-process parts: strict flag parsing, config paths relative to the config
 * file, log line formats, bind error messages, the node agreement rules and the join
 * authentication refusal frame. The same behaviour on real processes: daemon_start_test.ts.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemberDaemon } from "../member/driver.ts";
import { decodeDatagram, encodeMessage, isJoinAuthRefusal, JOIN_REFUSED_AUTH_FRAME, wireAuth } from "../member/wire.ts";
import { tempPath, waitFor } from "../testing/cluster.ts";
import { buildNodeConfig, loadDaemonConfig } from "../node_config.ts";
import { bindError } from "./config.ts";
import { parseDaemonArgs, UsageError } from "./daemon_args.ts";
import { formatLine, makeLogger } from "./log.ts";
import { disagreement, factsOf } from "../node_check.ts";
import { buildInfoMetric, VERSION, versionLine } from "./version.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

const usage = (args: string[]) => {
  try {
    parseDaemonArgs(args);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no usage error for ${JSON.stringify(args)}`);
};

describe("daemon flags", () => {
  test("no argument: ./config.json and nothing else", () => {
    expect(parseDaemonArgs([])).toEqual({ config: "./config.json" });
  });

  test("known flags, both spellings of a value, booleans", () => {
    expect(
      parseDaemonArgs(["--config", "c.json", "--host=10.0.0.5", "--introducer", "10.0.0.1:6000", "--is-introducer", "--data-dir", "d", "--secret=s"]),
    ).toEqual({
      config: "c.json",
      host: "10.0.0.5",
      introducer: "10.0.0.1:6000",
      "is-introducer": true,
      "data-dir": "d",
      secret: "s",
    });
    expect(parseDaemonArgs(["--is-introducer=false"])["is-introducer"]).toBe(false);
    expect(parseDaemonArgs(["--no-is-introducer"])["is-introducer"]).toBe(false);
    expect(parseDaemonArgs(["--version"]).version).toBe(true);
    expect(parseDaemonArgs(["-h"]).help).toBe(true);
  });

  test("an unknown flag, a stray word, a missing value or a repeated flag is refused, naming it", () => {
    expect(usage(["--foo"])).toBe("unknown flag --foo; see --help");
    expect(usage(["--host", "1.2.3.4", "--verbose=3"])).toBe("unknown flag --verbose; see --help");
    expect(usage(["-x"])).toBe("unknown flag -x; see --help");
    expect(usage(["config.json"])).toContain('unexpected argument "config.json"');
    expect(usage(["--host"])).toContain("flag --host needs a value");
    expect(usage(["--host", "--is-introducer"])).toContain("flag --host needs a value");
    expect(usage(["--host", "a", "--host", "b"])).toContain("given twice");
    expect(usage(["--version=yes"])).toContain("--version takes no value");
  });
});

describe("daemon config paths", () => {
  test("relative paths in the file resolve against its folder; --data-dir and --config against the working directory", () => {
    const root = tempPath("daemon-args-");
    const sub = join(root, "etc", "node");
    mkdirSync(sub, { recursive: true });
    try {
      writeFileSync(
        join(sub, "config.json"),
        JSON.stringify({ host: "127.0.0.9", data_dir: "data", hydfs: { local_files_dir: "../local" }, rainstorm: { ops_dir: "/opt/ops" } }),
      );
      const loaded = loadDaemonConfig({ config: "etc/node/config.json" }, {}, root);
      expect(loaded.path).toBe(join(sub, "config.json"));
      expect(loaded.found).toBe(true);
      expect(loaded.cfg.data_dir).toBe(join(sub, "data"));
      expect(loaded.cfg.hydfs.local_files_dir).toBe(join(root, "etc", "local"));
      expect(loaded.cfg.rainstorm.ops_dir).toBe("/opt/ops");
      const flagged = loadDaemonConfig({ config: join(sub, "config.json"), "data-dir": "elsewhere" }, {}, root);
      expect(flagged.cfg.data_dir).toBe(join(root, "elsewhere"));
      // The default data_dir too belongs to the config's folder.
      writeFileSync(join(sub, "config.json"), JSON.stringify({ host: "127.0.0.9" }));
      expect(loadDaemonConfig({ config: join(sub, "config.json") }, {}, "/").cfg.data_dir).toBe(join(sub, "var", "data"));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("the default ./config.json may be missing (built-in defaults, reported); a named file may not", () => {
    const root = tempPath("daemon-args-");
    mkdirSync(root, { recursive: true });
    try {
      const loaded = loadDaemonConfig({ config: "./config.json" }, {}, root);
      expect(loaded.found).toBe(false);
      expect(loaded.cfg.data_dir).toBe(join(root, "var", "data"));
      expect(() => loadDaemonConfig({ config: "nope.json" }, {}, root)).toThrow("cannot read");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("logs", () => {
  test("text lines start with an ISO timestamp and the level; json lines are one object each", () => {
    const t = new Date("2026-05-01T12:00:00.123Z");
    expect(formatLine("text", t, "warn", "hydfsd", "disk slow")).toBe("2026-05-01T12:00:00.123Z WARN  [hydfsd] disk slow");
    expect(JSON.parse(formatLine("json", t, "info", "memberd", 'a "quoted"\nline'))).toEqual({
      time: "2026-05-01T12:00:00.123Z",
      level: "info",
      service: "memberd",
      msg: 'a "quoted"\nline',
    });
  });

  test("a logger writes every call, errors with their stack, and respects the level", () => {
    const lines: string[] = [];
    const log = makeLogger("memberd", "info", { format: "json", write: (t) => lines.push(t) });
    log.info("joined", 3);
    log.info("joined", 3);
    log.debug("hidden");
    log.error(new Error("boom"));
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.map((p) => [p.level, p.service])).toEqual([
      ["info", "memberd"],
      ["info", "memberd"],
      ["error", "memberd"],
    ]);
    expect(parsed[0].msg).toBe("joined 3");
    expect(parsed[2].msg).toContain("Error: boom");
    expect(Number.isNaN(Date.parse(parsed[0].time))).toBe(false);
  });
});

describe("bind errors and versions", () => {
  test("a bind error names the setting, the address and the port", () => {
    expect(bindError("udp", "127.1.0.4", 5000, Object.assign(new Error("bind EADDRINUSE 127.1.0.4"), { code: "EADDRINUSE" })).message).toStartWith(
      "ports.udp 5000 on 127.1.0.4 is in use",
    );
    expect(bindError("http", "10.9.9.9", 8080, { code: "EADDRNOTAVAIL" }).message).toStartWith("ports.http 8080 on 10.9.9.9: address not available");
    expect(bindError("hydfs", "10.0.0.1", 80, { code: "EACCES" }).message).toStartWith("ports.hydfs 80 on 10.0.0.1: permission denied");
  });

  test("one version for every executable, in --version and build_info", () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(versionLine("hydfsd")).toBe(`hydfsd ${VERSION}`);
    expect(buildInfoMetric("hydfsd")).toContain(`hydfsd_build_info{version="${VERSION}"} 1`);
  });
});

describe("node agreement", () => {
  const cfg = buildNodeConfig({ host: "10.0.0.5", data_dir: "/srv/rs", introducers: ["10.0.0.1:6000"] });
  test("the same config agrees", () => {
    expect(disagreement("hydfsd", cfg, factsOf(cfg), "memberd", true)).toBeUndefined();
  });
  test("another host, port, data_dir or leader is refused, saying which", () => {
    const other = buildNodeConfig({ data_dir: "/srv/rs", introducers: ["10.0.0.1:6000"] });
    expect(disagreement("hydfsd", other, factsOf(cfg), "memberd pid 7", false)).toStartWith(
      "hydfsd host 127.0.0.1 differs from this node's memberd (host 10.0.0.5, memberd pid 7)",
    );
    const port = buildNodeConfig({ host: "10.0.0.5", data_dir: "/srv/rs", introducers: ["10.0.0.1:6000"], ports: { hydfs: 11000 } });
    expect(disagreement("hydfsd", port, factsOf(cfg), "m", false)).toContain("ports.hydfs 11000 here, 10010 at memberd");
    const dir = buildNodeConfig({ host: "10.0.0.5", data_dir: "/srv/other", introducers: ["10.0.0.1:6000"] });
    expect(disagreement("hydfsd", dir, factsOf(cfg), "m", false)).toContain("data_dir /srv/other differs");
    const leader = buildNodeConfig({ host: "10.0.0.5", data_dir: "/srv/rs", introducers: ["127.0.0.1:6000"] });
    expect(disagreement("hydfsd", leader, factsOf(cfg), "m", false)).toBeUndefined();
    expect(disagreement("rainstormd", leader, factsOf(cfg), "m", true)).toContain(
      "would follow leader 127.0.0.1, but this node's memberd's config implies leader 10.0.0.1",
    );
  });
});

describe("join authentication refusal", () => {
  test("a fixed untagged frame that never decodes as a message, with or without a secret", () => {
    expect(isJoinAuthRefusal(JOIN_REFUSED_AUTH_FRAME)).toBe(true);
    expect(isJoinAuthRefusal(JOIN_REFUSED_AUTH_FRAME.subarray(1))).toBe(false);
    expect(() => decodeDatagram(JOIN_REFUSED_AUTH_FRAME)).toThrow();
    expect(() => decodeDatagram(JOIN_REFUSED_AUTH_FRAME, wireAuth("s"))).toThrow();
    const reply = encodeMessage({
      type: "join_reply",
      accepted: false,
      reason: "x",
      cfg: { version: 0, origin: "", knobs: buildNodeConfig({}).membership },
      entries: [],
      removed: [],
    });
    expect(isJoinAuthRefusal(reply)).toBe(false);
  });
});

describe(`join authentication refusal between two memberds (in-process, ${testNet(85)}.20-25)`, () => {
  const REFUSED = "join refused: authentication failed (check cluster_secret)";
  const cases: [string, string, string][] = [
    ["different secrets", "secret-one", "secret-two"],
    ["a joiner without the introducer's secret", "secret-one", ""],
    ["a joiner with a secret, an introducer without", "", "secret-two"],
  ];
  for (const [i, [what, introSecret, joinSecret]] of cases.entries()) {
    test(`${what}: both sides say so; the joiner stays unready`, async () => {
      const dir = tempPath("join-refused-");
      const introLines: string[] = [];
      const joinLines: string[] = [];
      const intro = new MemberDaemon(
        buildNodeConfig({ host: `${testNet(85)}.${20 + 2 * i}`, is_introducer: true, introducers: [], data_dir: dir, cluster_secret: introSecret }),
        "/nonexistent/config.json",
        makeLogger("intro", "info", { write: (t) => introLines.push(t) }),
      );
      const joiner = new MemberDaemon(
        buildNodeConfig({
          host: `${testNet(85)}.${21 + 2 * i}`,
          introducers: [`${testNet(85)}.${20 + 2 * i}:6000`],
          data_dir: dir,
          cluster_secret: joinSecret,
          join_retry_ms: 100,
        }),
        "/nonexistent/config.json",
        makeLogger("joiner", "info", { write: (t) => joinLines.push(t) }),
      );
      try {
        await intro.start();
        await joiner.start();
        await waitFor(() => joinLines.some((l) => l.includes(REFUSED)), scaled(5000), "the joiner to log the refusal");
        await waitFor(
          () => introLines.some((l) => l.includes(`authentication failed (check cluster_secret); the join was for ${testNet(85)}.${21 + 2 * i}:5000@`)),
          scaled(5000),
          "the introducer to log the refusal",
        );
        // A second refused attempt: the rate limit below is then tested, not just one attempt.
        await waitFor(() => intro.traffic.joinsRefusedAuth >= 2, scaled(5000), "a second refused join");
        expect(joiner.node.isViewReady).toBe(false);
        expect(intro.node.core.list().length).toBe(1);
        expect(intro.traffic.joinsRefusedAuth).toBeGreaterThanOrEqual(2);
        // Rate-limited: one line per joiner address per period on the introducer.
        expect(introLines.filter((l) => l.includes("join refused from")).length).toBe(1);
      } finally {
        await joiner.stop();
        await intro.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
