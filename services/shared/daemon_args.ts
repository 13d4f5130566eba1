/**
 * The flags every daemon takes (docs/ARCHITECTURE.md §1), as one citty argument group (for --help), their
 * strict parsing (an unknown flag or a missing value is a usage error, never ignored), and the
 * raw config they produce: config.json first, flags override it (services/node_config.ts
 * validates it). Relative paths in the file (the settings declared with unit "path": data_dir,
 * hydfs.local_files_dir, rainstorm.ops_dir) resolve against the file's folder; a relative
 * --data-dir or --config against the working directory.
 */
import type { ArgsDef } from "citty";
import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { isObject, readConfigFile } from "./config.ts";

export const DEFAULT_CONFIG_PATH = "./config.json";

export const daemonArgs = {
  config: { type: "string", description: "config file (relative paths in it resolve against its folder)", default: DEFAULT_CONFIG_PATH },
  host: { type: "string", description: "address to bind and advertise (overrides config host)" },
  "data-dir": { type: "string", description: "data directory (overrides config data_dir)" },
  introducer: { type: "string", description: "introducer host:port to join through; comma-separated for several" },
  "is-introducer": { type: "boolean", description: "run the introducer on this node" },
  secret: { type: "string", description: "cluster secret (prefer env RAINSTORM_SECRET: flags show in ps)" },
} as const satisfies ArgsDef;

export interface DaemonArgValues {
  config: string;
  host?: string;
  "data-dir"?: string;
  introducer?: string;
  "is-introducer"?: boolean;
  secret?: string;
  version?: boolean;
  help?: boolean;
}

/** A command-line mistake: the daemon prints it and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const STRING_FLAGS = new Set(["config", "host", "data-dir", "introducer", "secret"]);
const BOOLEAN_FLAGS = new Set(["is-introducer", "version", "help"]);

/**
 * Parse a daemon's command line strictly: `--flag value`, `--flag=value`, boolean flags alone
 * (or `=true|false`), `-h`. Anything else (an unknown flag, a positional argument, a flag given
 * twice, a string flag without its value) is a UsageError that names it.
 */
export function parseDaemonArgs(raw: string[]): DaemonArgValues {
  const out: DaemonArgValues = { config: DEFAULT_CONFIG_PATH };
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const arg = raw[i]!;
    if (arg === "-h") {
      out.help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      if (arg.startsWith("-") && arg !== "-" && arg !== "--") throw new UsageError(`unknown flag ${arg}; see --help`);
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}: this daemon takes flags only; see --help`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (name === "no-is-introducer" && eq < 0) {
      if (seen.has("is-introducer")) throw new UsageError("flag --is-introducer given twice");
      seen.add("is-introducer");
      out["is-introducer"] = false;
      continue;
    }
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    if (!STRING_FLAGS.has(name) && !BOOLEAN_FLAGS.has(name)) throw new UsageError(`unknown flag --${name}; see --help`);
    if (seen.has(name)) throw new UsageError(`flag --${name} given twice`);
    seen.add(name);
    const values = out as unknown as Record<string, unknown>;
    if (BOOLEAN_FLAGS.has(name)) {
      if (inline === undefined || inline === "true") values[name] = true;
      else if (inline === "false") values[name] = false;
      else throw new UsageError(`flag --${name} takes no value (or =true / =false), got ${JSON.stringify(inline)}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      value = raw[i + 1];
      if (value === undefined || (value.startsWith("--") && value.length > 2)) throw new UsageError(`flag --${name} needs a value; see --help`);
      i++;
    }
    if (value === "") throw new UsageError(`flag --${name}: expected a non-empty value`);
    values[name] = value;
  }
  return out;
}

export interface LoadedConfig<C> {
  cfg: C;
  /** The config file, absolute. */
  path: string;
  /** false when the file is the default ./config.json and it does not exist (built-in defaults apply). */
  found: boolean;
}

/** A setting whose relative value is a path (top-level, or in `section`); left out, it takes `default`. */
export interface PathSetting {
  section?: string;
  key: string;
  default: string;
}

/** Resolve the relative paths of `raw` against the file's folder (a missing top-level one: its default, resolved). */
function resolvePaths(raw: Record<string, unknown>, paths: readonly PathSetting[], baseDir: string): void {
  const fix = (v: unknown) => (typeof v === "string" && v !== "" && !isAbsolute(v) ? resolve(baseDir, v) : v);
  for (const p of paths) {
    if (p.section === undefined) raw[p.key] = fix(raw[p.key] ?? p.default);
    else {
      const s = raw[p.section];
      if (isObject(s) && p.key in s) s[p.key] = fix(s[p.key]);
    }
  }
}

/**
 * The raw settings a daemon starts from: its config file (relative paths resolved against the
 * file's folder), then the flags over it. services/node_config.ts validates the result.
 */
export function readDaemonConfig(
  args: DaemonArgValues,
  paths: readonly PathSetting[],
  cwd = process.cwd(),
): { raw: Record<string, unknown>; path: string; found: boolean } {
  const path = resolve(cwd, args.config);
  const isDefault = args.config === DEFAULT_CONFIG_PATH;
  const found = !isDefault || existsSync(path);
  const raw = readConfigFile(path, !isDefault);
  resolvePaths(raw, paths, dirname(path));
  if (args.host !== undefined) raw.host = args.host;
  if (args["data-dir"] !== undefined) raw.data_dir = resolve(cwd, args["data-dir"]);
  if (args.introducer !== undefined) raw.introducers = args.introducer.split(",").filter(Boolean);
  if (args["is-introducer"] !== undefined) raw.is_introducer = args["is-introducer"];
  if (args.secret !== undefined) raw.cluster_secret = args.secret;
  return { raw, path, found };
}
