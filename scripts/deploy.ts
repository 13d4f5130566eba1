#!/usr/bin/env bun
/**
 * Deploy RainStorm with ssh to the machines of a hosts file (format: scripts/deploy/hosts.ts,
 * example: deploy/hosts.example), from the bundle `npm run bundle` makes.
 *
 *   bun scripts/deploy.ts up --hosts hosts        push + configure + install + start, wait until joined
 *   bun scripts/deploy.ts push | configure | install | start | stop | restart [--only H,H]
 *   bun scripts/deploy.ts status | logs [--daemon D] [--lines N] [--follow]
 *   bun scripts/deploy.ts rolling-restart         one node at a time; the next only once the last
 *                                                 rejoined and HyDFS re-replication is done
 *   bun scripts/deploy.ts run [--only H] -- bin/memberd --version
 *   bun scripts/deploy.ts client-config [--out FILE]   a config for ctl on another machine
 *
 * On each host the bundle is unpacked into `dir` (default /opt/rainstorm), beside the host's
 * config.json and var/ (data, and the plain supervisor's logs and pids). Daemons run under systemd
 * where systemd runs the host (the bundle's units, logs in the journal), else under the bundle's
 * ./supervise; `supervisor=` in the hosts file (or --supervisor) forces one. Waits and checks ask
 * the cluster through ctl on a host, so only ssh has to reach the hosts.
 */
import { defineCommand, renderUsage, runCommand, type ArgsDef, type CommandDef } from "citty";
import { chmodSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type NodeAnswers, joinedVerdict, parseProbe, type ProbeCommand, replicatedVerdict, type Verdict } from "./deploy/checks.ts";
import { clientConfig, formatConfig, type Host, hostConfig, type Inventory, readHosts } from "./deploy/hosts.ts";
import * as R from "./deploy/remote.ts";
import { Remote, type RunResult } from "./deploy/ssh.ts";

const ROOT = resolve(import.meta.dir, "..");
const DAEMONS = ["memberd", "hydfsd", "rainstormd"] as const;
const POLL_MS = 500;

export class DeployError extends Error {}

type Log = (line: string) => void;

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The newest bundle in dist/ (npm run bundle). */
export function newestBundle(dir = join(ROOT, "dist")): string {
  let best: { path: string; mtime: number } | undefined;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {}
  for (const n of names) {
    if (!/^rainstorm-.+\.tar(\.xz|\.gz)?$/.test(n)) continue;
    const p = join(dir, n);
    const m = statSync(p).mtimeMs;
    if (!best || m > best.mtime) best = { path: p, mtime: m };
  }
  if (!best) throw new DeployError(`no bundle in ${dir}: run npm run bundle first, or pass --bundle FILE`);
  return best.path;
}

export class Deployer {
  constructor(
    readonly inv: Inventory,
    /** The hosts this command acts on (--only), in hosts-file order. */
    readonly selected: Host[],
    private readonly log: Log = (l) => console.log(l),
  ) {}

  private remote(h: Host): Remote {
    return new Remote(h);
  }

  private args(h: Host): [string, string] {
    return [h.dir, h.supervisor];
  }

