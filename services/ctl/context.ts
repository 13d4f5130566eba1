/**
 * What every ctl command shares: the argument group (--node, --json, --config, --timeout), how a
 * node name becomes a URL, the signing HTTP client, and printing.
 */
import type { ArgsDef } from "citty";
import { buildNodeConfig, type NodeConfig, readConfigFile, resolveNode } from "../shared/config.ts";
import { ClusterHttp, whyFailed } from "../shared/http.ts";

export const commonArgs = {
  node: { type: "string", description: "node to talk to: an alias from config.json (01, 02, ...) or an address", default: "01" },
  json: { type: "boolean", description: "print raw JSON", default: false },
  config: { type: "string", description: "config file (aliases, ports, cluster_secret)", default: "./config.json" },
  timeout: { type: "string", description: "per-request timeout in ms", default: "3000" },
} as const satisfies ArgsDef;

export interface CommonValues {
  node: string;
  json: boolean;
  config: string;
  timeout: string;
}

export class CtlError extends Error {}

export interface Ctx {
  cfg: NodeConfig;
  host: string;
  json: boolean;
  timeoutMs: number;
  /** Signs every request with the cluster secret (which is never sent). */
  http: ClusterHttp;
}

export function makeCtx(args: CommonValues): Ctx {
  const cfg = buildNodeConfig(readConfigFile(args.config, args.config !== "./config.json"), process.env);
  const timeoutMs = Number(args.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CtlError(`--timeout ${args.timeout}: expected a positive integer (ms)`);
  const host = resolveNode(cfg.aliases, args.node);
  if (!/^[A-Za-z0-9.\-]+$/.test(host) || /^\d+$/.test(host)) throw new CtlError(`--node ${args.node}: expected an alias (${Object.keys(cfg.aliases).join(", ")}) or a host address`);
  return { cfg, host, json: args.json, timeoutMs, http: new ClusterHttp(cfg.cluster_secret) };
}

/**
 * One JSON call to a daemon of the chosen node (`port`), signed, with the timeout;
 * an unreachable daemon or a non-2xx answer becomes a CtlError carrying the daemon's message.
 */
export async function daemonCall(ctx: Ctx, daemon: string, port: number, path: string, init: { method?: string; body?: unknown } = {}): Promise<any> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await ctx.http.fetch(`http://${ctx.host}:${port}${path}`, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), timeoutMs: ctx.timeoutMs });
  } catch (err) {
    throw new CtlError(`${daemon} at ${ctx.host}:${port} unreachable: ${whyFailed(err)}`);
  }
  const text = await res.text();
  let data: any = text;
  try {
    data = JSON.parse(text);
  } catch {}
  if (!res.ok) throw new CtlError(`${ctx.host}: ${data?.error ?? text} (HTTP ${res.status})`);
  return data;
}

/** Call memberd's admin API on the chosen node. */
export function memberCall(ctx: Ctx, path: string, init: { method?: string; body?: unknown } = {}): Promise<any> {
  return daemonCall(ctx, "memberd", ctx.cfg.ports.http, path, init);
}

/** Print JSON with --json, else the human form. */
export function print(ctx: Ctx, data: unknown, human: () => string): void {
  console.log(ctx.json ? JSON.stringify(data, null, 2) : human());
}

/** Left-aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}
