/**
 * What every ctl command shares: the argument group (--node, --json, --config, --timeout), how a
 * node name becomes a URL, the signing HTTP client, and printing.
 */
import type { ArgsDef } from "citty";
import { buildNodeConfig, type NodeConfig, readConfigFile } from "../shared/config.ts";
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
  const host = resolveNodeName(cfg.aliases, args.node, "--node");
  return { cfg, host, json: args.json, timeoutMs, http: new ClusterHttp(cfg.cluster_secret) };
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