  /** Run `fn` on every host at once; any failure is reported per host and fails the command. */
  private async each<T>(hosts: Host[], what: string, fn: (h: Host) => Promise<T>): Promise<T[]> {
    const results = await Promise.allSettled(hosts.map(fn));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${hosts[i]!.address}: ${what} failed: ${(r.reason as Error).message}`] : []));
    if (failed.length > 0) throw new DeployError(failed.join("\n"));
    return results.map((r) => (r as PromiseFulfilledResult<T>).value);
  }

  /** Run a remote script; a non-zero exit (or an ssh failure) throws with its stderr. */
  private async must(h: Host, script: string, args: string[] = [], timeoutMs?: number): Promise<string> {
    const r = await this.remote(h).run(script, [...this.args(h), ...args], { timeoutMs });
    if (r.code !== 0) throw new DeployError(describeFailure(r));
    return r.out;
  }

  private say(h: Host, text: string): void {
    for (const line of text.trimEnd().split("\n")) if (line) this.log(`${h.address}: ${line}`);
  }

  async push(bundle: string): Promise<void> {
    const name = basename(bundle);
    const mb = (statSync(bundle).size / 1e6).toFixed(1);
    await this.each(this.selected, "push", async (h) => {
      const t0 = performance.now();
      await this.must(h, R.PREPARE, [name]);
      const incoming = `${h.dir}/.incoming-${name}`;
      const cp = await this.remote(h).copy(bundle, incoming);
      if (cp.code !== 0) throw new DeployError(`scp: ${describeFailure(cp)}`);
      const version = await this.must(h, R.UNPACK, [incoming], 300_000);
      this.say(h, `pushed ${name} (${mb} MB) into ${h.dir} in ${secs(performance.now() - t0)}: ${version.trim()}`);
    });
  }

  async configure(): Promise<void> {
    await this.each(this.selected, "configure", async (h) => {
      const out = await this.must(h, R.CONFIGURE, [formatConfig(hostConfig(this.inv, h))]);
      this.say(h, `${out.trim()}${h.introducer ? " (introducer)" : ""}`);
    });
    if (!this.inv.secret)
      this.log(
        "warning: no cluster secret (secret_file= in the hosts file, --secret-file or RAINSTORM_SECRET): this is an open cluster; anyone who reaches its ports controls it",
      );
  }

  async install(): Promise<void> {
    await this.each(this.selected, "install", async (h) => this.say(h, await this.must(h, R.INSTALL)));
  }

  /**
   * Start the selected hosts (introducers first, then the rest at once) and wait until every
   * node that is up has joined: the started ones and those already running. Returns the time
   * from the first start to joined.
   */
  async start(opts: { daemons?: string[]; wait?: boolean; timeoutMs?: number } = {}): Promise<number> {
    const t0 = performance.now();
    const daemons = opts.daemons ?? [];
    const first = this.selected.filter((h) => h.introducer);
    const rest = this.selected.filter((h) => !h.introducer);
    const startSome = (hosts: Host[]) => this.each(hosts, "start", async (h) => this.say(h, await this.must(h, R.START, daemons)));
    if (first.length > 0 && rest.length > 0) {
      await startSome(first);
      // Their memberd answering first lets the others join at their first attempt.
      const addrs = first.map((h) => h.address);
      await this.waitFor(
        "introducers up",
        opts.timeoutMs ?? 60_000,
        first,
        ["list_self"],
        (a) => verdictOf(addrs.map((h) => (a.get(h)?.ok.list_self ? "" : `${h}: memberd not answering yet`))),
        addrs,
      );
    }
    await startSome(first.length > 0 && rest.length > 0 ? rest : [...first, ...rest]);
    if (opts.wait === false || (daemons.length > 0 && !daemons.includes("memberd"))) return performance.now() - t0;
    const up = await this.upHosts(this.selected.map((h) => h.address));
    await this.waitJoined(up, opts.timeoutMs ?? 120_000);
    return performance.now() - t0;
  }

  async stop(daemons: string[] = []): Promise<void> {
    await this.each(this.selected, "stop", async (h) => this.say(h, await this.must(h, R.STOP, daemons, 60_000)));
  }

  /** The inventory's hosts whose memberd answers, plus `plus` (hosts just started). */
  async upHosts(plus: string[] = []): Promise<string[]> {
    const all = this.inv.hosts.map((h) => h.address);
    const observers = [...this.inv.hosts].sort((a, b) => Number(plus.includes(b.address)) - Number(plus.includes(a.address)));
    for (const o of observers) {
      const answers = await this.probe(o, all, ["list_self"]).catch(() => undefined);
      if (!answers) continue;
      return all.filter((a) => plus.includes(a) || answers.get(a)?.ok.list_self);
    }
    return plus;
  }

  /** ctl's answers about `nodes`, asked on host `via`. */
  async probe(via: Host, nodes: string[], cmds: ProbeCommand[]): Promise<Map<string, NodeAnswers>> {
    const out = await this.must(via, R.PROBE, [cmds.join(","), ...nodes], 60_000);
    return parseProbe(out);
  }

  /**
   * Poll until `judge` says ok, asking through the first of `observers` whose ssh and ctl work.
   * Throws with the last reasons after `timeoutMs`.
   */
  async waitFor(
    what: string,
    timeoutMs: number,
    observers: Host[],
    cmds: ProbeCommand[],
    judge: (a: Map<string, NodeAnswers>) => Verdict,
    nodes?: string[],
  ): Promise<number> {
    const t0 = performance.now();
    const targets = nodes ?? this.inv.hosts.map((h) => h.address);
    let last: string[] = ["no answer yet"];
    let i = 0;
    for (;;) {
      const via = observers[i % observers.length]!;
      try {
        const v = judge(await this.probe(via, targets, cmds));
        if (v.ok) return performance.now() - t0;
        last = v.why;
      } catch (err) {
        last = [`asking through ${via.address}: ${(err as Error).message.split("\n")[0]}`];
        i++;
      }
      if (performance.now() - t0 > timeoutMs) throw new DeployError(`timed out after ${secs(timeoutMs)} waiting for ${what}:\n  ${last.join("\n  ")}`);
      await Bun.sleep(POLL_MS);
    }
  }

  private hostsOf(addresses: string[]): Host[] {
    return this.inv.hosts.filter((h) => addresses.includes(h.address));
  }

  /** Wait until every node of `up` is alive, ready and sees all of `up` alive. */
  waitJoined(up: string[], timeoutMs: number, observers?: Host[]): Promise<number> {
    return this.waitFor(`${up.join(", ")} to join`, timeoutMs, observers ?? this.hostsOf(up), ["list_self", "list_mem"], (a) => joinedVerdict(a, up), up);
  }

  /** Wait until every node of `up` has one ring and every file sits on exactly its replicas. */
  async waitReplicated(up: string[], timeoutMs: number, observers?: Host[]): Promise<{ ms: number; files: number }> {
    let files = 0;
    const ms = await this.waitFor(
      "HyDFS re-replication",
      timeoutMs,
      observers ?? this.hostsOf(up),
      ["liststore", "list_mem_ids"],
      (a) => {
        const v = replicatedVerdict(a, up, this.inv.replicaCount, this.inv.ports.hydfs);
        files = v.files;
        return v;
      },
      up,
    );
    return { ms, files };
  }

  /**
   * Restart the selected nodes one at a time (introducers last: a restarted leader fails the jobs
   * it runs). Before each: the cluster is joined and re-replicated; after each: the node rejoined
   * and re-replication is done again, before the next one stops.
   */
  async rollingRestart(timeoutMs: number): Promise<{ node: string; rejoinMs: number; replicateMs: number; files: number }[]> {
    const all = this.inv.hosts.map((h) => h.address);
    const order = [...this.selected.filter((h) => !h.introducer), ...this.selected.filter((h) => h.introducer)];
    const t0 = performance.now();
    await this.waitJoined(all, timeoutMs);
    const before = await this.waitReplicated(all, timeoutMs);
    this.log(
      `cluster healthy: ${all.length} nodes joined, ${before.files} HyDFS files on their replicas; restarting ${order.map((h) => h.address).join(", ")} one at a time`,
    );
    const report = [];
    for (const h of order) {
      const others = this.inv.hosts.filter((o) => o !== h);
      const tStop = performance.now();
      this.say(h, (await this.must(h, R.STOP, [], 60_000)).trim().replace(/\n/g, "; "));
      this.say(h, (await this.must(h, R.START)).trim().replace(/\n/g, "; "));
      const rejoinMs = await this.waitJoined(all, timeoutMs, [...others, h]);
      const rejoinTotal = performance.now() - tStop;
      const rep = await this.waitReplicated(all, timeoutMs, [...others, h]);
      this.say(
        h,
        `restarted: rejoined ${secs(rejoinTotal)} after its stop (${secs(rejoinMs)} after its start), HyDFS re-replicated ${secs(rep.ms)} later (${rep.files} files, each on its ${Math.min(this.inv.replicaCount, all.length)} replicas)`,
      );
      report.push({ node: h.address, rejoinMs: rejoinTotal, replicateMs: rep.ms, files: rep.files });
    }
    this.log(`rolling restart of ${order.length} node(s) done in ${secs(performance.now() - t0)}`);
    return report;
  }

  async status(): Promise<boolean> {
    const all = this.inv.hosts.map((h) => h.address);
    const rows = await Promise.all(
      this.selected.map(async (h) => {
        const st = await this.remote(h).run(R.STATUS, this.args(h), { timeoutMs: 30_000 });
        if (st.code !== 0) return { h, lines: [`unreachable: ${describeFailure(st)}`], healthy: false };
        const view = await this.probe(h, [h.address], ["list_self", "list_mem"]).catch((err: Error) => err);
        const lines = st.out.trim().split("\n");
        let healthy = lines.filter((l) => /^(memberd|hydfsd|rainstormd) /.test(l)).every((l) => / (running|active) /.test(`${l} `));
        if (view instanceof Error) lines.push(`view: ${view.message.split("\n")[0]}`);
        else {
          const a = view.get(h.address);
          const self = a?.ok.list_self;
          if (!self) {
            lines.push(`view: memberd not answering (${a?.errors.list_self ?? "no answer"})`);
            healthy = false;
          } else {
            const members: { id: string; state: string }[] = a!.ok.list_mem?.members ?? [];
            const alive = members.filter((m) => m.state === "alive").length;
            const others = members.filter((m) => m.state !== "alive").map((m) => `${m.id} ${m.state}`);
            lines.push(
              `view: ${self.id} ${self.state}${self.ready === false ? " (view not current yet)" : ""}; ${alive} of ${all.length} hosts alive${others.length ? `; also ${others.join(", ")}` : ""}`,
            );
            healthy &&= self.state === "alive" && alive === all.length;
          }
        }
        return { h, lines, healthy };
      }),
    );
    for (const r of rows) for (const l of r.lines) this.log(`${r.h.address}: ${l}`);
    return rows.every((r) => r.healthy);
  }

  async logs(daemons: string[], lines: number, follow: boolean): Promise<void> {
    if (follow) {
      const width = Math.max(...this.selected.map((h) => h.address.length));
      await Promise.all(
        this.selected.map((h) =>
          this.remote(h).run(R.LOGS, [...this.args(h), String(lines), "1", ...daemons], {
            timeoutMs: 0,
            onLine: (l) => this.log(`${h.address.padEnd(width)} | ${l}`),
          }),
        ),
      );
      return;
    }
    const outs = await Promise.all(
      this.selected.map((h) => this.remote(h).run(R.LOGS, [...this.args(h), String(lines), "0", ...daemons], { timeoutMs: 60_000 })),
    );
    outs.forEach((r, i) => {
      this.log(`==> ${this.selected[i]!.address} <==`);
      this.log(r.code === 0 ? r.out.trimEnd() : `error: ${describeFailure(r)}`);
    });
  }

  /** Run a command in the install folder of each selected host; returns the highest exit code. */
  async run(cmd: string[]): Promise<number> {
    const outs = await Promise.all(this.selected.map((h) => this.remote(h).run(R.RUN, [...this.args(h), ...cmd], { timeoutMs: 600_000 })));
    let worst = 0;
    outs.forEach((r, i) => {
      this.log(`==> ${this.selected[i]!.address} (exit ${r.code}) <==`);
      if (r.out.trimEnd()) this.log(r.out.trimEnd());
      if (r.err.trimEnd()) this.log(r.err.trimEnd());
      worst = Math.max(worst, r.code);
    });
    return worst;
  }
}

function verdictOf(problems: string[]): Verdict {
  const why = problems.filter(Boolean);
  return { ok: why.length === 0, why };
}

function describeFailure(r: RunResult): string {
  const text = (r.err.trim() || r.out.trim()).split("\n").slice(-5).join("\n");
  if (r.code === 255) return `ssh failed: ${text || "exit 255"}`;
  return text || `exit ${r.code}`;
}

// ---- the command line --------------------------------------------------------------------------

const commonArgs = {
  hosts: { type: "string", description: "hosts file (see deploy/hosts.example)", default: "hosts" },
  only: { type: "string", description: "act on these hosts only: comma-separated addresses or 1-based positions in the hosts file" },
  user: { type: "string", description: "ssh user for every host (overrides user= of the hosts file)" },
  "ssh-key": { type: "string", description: "ssh private key for every host (overrides ssh_key=)" },
  "ssh-port": { type: "string", description: "ssh port for every host (overrides ssh_port=)" },
  "ssh-option": { type: "string", description: "an ssh -o option added for every host, e.g. StrictHostKeyChecking=accept-new (repeatable)" },
  "ssh-config": { type: "string", description: "ssh config file for every host instead of ~/.ssh/config (ssh -F; /dev/null for none)" },
  dir: { type: "string", description: "install folder on every host (overrides dir=; default /opt/rainstorm)" },
  supervisor: { type: "string", description: "auto (systemd if the host runs it), systemd or plain (./supervise) (overrides supervisor=)" },
  "secret-file": { type: "string", description: "file holding the cluster secret (overrides secret_file=; else RAINSTORM_SECRET)" },
} as const satisfies ArgsDef;

type CommonValues = {
  hosts: string;
  only?: string;
  user?: string;
  "ssh-key"?: string;
  "ssh-port"?: string;
  "ssh-config"?: string;
  dir?: string;
  supervisor?: string;
  "secret-file"?: string;
};

/** Every value of a repeatable flag (citty keeps only the last). */
function repeated(rawArgs: string[], flag: string): string[] {
  const out: string[] = [];
  const end = rawArgs.indexOf("--");
  const args = end < 0 ? rawArgs : rawArgs.slice(0, end);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${flag}` && args[i + 1] !== undefined) out.push(args[++i]!);
    else if (a.startsWith(`--${flag}=`)) out.push(a.slice(flag.length + 3));
  }
  return out;
}

