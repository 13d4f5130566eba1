#!/usr/bin/env bun
/**
 * A fleet of "machines" on this one: Linux network namespaces joined by a bridge, node k at
 * <subnet>.k (loopback range, 127.1.0.k by default), each running its own sshd (Debian's
 * openssh-server) for root with a test key, and a client namespace at <subnet>.<nodes+1> to run
 * deploy.ts and ctl from. Root only. Used by fleet_test.ts; also by hand:
 *
 *   bun scripts/deploy/fleet.ts up [--nodes 4] [--dir /tmp/rsfleet]   prints the hosts file and how to use it
 *   bun scripts/deploy/fleet.ts down [--dir /tmp/rsfleet]
 *
 * Each node's sshd runs in a mount namespace of its own: an empty tmpfs hides this repository
 * (and the bun in node_modules) and /run/systemd, and /opt/rainstorm is the node's own folder
 * (<dir>/node-k), so every node looks like a fresh machine with the same install path and
 * deployed programs can only use what deploy copied. Namespace names carry this process's pid:
 * `down` (and every new fleet) removes those of processes that are gone, with everything running
 * in them.
 *
 * The two traps of loopback addresses between namespaces (docs/ARCHITECTURE.md §7): route_localnet=1 on
 * every interface, and lo's 127.0.0.1/8 narrowed to /32, else the 127/8 route on lo takes every
 * 127.1.x packet. The bridge sits in a namespace of its own: nothing changes in the root namespace
 * but the namespace list.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { runCommand } from "../../services/shared/process.ts";

const ROOT = resolve(import.meta.dir, "../..");
export const NS_PREFIX = "rsfleet-";
const SSHD = "/usr/sbin/sshd";

export interface FleetState {
  dir: string;
  subnet: string;
  nodes: number;
  /** Namespace names: the bridge's, node k's at index k-1, the client's. */
  bridgeNs: string;
  nodeNs: string[];
  clientNs: string;
  key: string;
  knownHosts: string;
  hostsFile: string;
}

async function sh(cmd: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<{ code: number; out: string; err: string }> {
  const { code, out, err } = await runCommand(cmd, { timeoutMs: opts.timeoutMs ?? 30_000 });
  if (code !== 0 && !opts.allowFail) throw new Error(`${cmd.join(" ")} failed (exit ${code}): ${err.trim() || out.trim()}`);
  return { code, out, err };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why a fleet cannot run here, or undefined when it can (root, ip netns, sshd, ssh, unshare). */
export async function fleetUnsupported(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, a bridge, sshd per namespace)";
  for (const [bin, pkg] of [
    ["ip", "iproute2"],
    ["ssh", "openssh-client"],
    ["ssh-keygen", "openssh-client"],
    ["unshare", "util-linux"],
    ["tar", "tar"],
  ] as const) {
    if (!Bun.which(bin)) return `${bin} is not installed (apt-get install -y ${pkg})`;
  }
  if (!existsSync(SSHD)) return `${SSHD} is not installed (apt-get install -y openssh-server)`;
  const probe = `${NS_PREFIX}probe-${process.pid}`;
  const add = await sh(["ip", "netns", "add", probe], { allowFail: true });
  if (add.code !== 0) return `ip netns add failed: ${add.err.trim()}`;
  // The nodes' sshd runs in a mount namespace of its own, with tmpfs mounts.
  const mnt = await sh(["ip", "netns", "exec", probe, "unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /opt"], {
    allowFail: true,
  });
  await sh(["ip", "netns", "del", probe], { allowFail: true });
  if (mnt.code !== 0) return `a mount namespace with a tmpfs failed: ${mnt.err.trim()}`;
  return undefined;
}

async function listNamespaces(): Promise<string[]> {
  const r = await sh(["ip", "netns", "list"], { allowFail: true });
  return r.out
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
}

/** Kill every process in a namespace (they are the fleet's: sshd, sessions, daemons), then delete it. */
async function removeNamespace(ns: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const pids = (await sh(["ip", "netns", "pids", ns], { allowFail: true })).out
      .split("\n")
      .map(Number)
      .filter((p) => p > 0);
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
    await Bun.sleep(100);
  }
  await sh(["ip", "netns", "del", ns], { allowFail: true });
}

/** Remove the namespaces of fleets whose creating process is gone. */
export async function removeStaleFleets(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    const m = new RegExp(`^${NS_PREFIX}(?:probe-)?(\\d+)-?`).exec(ns);
    return m !== null && !pidAlive(Number(m[1]));
  });
  for (const ns of stale) await removeNamespace(ns);
  return stale;
}

/** Of `existing` (folders that exist), those a node hides: not one the fleet's own folder lies inside. */
export function hiddenPaths(fleetDir: string, existing: readonly string[]): string[] {
  return existing.filter((p) => !`${fleetDir}/`.startsWith(`${p}/`));
}

