/**
 * What every ctl command shares: the argument group (--node, --json, --config, --timeout), where
 * the config comes from, how a node name becomes a host (config aliases, or names learned from
 * the cluster), how ctl finds a node that answers and the RainStorm leader, the signing HTTP
 * client, and printing.
 *
 * A client needs little configuration: one node or introducer it can reach (and the secret, from
 * RAINSTORM_SECRET or the file). Everything else - the other nodes and their names, the leader -
 * it asks the cluster for.
 */
import type { ArgsDef } from "citty";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { buildNodeConfig, DEFAULT_NODE_CONFIG, type NodeConfig } from "../node_config.ts";
import { leaderHost } from "../rainstorm/config.ts";
import { readConfigFile } from "../shared/config.ts";
import { ClusterHttp, whyFailed } from "../shared/http.ts";

export const commonArgs = {
  node: {
    type: "string",
    description: "node to talk to: a config alias, a name `ctl nodes` lists, or an address (default: the first node of the config that answers)",
  },
  json: { type: "boolean", description: "print raw JSON", default: false },
  config: { type: "string", description: "config file (default: $RAINSTORM_CONFIG, else ./config.json, else ~/.config/rainstorm/config.json)" },
  timeout: { type: "string", description: "per-request timeout in ms", default: "3000" },
} as const satisfies ArgsDef;

export interface CommonValues {
  node?: string;
  json: boolean;
  config?: string;
  timeout: string;
}

export class CtlError extends Error {}