function deployer(args: CommonValues, rawArgs: string[]): Deployer {
  const inv = readHosts(args.hosts, {
    user: args.user,
    sshKey: args["ssh-key"],
    sshPort: args["ssh-port"],
    sshOptions: repeated(rawArgs, "ssh-option"),
    sshConfig: args["ssh-config"],
    dir: args.dir,
    supervisor: args.supervisor,
    secretFile: args["secret-file"],
  });
  let selected = inv.hosts;
  if (args.only) {
    const picks = args.only
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    selected = picks.map((p) => {
      const h = /^\d+$/.test(p) && !p.includes(".") ? inv.hosts[Number(p) - 1] : inv.hosts.find((x) => x.address === p || x.sshHost === p);
      if (!h) throw new DeployError(`--only ${p}: no such host in ${args.hosts} (hosts: ${inv.hosts.map((x) => x.address).join(", ")})`);
      return h;
    });
    selected = inv.hosts.filter((h) => selected.includes(h));
  }
  return new Deployer(inv, selected);
}

function daemonList(v: string | undefined): string[] {
  if (!v) return [];
  const list = v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const d of list)
    if (!(DAEMONS as readonly string[]).includes(d)) throw new DeployError(`--daemon ${d}: expected ${DAEMONS.join(", ")} (comma-separated)`);
  return list;
}

