/**
 * The hosts file of scripts/deploy.ts, and the configs made from it.
 *
 *   # settings for every host: key=value (anywhere in the file; a host's own key=value wins)
 *   user=root
 *   ssh_key=~/.ssh/rainstorm_ed25519
 *   ssh_option=StrictHostKeyChecking=accept-new     (repeatable; each is one `ssh -o`)
 *   ssh_config=/dev/null                             (`ssh -F`: another ssh config, or none)
 *   dir=/opt/rainstorm
 *   secret_file=cluster.secret
 *
 *   # one host per line: its cluster address, then `introducer` and/or key=value overrides
 *   10.0.0.1 introducer
 *   10.0.0.2
 *   10.0.0.3 ssh=vm3.example.com user=admin
 *
 * Values may be quoted ("..." or '...'). Relative paths are taken from the hosts file's folder,
 * `~/` from $HOME. With no host marked `introducer`, the first host is the introducer.
 */
import { QuoteError, splitWords } from "../../services/shared/lines.ts";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { DEFAULT_PORTS } from "../../services/member/config.ts";
import { buildNodeConfig } from "../../services/node_config.ts";

export const SUPERVISORS = ["auto", "systemd", "plain"] as const;
export type Supervisor = (typeof SUPERVISORS)[number];

export interface Host {
  /** The node's address on the cluster network: its config's `host`. */
  address: string;
  introducer: boolean;
  /** What ssh connects to (default: the address). */
  sshHost: string;
  user?: string;
  sshPort?: number;
  sshKey?: string;
  /** Each one `ssh -o <option>`. */
  sshOptions: string[];
  /** `ssh -F <file>` instead of ~/.ssh/config (/dev/null: none). */
  sshConfig?: string;
  /** Install folder on the host: the unpacked bundle, config.json, var/. */
  dir: string;
  supervisor: Supervisor;
}

export interface Inventory {
  file: string;
  hosts: Host[];
  /** The cluster secret written into every config ("" = open cluster). */
  secret: string;
  /** Extra node settings (the `settings` JSON file) merged into every host's config. */
  settings: Record<string, unknown>;
  ports: typeof DEFAULT_PORTS;
  replicaCount: number;
}

/** Flags that override (ssh_option: add to) the hosts file's settings for every host. */
export interface Overrides {
  user?: string;
  sshKey?: string;
  sshPort?: string;
  sshOptions?: string[];
  sshConfig?: string;
  dir?: string;
  supervisor?: string;
  secretFile?: string;
}

const GLOBAL_KEYS = ["user", "ssh_key", "ssh_port", "ssh_option", "ssh_config", "dir", "supervisor", "secret_file", "settings"] as const;
const HOST_KEYS = ["ssh", "user", "ssh_key", "ssh_port", "ssh_option", "ssh_config", "dir", "supervisor"] as const;

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** Install folders go into shell scripts, sed and unit files: absolute, plain characters only. */
const DIR = /^\/[A-Za-z0-9._/-]*$/;

export class HostsError extends Error {}

/** Split a line into words (services/shared/lines.ts splitWords: quotes group, backslash escapes). */
export function words(line: string): string[] {
  try {
    return splitWords(line);
  } catch (err) {
    if (err instanceof QuoteError) throw new HostsError(err.message);
    throw err;
  }
}

function expandPath(p: string, base: string, home = homedir()): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return join(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(base, p);
}

function checkPort(v: string, what: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new HostsError(`${what}: expected a port 1..65535, got ${JSON.stringify(v)}`);
  return n;
}

function checkDir(v: string, what: string): string {
  if (!DIR.test(v) || v.split("/").includes("..") || v === "/")
    throw new HostsError(`${what}: expected an absolute folder of letters, digits and ._-/ (such as /opt/rainstorm), got ${JSON.stringify(v)}`);
  return v.replace(/\/+$/, "");
}

function checkSupervisor(v: string, what: string): Supervisor {
  if (!(SUPERVISORS as readonly string[]).includes(v)) throw new HostsError(`${what}: expected one of ${SUPERVISORS.join(", ")}, got ${JSON.stringify(v)}`);
  return v as Supervisor;
}

/** One host line before the settings are applied: its address and its own overrides. */
export interface HostLine {
  line: number;
  address: string;
  introducer: boolean;
  kv: Record<string, string>;
  options: string[];
}

/** The settings lines (for every host) and the host lines of a hosts file, in file order. */
export interface HostsText {
  global: Record<string, string>;
  globalOptions: string[];
  hosts: HostLine[];
}

/**
 * One line of a hosts file (comments already stripped, not empty): either settings for every
 * host (`key=value ...`) or a host (`address [introducer] [key=value ...]`). `where` prefixes the
 * messages. Pure.
 */
