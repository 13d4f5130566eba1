/**
 * The node's configuration against its declarations: every setting is declared once (its
 * service's config.ts, node-wide ones in node_config.ts), and the README's settings tables, the
 * sample config.json and the bundle's deploy/config.jsonc must list exactly the declared keys
 * with the declared defaults. Also pins the validation messages (operators and tests read them).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildNodeConfig, DEFAULT_NODE_CONFIG, SECTIONS, TOP_SETTINGS } from "./node_config.ts";
import { readConfigFile, type Setting, type Settings, showDefault, showValue } from "./shared/config.ts";

const ROOT = resolve(import.meta.dir, "..");

/** The README's Configuration section: each table's rows, keyed by the section its caption names ("" = node settings). */
function readmeTables(): Map<string, Map<string, string>> {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = text.indexOf("## Configuration (`config.json`)");
  expect(start).toBeGreaterThanOrEqual(0);
  const end = text.indexOf("\n## ", start + 1);
  const tables = new Map<string, Map<string, string>>();
  let caption = ""; // the paragraph above the current table
  let blank = true;
  for (const line of text.slice(start, end).split("\n")) {
    if (!line.startsWith("|")) {
      if (line.trim() === "") blank = true;
      else {
        caption = blank ? line : `${caption} ${line}`;
        blank = false;
      }
      continue;
    }
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    const key = /^`([a-z_]+)`$/.exec(cells[0] ?? "")?.[1];
    if (!key) continue; // header and separator rows
    const section = /\(`([a-z_]+)`\)/.exec(caption)?.[1] ?? "";
    if (!tables.has(section)) tables.set(section, new Map());
    const rows = tables.get(section)!;
    expect(rows.has(key), `README lists ${section || "node"} setting ${key} twice`).toBe(false);
    rows.set(key, cells[1] ?? "");
  }
  return tables;
}