const timeoutArg = {
  timeout: { type: "string", description: "longest wait for the cluster to join or re-replicate, in seconds", default: "180" },
} as const satisfies ArgsDef;
function timeoutMs(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new DeployError(`--timeout ${v}: expected a positive number of seconds`);
  return n * 1000;
}

const bundleArg = { bundle: { type: "string", description: "bundle tarball (default: the newest dist/rainstorm-*.tar.*)" } } as const satisfies ArgsDef;
const daemonArg = { daemon: { type: "string", description: "these daemons only: memberd, hydfsd, rainstormd (comma-separated)" } } as const satisfies ArgsDef;

const commands = {
  up: defineCommand({
    meta: {
      name: "up",
      description: "push the bundle, write each host's config, install the units, start every node (introducers first) and wait until all have joined",
    },
    args: { ...commonArgs, ...bundleArg, ...timeoutArg },
    async run({ args, rawArgs }) {
      const d = deployer(args, rawArgs);
      await d.push(resolve(args.bundle ?? newestBundle()));
      await d.configure();
      await d.install();
      const ms = await d.start({ timeoutMs: timeoutMs(args.timeout) });
      console.log(`cluster of ${d.inv.hosts.length} nodes joined ${secs(ms)} after the first start`);
    },
  }),
  push: defineCommand({
    meta: { name: "push", description: "copy the bundle to each host (scp) and unpack it into the install folder; config.json and var/ are kept" },
    args: { ...commonArgs, ...bundleArg },
    async run({ args, rawArgs }) {
      await deployer(args, rawArgs).push(resolve(args.bundle ?? newestBundle()));
    },
  }),
  configure: defineCommand({
    meta: { name: "configure", description: "write each host's config.json: its address, the introducers, the secret and the settings file" },
    args: commonArgs,
    async run({ args, rawArgs }) {
      await deployer(args, rawArgs).configure();
    },
  }),
  install: defineCommand({
    meta: { name: "install", description: "install and enable the systemd units (nothing to do under the plain supervisor)" },
    args: commonArgs,
    async run({ args, rawArgs }) {
      await deployer(args, rawArgs).install();
    },
  }),
  start: defineCommand({
    meta: { name: "start", description: "start the daemons (memberd first; introducers before the others) and wait until the nodes that are up have joined" },
    args: { ...commonArgs, ...daemonArg, ...timeoutArg, wait: { type: "boolean", description: "wait until joined (--no-wait: do not)", default: true } },
    async run({ args, rawArgs }) {
      const d = deployer(args, rawArgs);
      const ms = await d.start({ daemons: daemonList(args.daemon), wait: args.wait, timeoutMs: timeoutMs(args.timeout) });
      if (args.wait) console.log(`${d.selected.map((h) => h.address).join(", ")} joined ${secs(ms)} after the start`);
    },
  }),
  stop: defineCommand({
    meta: {
      name: "stop",
      description: "stop the daemons with SIGTERM, memberd first: the node leaves the group (a SIGTERM to any daemon stops the whole node)",
    },
    args: { ...commonArgs, ...daemonArg },
    async run({ args, rawArgs }) {
      await deployer(args, rawArgs).stop(daemonList(args.daemon));
    },
  }),
  restart: defineCommand({
    meta: {
      name: "restart",
      description:
        "stop, then start the selected hosts all at once (see rolling-restart for one at a time); stopping any daemon stops the node, so all three start again",
    },
    args: { ...commonArgs, ...daemonArg, ...timeoutArg },
    async run({ args, rawArgs }) {
      const d = deployer(args, rawArgs);
      await d.stop(daemonList(args.daemon));
      const ms = await d.start({ timeoutMs: timeoutMs(args.timeout) });
      console.log(`${d.selected.map((h) => h.address).join(", ")} joined ${secs(ms)} after the start`);
    },
  }),
  "rolling-restart": defineCommand({
    meta: {
      name: "rolling-restart",
      description: "restart one node at a time (introducers last); the next stops only once the last rejoined and HyDFS re-replication is done",
    },
    args: { ...commonArgs, ...timeoutArg },
    async run({ args, rawArgs }) {
      await deployer(args, rawArgs).rollingRestart(timeoutMs(args.timeout));
    },
  }),
  status: defineCommand({
    meta: { name: "status", description: "each host's daemons (state, pid, since), bundle version and membership view; exit 1 unless all is well" },
    args: commonArgs,
    async run({ args, rawArgs }) {
      if (!(await deployer(args, rawArgs).status())) process.exitCode = 1;
    },
  }),
  logs: defineCommand({
    meta: { name: "logs", description: "the daemons' last log lines (journal, or var/log/ under the plain supervisor)" },
    args: {
      ...commonArgs,
      ...daemonArg,
      lines: { type: "string", description: "lines per daemon", default: "50" },
      follow: { type: "boolean", description: "keep printing new lines", default: false },
    },
    async run({ args, rawArgs }) {
      const n = Number(args.lines);
      if (!Number.isInteger(n) || n < 0) throw new DeployError(`--lines ${args.lines}: expected a whole number`);
      await deployer(args, rawArgs).logs(daemonList(args.daemon), n, args.follow);
    },
  }),
  run: defineCommand({
    meta: { name: "run", description: "run a command in the install folder of each host: deploy.ts run -- bin/ctl list_mem" },
    args: commonArgs,
    async run({ args, rawArgs }) {
      const i = rawArgs.indexOf("--");
      const cmd = i < 0 ? [] : rawArgs.slice(i + 1);
      if (cmd.length === 0) throw new DeployError("run: expected the command after --, e.g. deploy.ts run -- bin/memberd --version");
      process.exitCode = await deployer(args, rawArgs).run(cmd);
    },
  }),
  "client-config": defineCommand({
    meta: {
      name: "client-config",
      description: "a config for ctl on a client machine (introducers, node names 01.., the secret): printed, or written with --out",
    },
    args: { ...commonArgs, out: { type: "string", description: "write it to this file (mode 0600) instead of printing it" } },
    async run({ args, rawArgs }) {
      const text = formatConfig(clientConfig(deployer(args, rawArgs).inv));
      if (!args.out) {
        process.stdout.write(text);
        return;
      }
      writeFileSync(args.out, text, { mode: 0o600 });
      chmodSync(args.out, 0o600);
      console.log(`wrote ${args.out}`);
    },
  }),
};