export function parseLine(line: string, lineNo: number, where: string): { settings: [string, string][] } | { host: HostLine } {
  let toks: string[];
  try {
    toks = words(line);
  } catch (err) {
    throw new HostsError(`${where}: ${(err as Error).message}`);
  }
  if (toks[0]!.includes("=")) return { settings: toks.map((t) => parseSetting(t, where)) };
  return { host: parseHostLine(toks as [string, ...string[]], lineNo, where) };
}

/** One `key=value` of a settings line, the key checked against GLOBAL_KEYS. */
function parseSetting(t: string, where: string): [string, string] {
  const eq = t.indexOf("=");
  if (eq < 0) throw new HostsError(`${where}: expected key=value settings on a settings line, got ${JSON.stringify(t)}`);
  const [k, v] = [t.slice(0, eq), t.slice(eq + 1)];
  if (!(GLOBAL_KEYS as readonly string[]).includes(k)) throw new HostsError(`${where}: unknown setting ${JSON.stringify(k)}; known: ${GLOBAL_KEYS.join(", ")}`);
  return [k, v];
}

/** A host line's words: the address, then `introducer` and/or HOST_KEYS overrides. */
function parseHostLine([address, ...rest]: [string, ...string[]], lineNo: number, where: string): HostLine {
  if (!IPV4.test(address) && !HOSTNAME.test(address))
    throw new HostsError(`${where}: ${JSON.stringify(address)}: expected a host's cluster address (IPv4 or host name) or key=value`);
  const entry: HostLine = { line: lineNo, address, introducer: false, kv: {}, options: [] };
  for (const t of rest) {
    if (t === "introducer") {
      entry.introducer = true;
      continue;
    }
    const eq = t.indexOf("=");
    const k = eq < 0 ? t : t.slice(0, eq);
    if (eq < 0 || !(HOST_KEYS as readonly string[]).includes(k))
      throw new HostsError(`${where}: ${JSON.stringify(t)}: expected "introducer" or one of ${HOST_KEYS.map((h) => `${h}=`).join(", ")}`);
    if (k === "ssh_option") entry.options.push(t.slice(eq + 1));
    else entry.kv[k] = t.slice(eq + 1);
  }
  return entry;
}

/**
 * Every line of a hosts file's text: settings gathered (ssh_option accumulates, other keys: the
 * last wins), hosts checked (at least one, none twice), the first host the introducer when none
 * is marked. Pure.
 */