/** A node's sshd_config: root by key only, on its own address, everything in `sshDir`. */
export function sshdConfig(address: string, sshDir: string, authorizedKeys: string): string {
  return [
    `ListenAddress ${address}`,
    "Port 22",
    `HostKey ${join(sshDir, "host_ed25519")}`,
    `PidFile ${join(sshDir, "sshd.pid")}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "PrintMotd no",
    "Subsystem sftp internal-sftp",
    "MaxStartups 50:30:100",
    "LogLevel ERROR",
    "",
  ].join("\n");
}

/** The shell line a node's mount namespace runs: tmpfs over `hide` and /opt, `home` as /opt/rainstorm, then sshd. */
export function sshdScript(hide: readonly string[], home: string, sshDir: string): string {
  return [
    ...hide.map((p) => `mount -t tmpfs -o size=1m,mode=0755 tmpfs '${p}'`),
    "mount -t tmpfs -o mode=0755 tmpfs /opt",
    "mkdir -p /opt/rainstorm",
    `mount --bind '${home}' /opt/rainstorm`,
    `exec ${SSHD} -D -f '${join(sshDir, "sshd_config")}' -E '${join(sshDir, "sshd.log")}'`,
  ].join(" && ");
}

/** The ssh command that checks a node answers as a fresh machine: /opt/rainstorm there, no systemd. */
export function sshProbe(key: string, knownHosts: string, address: string): string[] {
  return [
    "ssh",
    "-F",
    "/dev/null",
    "-i",
    key,
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=2",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    "LogLevel=ERROR",
    `root@${address}`,
    "test -d /opt/rainstorm && ! test -e /run/systemd/system",
  ];
}

export class Fleet {
  private constructor(readonly state: FleetState) {}

  static load(dir: string): Fleet {
    return new Fleet(JSON.parse(readFileSync(join(dir, "fleet.json"), "utf8")) as FleetState);
  }

  address(k: number): string {
    return `${this.state.subnet}.${k}`;
  }

  get clientAddress(): string {
    return this.address(this.state.nodes + 1);
  }

  /** Node k's /opt/rainstorm, seen from here. */
  nodeDir(k: number): string {
    return join(this.state.dir, `node-${k}`);
  }

  get clientDir(): string {
    return join(this.state.dir, "client");
  }

  /** The command that runs `cmd` in namespace `ns`. */
  inNs(ns: string, cmd: string[]): string[] {
    return ["ip", "netns", "exec", ns, ...cmd];
  }

  /**
   * Make the namespaces, the bridge, the addresses and the keys, and start sshd on every node;
   * returns once each answers ssh from the client namespace.
   */
  static async up(opts: { dir?: string; nodes?: number; subnet?: string; tag?: string; log?: (l: string) => void } = {}): Promise<Fleet> {
    const log = opts.log ?? (() => {});
    const nodes = opts.nodes ?? 4;
    const subnet = opts.subnet ?? "127.1.0";
    if (!/^127\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet ${subnet}: expected 127.X.Y`);
    const dir = resolve(opts.dir ?? join(tmpdir(), `rsfleet-${process.pid}`));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // With this process's pid in the names, a later fleet removes them should this process die
    // before its `down`; a fleet made by hand (the CLI) has a fixed tag and stays until `down`.
    const tag = opts.tag ?? `${NS_PREFIX}${process.pid}`;
    const state: FleetState = {
      dir,
      subnet,
      nodes,
      bridgeNs: `${tag}-br`,
      nodeNs: Array.from({ length: nodes }, (_, i) => `${tag}-n${i + 1}`),
      clientNs: `${tag}-client`,
      key: join(dir, "id_ed25519"),
      knownHosts: join(dir, "known_hosts"),
      hostsFile: join(dir, "hosts"),
    };
    const fleet = new Fleet(state);
    writeFileSync(join(dir, "fleet.json"), JSON.stringify(state, null, 2));
    try {
      await removeStaleFleets();
      await fleet.network();
      log(`namespaces up: ${[...state.nodeNs, state.clientNs].join(", ")} on ${subnet}.1-${nodes + 1}`);
      await fleet.sshds();
      log(`sshd answering on ${Array.from({ length: nodes }, (_, i) => fleet.address(i + 1)).join(", ")}`);
      writeFileSync(
        state.hostsFile,
        [
          "# A fleet of network namespaces on this machine (scripts/deploy/fleet.ts): root over ssh with a test key.",
          `ssh_key=${state.key}`,
          "ssh_config=/dev/null",
          `ssh_option=UserKnownHostsFile=${state.knownHosts}`,
          "ssh_option=StrictHostKeyChecking=accept-new",
          "user=root",
          "dir=/opt/rainstorm",
          "supervisor=plain",
          "",
          ...Array.from({ length: nodes }, (_, i) => `${fleet.address(i + 1)}${i === 0 ? " introducer" : ""}`),
          "",
        ].join("\n"),
      );
    } catch (err) {
      await fleet.down();
      throw err;
    }
    return fleet;
  }

  private async network(): Promise<void> {
    const s = this.state;
    await sh(["ip", "netns", "add", s.bridgeNs]);
    await sh(["ip", "-n", s.bridgeNs, "link", "add", "br0", "type", "bridge"]);
    await sh(["ip", "-n", s.bridgeNs, "link", "set", "br0", "up"]);
    const all = [...s.nodeNs, s.clientNs];
    for (const [i, ns] of all.entries()) {
      const k = i + 1;
      await sh(["ip", "netns", "add", ns]);
      // Both ends are made where they live: no name ever exists in the root namespace.
      await sh(["ip", "-n", s.bridgeNs, "link", "add", `v${k}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      await sh(["ip", "-n", s.bridgeNs, "link", "set", `v${k}`, "master", "br0", "up"]);
      const setup = [
        "sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.default.route_localnet=1 net.ipv4.conf.lo.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1",
        "ip link set lo up",
        "ip addr del 127.0.0.1/8 dev lo",
        "ip addr add 127.0.0.1/32 dev lo",
        `ip addr add ${this.address(k)}/16 dev eth0`,
        "ip link set eth0 up",
      ].join(" && ");
      await sh(this.inNs(ns, ["sh", "-c", setup]));
    }
  }

  private async sshds(): Promise<void> {
    const s = this.state;
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation folder
    await sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rainstorm-fleet", "-f", s.key]);
    writeFileSync(join(s.dir, "authorized_keys"), readFileSync(`${s.key}.pub`), { mode: 0o600 });
    mkdirSync(this.clientDir, { recursive: true });
    const hide = hiddenPaths(
      s.dir,
      [ROOT, "/run/systemd"].filter((p) => existsSync(p)),
    );
    for (const [i, ns] of s.nodeNs.entries()) await this.startSshd(i + 1, ns, hide);
    const deadline = Date.now() + 20_000;
    for (let k = 1; k <= s.nodes; k++) await this.waitForSshd(k, deadline);
  }

  /** Node k's host key and sshd_config, and its sshd started in a mount namespace that hides `hide`. */
  private async startSshd(k: number, ns: string, hide: string[]): Promise<void> {
    const home = this.nodeDir(k);
    const sshDir = join(this.state.dir, `sshd-${k}`);
    mkdirSync(home, { recursive: true });
    mkdirSync(sshDir, { recursive: true });
    await sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(sshDir, "host_ed25519")]);
    writeFileSync(join(sshDir, "sshd_config"), sshdConfig(this.address(k), sshDir, join(this.state.dir, "authorized_keys")));
    // Not waited for here: `down` ends it with everything else in the namespace.
    Bun.spawn(this.inNs(ns, ["unshare", "-m", "--propagation", "private", "sh", "-c", sshdScript(hide, home, sshDir)]), {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    }).unref();
  }

  /** Until `deadline` (Date.now() ms), try ssh from the client namespace to node k until it answers as a fresh machine. */
  private async waitForSshd(k: number, deadline: number): Promise<void> {
    const s = this.state;
    for (;;) {
      const r = await sh(this.inNs(s.clientNs, sshProbe(s.key, s.knownHosts, this.address(k))), { allowFail: true });
      if (r.code === 0) return;
      if (Date.now() > deadline) {
        const log = (() => {
          try {
            return readFileSync(join(s.dir, `sshd-${k}`, "sshd.log"), "utf8");
          } catch {
            return "";
          }
        })();
        throw new Error(`sshd on ${this.address(k)} did not answer: ${r.err.trim()} ${log.trim()}`);
      }
      await Bun.sleep(100);
    }
  }

  /** Stop everything running in the fleet's namespaces, delete them and the fleet's folder. */
  async down(keepDir = false): Promise<void> {
    const s = this.state;
    const mine = new Set([...s.nodeNs, s.clientNs, s.bridgeNs]);
    for (const ns of (await listNamespaces()).filter((n) => mine.has(n))) await removeNamespace(ns);
    if (!keepDir) rmSync(s.dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      dir: { type: "string", default: join(tmpdir(), "rsfleet") },
      nodes: { type: "string", default: "4" },
      subnet: { type: "string", default: "127.1.0" },
    },
    allowPositionals: true,
    strict: true,
  });
  const verb = positionals[0];
  if (verb === "up") {
    const why = await fleetUnsupported();
    if (why) {
      console.error(`error: ${why}`);
      process.exit(1);
    }
    const f = await Fleet.up({ dir: values.dir, nodes: Number(values.nodes), subnet: values.subnet, tag: `${NS_PREFIX}manual`, log: (l) => console.log(l) });
    console.log(`fleet up in ${f.state.dir}; hosts file ${f.state.hostsFile}; client namespace ${f.state.clientNs}:`);
    console.log(`  ip netns exec ${f.state.clientNs} node_modules/.bin/bun scripts/deploy.ts up --hosts ${f.state.hostsFile}`);
    console.log(`then: node_modules/.bin/bun scripts/deploy/fleet.ts down --dir ${f.state.dir}`);
  } else if (verb === "down") {
    await Fleet.load(values.dir!).down();
    console.log(`fleet in ${values.dir} removed`);
  } else {
    console.error("usage: bun scripts/deploy/fleet.ts up|down [--dir DIR] [--nodes N] [--subnet 127.X.Y]");
    process.exit(2);
  }
}