/** A daemon's non-2xx answer, with its status (hydfs.ts retries 503; a 421 from rainstormd names the leader). */
export class CtlHttpError extends CtlError {
  constructor(
    message: string,
    readonly status: number,
    /** The answer's JSON body, when it had one. */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

// ---- the config file ---------------------------------------------------------------------------

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

/** "10.0.0.1:6000" -> "10.0.0.1". */
export function hostOf(hostPort: string): string {
  const colon = hostPort.lastIndexOf(":");
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
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

// ---- the context of one command ----------------------------------------------------------------

export interface Ctx {
  cfg: NodeConfig;
  /** The node this command talks to. */
  host: string;
  json: boolean;
  timeoutMs: number;
  /** Signs every request with the cluster secret (which is never sent). */
  http: ClusterHttp;
  /** Where the config came from and what it says about the cluster (absent in hand-made contexts). */
  client?: ClientConfig;
  /** --node was given: leader commands ask that node (whose rainstormd points at the leader if it is not). */
  nodeGiven?: boolean;
  /** Node names learned from the cluster, once asked (learnedNames). */
  learned?: Record<string, string>;
}

export async function makeCtx(args: CommonValues): Promise<Ctx> {
  const client = loadClientConfig(args.config);
  const timeoutMs = Number(args.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CtlError(`--timeout ${args.timeout}: expected a positive integer (ms)`);
  const ctx: Ctx = {
    cfg: client.cfg,
    host: "",
    json: args.json,
    timeoutMs,
    http: new ClusterHttp(client.cfg.cluster_secret),
    client,
    nodeGiven: args.node !== undefined,
  };
  ctx.host = args.node !== undefined ? await nodeHost(ctx, args.node, "--node") : await reachableSeed(ctx);
  return ctx;
}

/** Probes give up after this long (or --timeout, if shorter): a live memberd answers /health in a millisecond. */
const PROBE_TIMEOUT_MS = 2000;

/**
 * The node to talk to when --node is not given: the config's only seed as it is, or the first of
 * several whose memberd answers (all asked at once). With no config file at all, the default
 * node must answer, else the message lists the paths tried and what a config looks like.
 */
export async function reachableSeed(ctx: Ctx): Promise<string> {
  const client = ctx.client;
  if (!client) return ctx.host;
  if (client.seeds.length === 1 && client.path !== undefined) return client.seeds[0]!;
  const port = ctx.cfg.ports.http;
  const timeoutMs = Math.min(ctx.timeoutMs, PROBE_TIMEOUT_MS);
  const probes = client.seeds.map((host) =>
    ctx.http.fetch(`http://${host}:${port}/health`, { timeoutMs }).then(
      async (res) => {
        await res.body?.cancel();
        return res.ok ? undefined : `HTTP ${res.status}`;
      },
      (err: unknown) => whyFailed(err),
    ),
  );
  const failures: string[] = [];
  for (const [i, probe] of probes.entries()) {
    const why = await probe;
    if (why === undefined) return client.seeds[i]!;
    failures.push(`${client.seeds[i]}:${port} (${why})`);
  }
  if (client.path === undefined) {
    throw new CtlError(
      `no config file found (tried ${client.tried.join(", ")}; --config and RAINSTORM_CONFIG not given) and no memberd answers at the default node ${failures.join(", ")}; ` +
        `write a config naming one node of the cluster, e.g. {"nodes":["10.0.0.5"]} or {"introducers":["10.0.0.1:6000"]}, to one of those paths, or pass --config FILE or --node ADDRESS`,
    );
  }
  throw new CtlError(`no node of ${client.path} answers: memberd at ${failures.join(", ")}`);
}

/** An IPv4 address as 4 decimal numbers 0-255 without leading zeros (URL parsers read "010" as octal). */
const IPV4_DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** One host name label: letters, digits and hyphens, 1-63 characters, no hyphen at either end. */
const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Longest host name (RFC 1035). */
const MAX_HOSTNAME_CHARS = 253;

/**
 * Whether `name` is a host name ctl may connect to: dot-separated labels (none empty) with at
 * least one letter, whose last label is not a number. URL parsers read a numeric last label as
 * an IPv4 address ("99" is 0.0.0.99, "0x7f.1" is 127.0.0.1), so a name like that is no host name.
 */
export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOSTNAME_CHARS || !/[A-Za-z]/.test(name)) return false;
  const labels = name.split(".");
  if (!labels.every((l) => HOSTNAME_LABEL.test(l))) return false;
  const last = labels[labels.length - 1]!;
  return !/^\d+$/.test(last) && !/^0x[0-9a-f]*$/i.test(last);
}

/**
 * The one way ctl turns a node name from the command line into a host: an alias from the config
 * ("01", or "1" for "01"), an IPv4 dotted quad, or a host name (isHostname). Anything else - "99"
 * when there is no alias 99, "1.2.3", "a/b" - is a CtlError that names the value, where it came
 * from (`what`, e.g. "--node") and the aliases there are.
 */
export function resolveNodeName(aliases: Record<string, string>, name: string, what: string): string {
  // Own keys only: "constructor" or "__proto__" are not aliases.
  if (Object.hasOwn(aliases, name)) return aliases[name]!;
  const padded = name.padStart(2, "0");
  if (/^\d+$/.test(name) && Object.hasOwn(aliases, padded)) return aliases[padded]!;
  if (IPV4_DOTTED_QUAD.test(name) || isHostname(name)) return name;
  const known = Object.keys(aliases);
  throw new CtlError(
    `${what} ${JSON.stringify(name)}: expected an alias (${known.length > 0 ? known.join(", ") : "none in the config"}), an IPv4 address such as 10.0.0.5, or a host name such as node1.example.com`,
  );
}

/**
 * One JSON call to a daemon of the chosen node (`port`; `init.host` for another node), signed,
 * with the timeout; an unreachable daemon is a CtlError, a non-2xx answer a CtlHttpError
 * carrying the daemon's message.
 */
export async function daemonCall(
  ctx: Ctx,
  daemon: string,
  port: number,
  path: string,
  init: { method?: string; body?: unknown; host?: string } = {},
): Promise<any> {
  const host = init.host ?? ctx.host;
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await ctx.http.fetch(`http://${host}:${port}${path}`, {
      method: init.method ?? "GET",
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      timeoutMs: ctx.timeoutMs,
    });
  } catch (err) {
    throw new CtlError(`${daemon} at ${host}:${port} unreachable: ${whyFailed(err)}`);
  }
  const text = await res.text();
  let data: any = text;
  try {
    data = JSON.parse(text);
  } catch {}
  if (!res.ok) throw new CtlHttpError(`${host}: ${data?.error ?? text} (HTTP ${res.status})`, res.status, data);
  return data;
}

/** Call memberd's admin API on the chosen node (or `init.host`). */
export function memberCall(ctx: Ctx, path: string, init: { method?: string; body?: unknown; host?: string } = {}): Promise<any> {
  return daemonCall(ctx, "memberd", ctx.cfg.ports.http, path, init);
}

// ---- node names ----------------------------------------------------------------------------------

/** A member id "host:udpPort@boot" -> host. */
export function memberHost(id: string): string {
  const at = id.indexOf("@");
  return hostOf(at < 0 ? id : id.slice(0, at));
}

/** IPv4 addresses in numeric order, then host names in alphabetical order. */
export function compareHosts(a: string, b: string): number {
  const ipA = IPV4_DOTTED_QUAD.test(a);
  const ipB = IPV4_DOTTED_QUAD.test(b);
  if (ipA && ipB) {
    const pa = a.split(".").map(Number);
    const pb = b.split(".").map(Number);
    for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
    return 0;
  }
  if (ipA !== ipB) return ipA ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Names for the members of a list_mem answer: the hosts of the members that are alive or
 * suspected, in host order (compareHosts), named 01, 02, ... (3 digits from 100 members on).
 */
export function namesFromMembers(members: { id: string; state: string }[]): Record<string, string> {
  const hosts = [...new Set(members.filter((m) => m.state === "alive" || m.state === "suspect").map((m) => memberHost(m.id)))].sort(compareHosts);
  const digits = Math.max(2, String(hosts.length).length);
  return Object.fromEntries(hosts.map((h, i) => [String(i + 1).padStart(digits, "0"), h]));
}

/** The node names learned from the cluster: the member list of a node that answers (asked once per command). */
export async function learnedNames(ctx: Ctx): Promise<Record<string, string>> {
  if (ctx.learned) return ctx.learned;
  const host = ctx.host || (await reachableSeed(ctx));
  const list = await memberCall(ctx, "/list_mem", { host });
  ctx.learned = namesFromMembers(list.members ?? []);
  return ctx.learned;
}

/**
 * A node name from the command line (`what` says where: "--node", "kill_task node") to a host.
 * With `aliases` in the config file, they are the names (and nothing is asked: a name that is
 * none of them is refused before any connection). Without, a number names a member by host order
 * (learnedNames: "3" or "03" is the third). An IPv4 address or a host name is taken as it is.
 */
export async function nodeHost(ctx: Ctx, name: string, what: string): Promise<string> {
  const aliases = ctx.client ? ctx.client.aliases : ctx.cfg.aliases;
  if (aliases !== undefined || !/^\d{1,4}$/.test(name)) return resolveNodeName(aliases ?? {}, name, what);
  const learned = await learnedNames(ctx);
  const host = learned[name] ?? learned[name.padStart(2, "0")] ?? learned[name.padStart(3, "0")];
  if (host !== undefined) return host;
  const known = Object.entries(learned).map(([n, h]) => `${n}=${h}`);
  throw new CtlError(
    `${what} ${JSON.stringify(name)}: no such node; the cluster's members by host order are ${known.length > 0 ? known.join(", ") : "none"} (see ctl nodes); or give an IPv4 address or a host name`,
  );
}

// ---- the RainStorm leader ------------------------------------------------------------------------

/**
 * Where leader commands go first: the node given with --node; else the config's
 * `rainstorm.leader`; else what the cluster says: the leader rule (services/rainstorm/config.ts
 * leaderHost) applied to the introducers of the node ctl reaches (memberd /get).
 */
export async function leaderTarget(ctx: Ctx): Promise<string> {
  if (ctx.nodeGiven || !ctx.client) return ctx.host;
  if (ctx.client.leader) return ctx.client.leader;
  const got = await memberCall(ctx, "/get");
  const node = got?.node ?? {};
  return leaderHost({
    ...ctx.cfg,
    host: typeof node.host === "string" ? node.host : ctx.host,
    introducers: Array.isArray(node.introducers) ? node.introducers : [],
    rainstorm: { ...ctx.cfg.rainstorm, leader: "" },
  });
}

/**
 * The leader named by a rainstormd that is not it: its 421 answer ("this node is not the
 * RainStorm leader; send jobs to X", or a `leader` field), or undefined for any other error.
 */
export function redirectedLeader(err: unknown, from: string): string | undefined {
  if (!(err instanceof CtlHttpError) || err.status !== 421) return undefined;
  const body = err.body as { leader?: unknown; error?: unknown } | undefined;
  const named = typeof body?.leader === "string" ? body.leader : typeof body?.error === "string" ? /send jobs to (\S+?)\.?$/.exec(body.error)?.[1] : undefined;
  if (named === undefined || named === from || !(IPV4_DOTTED_QUAD.test(named) || isHostname(named))) return undefined;
  return named;
}

/**
 * Run `call` against the RainStorm leader (leaderTarget); when that rainstormd answers 421
 * naming another node, once more against that one. Resolves with the host that answered.
 */
export async function atLeader<T>(ctx: Ctx, call: (host: string) => Promise<T>): Promise<{ host: string; value: T }> {
  const first = await leaderTarget(ctx);
  try {
    return { host: first, value: await call(first) };
  } catch (err) {
    const next = redirectedLeader(err, first);
    if (next === undefined) throw err;
    return { host: next, value: await call(next) };
  }
}

/** Print JSON with --json, else the human form. */
export function print(ctx: Ctx, data: unknown, human: () => string): void {
  console.log(ctx.json ? JSON.stringify(data, null, 2) : human());
}

/** Left-aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
