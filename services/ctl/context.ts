/**
 * What every ctl command shares: the argument group (--node, --json, --config, --timeout), how a
 * node name becomes a host (config aliases, or names learned from the cluster), how ctl finds a
 * node that answers, the signing HTTP client, and printing. The config file is read by
 * client_config.ts, pure name handling is in node_names.ts, the RainStorm leader is found by
 * leader.ts, and the errors are in errors.ts.
 *
 * A client needs little configuration: one node or introducer it can reach (and the secret, from
 * RAINSTORM_SECRET or the file). Everything else - the other nodes and their names, the leader -
 * it asks the cluster for.
 */
import type { ArgsDef } from "citty";
import type { NodeConfig } from "../node_config.ts";
import { ClusterHttp, whyFailed } from "../shared/http.ts";
import { type ClientConfig, loadClientConfig } from "./client_config.ts";
import { CtlError, CtlHttpError } from "./errors.ts";
import { namesFromMembers, resolveNodeName } from "./node_names.ts";

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

/** How one daemonCall differs from a GET to the chosen node under --timeout. */
export interface CallInit {
  method?: string;
  body?: unknown;
  host?: string;
  timeoutMs?: number;
}

/**
 * One JSON call to a daemon of the chosen node (`port`; `init.host` for another node), signed,
 * with the timeout (--timeout, or `init.timeoutMs`); an unreachable daemon is a CtlError, a
 * non-2xx answer a CtlHttpError carrying the daemon's message.
 */
export async function daemonCall(
  ctx: Ctx,
  daemon: string,
  port: number,
  path: string,
  init: CallInit = {},
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
      timeoutMs: init.timeoutMs ?? ctx.timeoutMs,
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
export function memberCall(ctx: Ctx, path: string, init: CallInit = {}): Promise<any> {
  return daemonCall(ctx, "memberd", ctx.cfg.ports.http, path, init);
}

// ---- node names ----------------------------------------------------------------------------------

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
