/**
 * A node's configuration (config.json): the node-wide settings declared here, composed with the
 * sections each service declares (services/member/config.ts, services/hydfs/config.ts,
 * services/rainstorm/config.ts), validated at start-up with messages that name the field, the
 * value and what was expected.
 *
 * It sits above the services it composes, beside the daemons' entry files, so that
 * services/shared/ imports no service: shared/ has the machinery (reading JSONC, parsers,
 * section validation, file + flags), this file has the knowledge of which sections a node has.
 */
import { applyKnobs } from "./member/cluster_config.ts";
import { DEFAULT_KNOBS, DEFAULT_PORTS, type Knobs, MEMBER_SETTINGS, MEMBERSHIP_SETTINGS, type MemberSettings, PORT_SETTINGS } from "./member/config.ts";
import type { MemberPorts } from "./member/state.ts";
import { DEFAULT_HYDFS, HYDFS_SETTINGS, type HydfsSettings } from "./hydfs/config.ts";
import { DEFAULT_RAINSTORM, RAINSTORM_SETTINGS, type RainstormSettings } from "./rainstorm/config.ts";
import { applySettings, defaultsOf, isObject, type Parsed, type Setting, type Settings, text, type ValuesOf } from "./shared/config.ts";
import { type DaemonArgValues, type LoadedConfig, type PathSetting, readDaemonConfig } from "./shared/daemon_args.ts";

export function defaultAliases(count = 10): Record<string, string> {
  const out: Record<string, string> = {};
  for (let k = 1; k <= count; k++) out[String(k).padStart(2, "0")] = `127.0.0.${k}`;
  return out;
}

function aliasMap(v: unknown): Parsed<Record<string, string>> {
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === "string")) return { ok: false, expected: "expected an object of alias -> host strings" };
  return { ok: true, value: v as Record<string, string> };
}

/** Settings of the node as a whole, used by all its daemons (and ctl). */
export const NODE_SETTINGS = {
  host: { default: "127.0.0.1", unit: "host", parse: text({ nonEmpty: true }), doc: "address every daemon of this node binds and advertises" },
  data_dir: { default: "var/data", unit: "path", parse: text({ nonEmpty: true }), doc: "this node's state and logs; relative to the config file's folder" },
  cluster_secret: {
    default: "",
    unit: "",
    parse: text(),
    doc:
      "shared secret: keys derived from it tag datagrams and joins and sign every HTTP request (it is " +
      "never sent). Empty = open cluster (a warning is logged). The env RAINSTORM_SECRET overrides it",
  },
  aliases: {
    default: defaultAliases(),
    unit: "",
    parse: aliasMap,
    shown: '"01"→127.0.0.1 … "10"→127.0.0.10',
    doc: 'node names that ctl accepts in --node ("01" -> "127.0.0.1")',
  },
} satisfies Record<string, Setting<unknown>>;

type NodeSettings = ValuesOf<typeof NODE_SETTINGS>;

export interface NodeConfig extends NodeSettings, MemberSettings {
  ports: MemberPorts;
  /** Cluster-wide membership knobs this node starts with (see cluster_config.ts). */
  membership: Knobs;
  hydfs: HydfsSettings;
  rainstorm: RainstormSettings;
}

/** A section of config.json: its declarations and how a raw value is applied over the defaults. */
interface Section {
  decls: Settings;
  apply(raw: unknown, cfg: NodeConfig, errors: string[]): void;
}