export function parseHostsText(text: string, file: string): HostsText {
  const out: HostsText = { global: {}, globalOptions: [], hosts: [] };
  text.split("\n").forEach((rawLine, i) => {
    const line = rawLine.replace(/(^|\s)#.*$/, "").trim();
    if (!line) return;
    const parsed = parseLine(line, i + 1, `${file}:${i + 1}`);
    if ("host" in parsed) out.hosts.push(parsed.host);
    for (const [k, v] of "settings" in parsed ? parsed.settings : []) {
      if (k === "ssh_option") out.globalOptions.push(v);
      else out.global[k] = v;
    }
  });
  if (out.hosts.length === 0) throw new HostsError(`${file}: no hosts (one per line: its cluster address, then "introducer" on the introducer's line)`);
  const seen = new Set<string>();
  for (const r of out.hosts) {
    if (seen.has(r.address)) throw new HostsError(`${file}:${r.line}: host ${r.address} is listed twice`);
    seen.add(r.address);
  }
  if (!out.hosts.some((r) => r.introducer)) out.hosts[0]!.introducer = true;
  return out;
}

/** A host with every setting resolved: the flag, else the host's own value, else the file's setting. */
function resolveHost(r: HostLine, parsed: HostsText, over: Overrides, file: string, base: string): Host {
  const where = `${file}:${r.line} (${r.address})`;
  const pick = (k: string, flag: string | undefined): string | undefined => flag ?? r.kv[k] ?? parsed.global[k];
  const key = pick("ssh_key", over.sshKey);
  const port = pick("ssh_port", over.sshPort);
  const sshConfig = pick("ssh_config", over.sshConfig);
  return {
    address: r.address,
    introducer: r.introducer,
    sshHost: r.kv.ssh ?? r.address,
    user: pick("user", over.user),
    sshPort: port === undefined ? undefined : checkPort(port, `${where}: ssh_port`),
    sshKey: key === undefined ? undefined : expandPath(key, base),
    sshOptions: [...parsed.globalOptions, ...r.options, ...(over.sshOptions ?? [])],
    sshConfig: sshConfig === undefined ? undefined : expandPath(sshConfig, base),
    dir: checkDir(pick("dir", over.dir) ?? "/opt/rainstorm", `${where}: dir`),
    supervisor: checkSupervisor(pick("supervisor", over.supervisor) ?? "auto", `${where}: supervisor`),
  };
}

/** The cluster secret: from the secret file (the flag's is relative to the cwd), else $RAINSTORM_SECRET, else "". */
function readSecret(global: Record<string, string>, over: Overrides, env: Record<string, string | undefined>, file: string, base: string): string {
  const secretFile = over.secretFile ?? global.secret_file;
  if (secretFile === undefined) return env.RAINSTORM_SECRET ?? "";
  const p = expandPath(secretFile, over.secretFile !== undefined ? process.cwd() : base);
  let secret: string;
  try {
    secret = readFileSync(p, "utf8").trim();
  } catch (err) {
    throw new HostsError(`${file}: secret_file ${p}: ${(err as Error).message}`);
  }
  if (!secret) throw new HostsError(`${file}: secret_file ${p} is empty`);
  return secret;
}

/** The `settings` JSON file's node settings ({} without one); what the hosts file sets is refused. */
function readSettings(global: Record<string, string>, file: string, base: string): Record<string, unknown> {
  if (global.settings === undefined) return {};
  const p = expandPath(global.settings, base);
  let settings: Record<string, unknown>;
  try {
    settings = JSON.parse(readFileSync(p, "utf8"));
  } catch (err) {
    throw new HostsError(`${file}: settings ${p}: ${(err as Error).message}`);
  }
  for (const k of ["host", "is_introducer", "introducers", "cluster_secret"]) {
    if (k in settings) throw new HostsError(`${file}: settings ${p}: ${k} comes from the hosts file; remove it from the settings file`);
  }
  return settings;
}

/** Parse a hosts file's text; `file` names it in messages and anchors relative paths. */
export function parseHosts(text: string, file: string, over: Overrides = {}, env: Record<string, string | undefined> = process.env): Inventory {
  const base = dirname(resolve(file));
  const parsed = parseHostsText(text, file);
  const hosts = parsed.hosts.map((r) => resolveHost(r, parsed, over, file, base));
  for (const h of hosts) {
    if (h.sshKey && !existsSync(h.sshKey)) throw new HostsError(`${file}: ssh_key ${h.sshKey}: no such file`);
  }
  const secret = readSecret(parsed.global, over, env, file, base);
  const settings = readSettings(parsed.global, file, base);
  // Validate the settings once, as a node would (and learn the ports and replica count from them).
  let cfg;
  try {
    cfg = buildNodeConfig({ ...settings, host: hosts[0]!.address });
  } catch (err) {
    throw new HostsError(`${file}: settings: ${(err as Error).message}`);
  }
  return { file, hosts, secret, settings, ports: cfg.ports, replicaCount: cfg.hydfs.replica_count };
}

export function readHosts(file: string, over: Overrides = {}): Inventory {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new HostsError(`hosts file ${file}: ${(err as Error).message} (write one: see deploy/hosts.example)`);
  }
  return parseHosts(text, file, over);
}

export function introducerList(inv: Inventory): string[] {
  return inv.hosts.filter((h) => h.introducer).map((h) => `${h.address}:${inv.ports.introducer}`);
}

/** One top-level key per line, values compact: the 5-line config of DEPLOY.md, plus what the inventory adds. */
export function formatConfig(obj: Record<string, unknown>): string {
  const lines = Object.entries(obj).map(
    ([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v, null, 1).replace(/\n\s*/g, " ").replace(/\[ /g, "[").replace(/ \]/g, "]")}`,
  );
  return `{\n${lines.join(",\n")}\n}\n`;
}

/** The config.json deploy writes on `h`: its address, the introducers, the secret, the settings. */
export function hostConfig(inv: Inventory, h: Host): Record<string, unknown> {
  return {
    host: h.address,
    introducers: introducerList(inv),
    is_introducer: h.introducer,
    ...(inv.secret ? { cluster_secret: inv.secret } : {}),
    ...inv.settings,
  };
}

/** A config for ctl on a client machine: where the cluster is, node names 01.., the secret and ports. */
export function clientConfig(inv: Inventory): Record<string, unknown> {
  const aliases = Object.fromEntries(inv.hosts.map((h, i) => [String(i + 1).padStart(2, "0"), h.address]));
  return {
    introducers: introducerList(inv),
    aliases,
    ...(inv.secret ? { cluster_secret: inv.secret } : {}),
    ...(inv.settings.ports !== undefined ? { ports: inv.settings.ports } : {}),
  };
}
