/**
 * The flags every daemon takes (DESIGN.md §3.1), as one citty argument group, and the
 * config they produce: config.json first, flags override it.
 */
import type { ArgsDef } from "citty";
import { buildNodeConfig, type NodeConfig, readConfigFile } from "./config.ts";

export const daemonArgs = {
  config: { type: "string", description: "config file", default: "./config.json" },
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
}

export function loadDaemonConfig(args: DaemonArgValues, env: Record<string, string | undefined> = process.env): NodeConfig {
  const raw = readConfigFile(args.config, args.config !== "./config.json");
  if (args.host !== undefined) raw.host = args.host;
  if (args["data-dir"] !== undefined) raw.data_dir = args["data-dir"];
  if (args.introducer !== undefined) raw.introducers = args.introducer.split(",").filter(Boolean);
  if (args["is-introducer"] !== undefined) raw.is_introducer = args["is-introducer"];
  if (args.secret !== undefined) raw.cluster_secret = args.secret;
  return buildNodeConfig(raw, env);
}