export const main = defineCommand({
  meta: { name: "deploy.ts", description: "Deploy RainStorm over ssh to the hosts of a hosts file, from the bundle of npm run bundle" },
  subCommands: commands,
});

/** Flags a subcommand does not know (before `--`): a usage error, not silently ignored. */
function unknownFlags(sub: CommandDef<any> | undefined, rawArgs: string[]): string[] {
  if (!sub) return [];
  const known = new Set(Object.keys((sub.args ?? {}) as ArgsDef));
  const end = rawArgs.indexOf("--");
  return (end < 0 ? rawArgs : rawArgs.slice(0, end))
    .filter((a) => a.startsWith("--"))
    .map((a) => a.slice(2).split("=")[0]!)
    .filter((f) => !known.has(f) && !(f.startsWith("no-") && known.has(f.slice(3))));
}

async function cli(rawArgs: string[]): Promise<number> {
  const flags = rawArgs.indexOf("--") < 0 ? rawArgs : rawArgs.slice(0, rawArgs.indexOf("--"));
  const sub = (commands as Record<string, CommandDef<any>>)[rawArgs[0]!];
  if (rawArgs.length === 0 || flags.includes("--help") || flags.includes("-h")) {
    const text = await renderUsage(sub ?? main, sub ? main : undefined);
    // Colour only on a terminal.
    console.log(process.stdout.isTTY && !process.env.NO_COLOR ? text : text.replace(/\x1b\[[0-9;]*m/g, "").replace(/[ \t]+$/gm, ""));
    return rawArgs.length === 0 ? 2 : 0;
  }
  if (!sub) {
    console.error(`error: unknown command ${JSON.stringify(rawArgs[0])}; commands: ${Object.keys(commands).join(", ")}`);
    return 2;
  }
  const unknown = unknownFlags(sub, rawArgs.slice(1));
  if (unknown.length > 0) {
    console.error(`error: ${rawArgs[0]}: unknown flag ${unknown.map((f) => `--${f}`).join(", ")} (see deploy.ts ${rawArgs[0]} --help)`);
    return 2;
  }
  try {
    await runCommand(main, { rawArgs });
    return Number(process.exitCode ?? 0);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exit(await cli(process.argv.slice(2)));
