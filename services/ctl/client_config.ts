/**
 * ctl's config file: where it is looked for (--config, $RAINSTORM_CONFIG, ./config.json,
 * ~/.config/rainstorm/config.json) and what it says about finding the cluster (seeds, aliases,
 * the leader). Separate from context.ts: reading and checking the file is one concern, using it
 * to reach the cluster another.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { buildNodeConfig, DEFAULT_NODE_CONFIG, type NodeConfig } from "../node_config.ts";
import { readConfigFile } from "../shared/config.ts";
import { CtlError } from "./errors.ts";
import { hostOf, IPV4_DOTTED_QUAD, isHostname } from "./node_names.ts";

/** Where ctl looks for its config when --config is not given and RAINSTORM_CONFIG is not set, in order. */
export function defaultConfigPaths(home = homedir(), cwd = "."): string[] {
  return [cwd === "." ? "./config.json" : join(cwd, "config.json"), join(home, ".config", "rainstorm", "config.json")];
}

/** The environment loadClientConfig looks at (tests give their own). */
export interface ConfigEnv {
  env?: Record<string, string | undefined>;
  home?: string;
  cwd?: string;
}

/**
 * What ctl made of its config: the node config (every default filled in) and what the file
 * itself said about finding the cluster.
 */
export interface ClientConfig {
  cfg: NodeConfig;
  /** The file read; undefined when there was none (then ctl uses the defaults: a node on 127.0.0.1). */
  path?: string;
  /** Every path tried, in order (for the message when none exists). */
  tried: string[];
  /** Nodes to talk to when --node is not given, in order: the first that answers is used. */
  seeds: string[];
  /** The file's `aliases`; undefined when it has none (then node names are learned from the cluster). */
  aliases?: Record<string, string>;
  /** The file's `rainstorm.leader`; undefined when unset (then ctl asks the cluster). */
  leader?: string;
}

/**
 * Find and read ctl's config: `--config` if given, else $RAINSTORM_CONFIG if set (either must
 * exist), else the first of ./config.json and ~/.config/rainstorm/config.json that exists, else
 * none (the defaults). Besides every node setting, a client config may hold `nodes`: addresses
 * of any cluster members, tried in order. The smallest useful config is
 * `{"nodes":["10.0.0.5"]}` or `{"introducers":["10.0.0.1:6000"]}` (only the host is used: ctl
 * talks to the node's daemons on `ports`).
 */
export function loadClientConfig(flag: string | undefined, from: ConfigEnv = {}): ClientConfig {
  const env = from.env ?? process.env;
  let path: string | undefined;
  let named = "";
  const tried: string[] = [];
  if (flag !== undefined) path = flag;
  else if (env.RAINSTORM_CONFIG) {
    path = env.RAINSTORM_CONFIG;
    named = " (named by RAINSTORM_CONFIG)";
  } else {
    for (const p of defaultConfigPaths(from.home ?? homedir(), from.cwd ?? ".")) {
      tried.push(p);
      if (existsSync(p)) {
        path = p;
        break;
      }
    }
  }
  let raw: Record<string, unknown> = {};
  if (path !== undefined) {
    try {
      raw = readConfigFile(path, true);
    } catch (err) {
      throw new CtlError(`${(err as Error).message}${named}`);
    }
  }
  const nodes = raw.nodes;
  delete raw.nodes;
  const where = `config ${path}`;
  if (
    nodes !== undefined &&
    (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((n) => typeof n === "string" && (IPV4_DOTTED_QUAD.test(n) || isHostname(n))))
  ) {
    throw new CtlError(
      `${where}: invalid configuration: nodes: expected a list of node addresses such as ["10.0.0.5", "node2.example.com"], got ${JSON.stringify(nodes)}`,
    );
  }
  let cfg: NodeConfig;
  try {
    cfg = buildNodeConfig(raw, env);
  } catch (err) {
    throw new CtlError(path === undefined ? (err as Error).message : `${where}: ${(err as Error).message}`);
  }
  const fileAliases = raw.aliases === undefined ? undefined : cfg.aliases;
  const seeds: string[] = [...((nodes as string[] | undefined) ?? [])];
  if (fileAliases) {
    const first = Object.hasOwn(fileAliases, "01") ? "01" : Object.keys(fileAliases).sort()[0];
    if (first !== undefined) seeds.push(fileAliases[first]!);
  }
  if (raw.host !== undefined) seeds.push(cfg.host);
  if (raw.introducers !== undefined) seeds.push(...cfg.introducers.map(hostOf));
  if (seeds.length === 0) seeds.push(DEFAULT_NODE_CONFIG.aliases["01"] ?? DEFAULT_NODE_CONFIG.host);
  const leader = typeof raw.rainstorm === "object" && raw.rainstorm !== null && cfg.rainstorm.leader ? cfg.rainstorm.leader : undefined;
  return { cfg, path, tried, seeds: [...new Set(seeds)], aliases: fileAliases, leader };
}