/** Every top-level key, in the order of the README's table (and of "known settings are ..."). */
const TOP: Record<keyof NodeConfig, Setting<unknown> | Section> = {
  host: NODE_SETTINGS.host,
  data_dir: NODE_SETTINGS.data_dir,
  is_introducer: MEMBER_SETTINGS.is_introducer,
  introducers: MEMBER_SETTINGS.introducers,
  cluster_secret: NODE_SETTINGS.cluster_secret,
  ports: { decls: PORT_SETTINGS, apply: (raw, cfg, errors) => applySettings("ports", raw, PORT_SETTINGS, cfg.ports, errors, { noun: "port" }) },
  join_retry_ms: MEMBER_SETTINGS.join_retry_ms,
  join_timeout_ms: MEMBER_SETTINGS.join_timeout_ms,
  rejoin_wait_ms: MEMBER_SETTINGS.rejoin_wait_ms,
  aliases: NODE_SETTINGS.aliases,
  membership: {
    decls: MEMBERSHIP_SETTINGS,
    apply: (raw, cfg, errors) => {
      try {
        cfg.membership = applyKnobs(DEFAULT_KNOBS, raw, "membership");
      } catch (err) {
        errors.push((err as Error).message);
      }
    },
  },
  hydfs: { decls: HYDFS_SETTINGS, apply: (raw, cfg, errors) => applySettings("hydfs", raw, HYDFS_SETTINGS, cfg.hydfs, errors) },
  rainstorm: { decls: RAINSTORM_SETTINGS, apply: (raw, cfg, errors) => applySettings("rainstorm", raw, RAINSTORM_SETTINGS, cfg.rainstorm, errors) },
};

function isSection(x: Setting<unknown> | Section): x is Section {
  return "apply" in x;
}

/** The top-level settings (not sections), for docs checks. */
export const TOP_SETTINGS: Settings = Object.fromEntries(Object.entries(TOP).filter(([, x]) => !isSection(x))) as Settings;

/** The sections, by key, for docs checks. */
export const SECTIONS: Record<string, Settings> = Object.fromEntries(Object.entries(TOP).flatMap(([k, x]) => (isSection(x) ? [[k, x.decls]] : [])));

function defaults(): NodeConfig {
  const values: Record<string, unknown> = {
    ...defaultsOf(NODE_SETTINGS),
    ...defaultsOf(MEMBER_SETTINGS),
    ports: { ...DEFAULT_PORTS },
    membership: DEFAULT_KNOBS,
    hydfs: { ...DEFAULT_HYDFS },
    rainstorm: { ...DEFAULT_RAINSTORM },
  };
  // In the order of TOP, as config.json lists them.
  return Object.fromEntries(Object.keys(TOP).map((k) => [k, values[k]])) as unknown as NodeConfig;
}

export const DEFAULT_NODE_CONFIG: NodeConfig = defaults();

/** Merge a raw config object over the defaults and validate every field. */
export function buildNodeConfig(raw: Record<string, unknown>, env: Record<string, string | undefined> = {}): NodeConfig {
  const errors: string[] = [];
  const top = Object.keys(TOP);
  for (const key of Object.keys(raw)) {
    if (!top.includes(key)) errors.push(`${key}: unknown setting; known settings are ${top.join(", ")}`);
  }
  const cfg = defaults();
  for (const [key, decl] of Object.entries(TOP)) {
    if (raw[key] === undefined) continue;
    if (isSection(decl)) decl.apply(raw[key], cfg, errors);
    else applySettings("", { [key]: raw[key] }, { [key]: decl }, cfg, errors);
  }
  if (env.RAINSTORM_SECRET) cfg.cluster_secret = env.RAINSTORM_SECRET;
  if (errors.length > 0) throw new Error(`invalid configuration: ${errors.join("; ")}`);
  return cfg;
}

/** Settings whose relative values are paths, resolved against the config file's folder. */
const PATH_SETTINGS: PathSetting[] = [
  ...Object.entries(TOP_SETTINGS).flatMap(([key, s]) => (s.unit === "path" ? [{ key, default: s.default as string }] : [])),
  ...Object.entries(SECTIONS).flatMap(([section, decls]) =>
    Object.entries(decls).flatMap(([key, s]) => (s.unit === "path" ? [{ section, key, default: s.default as string }] : [])),
  ),
];

/** config.json (or --config) then the flags, as a NodeConfig: what every daemon starts from. */
export function loadDaemonConfig(args: DaemonArgValues, env: Record<string, string | undefined> = process.env, cwd = process.cwd()): LoadedConfig<NodeConfig> {
  const { raw, path, found } = readDaemonConfig(args, PATH_SETTINGS, cwd);
  return { cfg: buildNodeConfig(raw, env), path, found };
}