/** The first code span of a README default cell: what the docs say the default is. */
function shownIn(cell: string): string | undefined {
  return /`([^`]*)`/.exec(cell)?.[1];
}

/** Sections that the README shows as one row of the node table (the others have a table of their own). */
const ROW_SECTIONS = new Set(["ports"]);

/** What the README's tables must say: per table ("" = node settings), each key's default as shown. */
function expectedTables(): Map<string, Map<string, string>> {
  const shown = (decls: Settings) => new Map(Object.entries(decls).map(([k, s]) => [k, showDefault(s)]));
  const node = shown(TOP_SETTINGS);
  const out = new Map([["", node]]);
  for (const [name, decls] of Object.entries(SECTIONS)) {
    if (ROW_SECTIONS.has(name)) node.set(name, showValue((DEFAULT_NODE_CONFIG as unknown as Record<string, unknown>)[name]));
    else out.set(name, shown(decls));
  }
  return out;
}

describe("README settings tables", () => {
  const tables = readmeTables();
  test("every table is a declared section, every declared section has a table", () => {
    expect([...tables.keys()].sort()).toEqual([...expectedTables().keys()].sort());
  });
  for (const [section, want] of expectedTables()) {
    test(`${section || "node settings"}: exactly the declared keys, each with its declared default`, () => {
      const rows = tables.get(section) ?? new Map<string, string>();
      expect([...rows.keys()].sort()).toEqual([...want.keys()].sort());
      const wrong = [...want]
        .filter(([key, shown]) => rows.has(key) && shownIn(rows.get(key)!) !== shown)
        .map(([key, shown]) => `${key}: README shows ${JSON.stringify(shownIn(rows.get(key)!))}, declared ${JSON.stringify(shown)}`);
      expect(wrong).toEqual([]);
    });
  }
});

/** A sample config file must list every declared key with its default, and nothing else. */
function checkSample(file: string): void {
  const raw = readConfigFile(join(ROOT, file), true);
  expect(Object.keys(raw)).toEqual(Object.keys(DEFAULT_NODE_CONFIG));
  for (const [name, decls] of Object.entries(SECTIONS)) {
    expect(Object.keys(raw[name] as object), `${file}: ${name}`).toEqual(Object.keys(decls));
  }
  expect(buildNodeConfig(raw)).toEqual(DEFAULT_NODE_CONFIG);
}

describe("sample configs", () => {
  test("config.json lists every declared key with its default, in declaration order, and nothing else", () => checkSample("config.json"));
  test("deploy/config.jsonc (the bundle's sample) likewise", () => checkSample("deploy/config.jsonc"));
});

describe("declarations", () => {
  test("every declaration has a doc and its default passes its own parser", () => {
    const all: [string, Setting<unknown>][] = [
      ...Object.entries(TOP_SETTINGS),
      ...Object.entries(SECTIONS).flatMap(([name, decls]) => Object.entries(decls).map(([k, s]) => [`${name}.${k}`, s] as [string, Setting<unknown>])),
    ];
    const bad = all.filter(([, s]) => s.doc.trim() === "" || !s.parse(s.default).ok).map(([k]) => k);
    expect(bad).toEqual([]);
  });
});

describe("validation messages", () => {
  test.each([
    [
      { bogus: 1 },
      "bogus: unknown setting; known settings are host, data_dir, is_introducer, introducers, cluster_secret, ports, join_retry_ms, join_timeout_ms, rejoin_wait_ms, aliases, membership, hydfs, rainstorm",
    ],
    [{ host: "" }, 'host: expected a non-empty string, got ""'],
    [{ cluster_secret: 3 }, "cluster_secret: expected a string, got 3"],
    [{ is_introducer: "yes" }, 'is_introducer: expected true or false, got "yes"'],
    [{ introducers: ["a:0"] }, 'introducers: expected a list of "host:port" strings, got ["a:0"]'],
    [{ join_retry_ms: 5 }, "join_retry_ms: expected an integer in [10, 600000] ms, got 5"],
    [{ ports: 5 }, "ports: expected an object, got 5"],
    [
      { ports: { udp: 0, bogus: 1 } },
      "ports.udp: expected an integer port in [1, 65535], got 0; ports.bogus: unknown port; known ports are udp, introducer, http, hydfs, rainstorm",
    ],
    [{ aliases: { a: 1 } }, 'aliases: expected an object of alias -> host strings, got {"a":1}'],
    [{ membership: 5 }, "membership: expected a JSON object of knobs, got 5"],
    [{ membership: { probe_timeout_ms: 600 } }, "membership.probe_timeout_ms: expected less than ping_every_ms (500), got 600"],
    [{ hydfs: [] }, "hydfs: expected an object, got []"],
    [
      { hydfs: { failpoint: "x", local_files_dir: 4 } },
      'hydfs.failpoint: expected "" or crash_before_ack:<N>, got "x"; hydfs.local_files_dir: expected a string path, got 4',
    ],
    [
      { hydfs: { zz: 1 } },
      "hydfs.zz: unknown setting; known settings are replica_count, max_body_bytes, request_timeout_ms, rereplicate_every_ms, chunk_gc_grace_ms, local_files_dir, failpoint",
    ],
    [{ rainstorm: { batch_size: 0, leader: 5 } }, "rainstorm.batch_size: expected an integer in [1, 65536], got 0; rainstorm.leader: expected a string, got 5"],
    [{ rainstorm: { failpoint: "nope" } }, 'rainstorm.failpoint: expected "", crash_before_log_append:<N> or crash_after_log_append:<N>, got "nope"'],
  ] as [Record<string, unknown>, string][])("%j", (raw, message) => {
    expect(() => buildNodeConfig(raw)).toThrow(`invalid configuration: ${message}`);
  });

  test("a comma-separated introducers string is a list; RAINSTORM_SECRET overrides cluster_secret", () => {
    expect(buildNodeConfig({ introducers: "a:1,b:2" }).introducers).toEqual(["a:1", "b:2"]);
    expect(buildNodeConfig({ cluster_secret: "a" }, { RAINSTORM_SECRET: "b" }).cluster_secret).toBe("b");
  });
});
