/**
 * The shape every daemon's entry file shares:
 * - the command line, parsed strictly: `--help` (usage, exit 0), `--version` (`<name> <version>`,
 *   exit 0), an unknown flag or a stray argument exits 2 naming it; no argument at all runs with
 *   ./config.json (relative paths in it resolve against its folder);
 * - the config (a bad value exits 2 naming the field), then start (a failure, a port that cannot
 *   be bound, a node mismatch exits 1 with one line saying why);
 * - one ready line on stdout, `{"event":"ready","service",...,"version"}`, once the daemon serves
 *   (memberd: its view is current; hydfsd and rainstormd: memberd says so). Nothing else goes to
 *   stdout: what it waits for meanwhile is logged on stderr;
 * - SIGINT/SIGTERM: a graceful stop (the node leaves the group, work in flight finishes or is
 *   handed off, the node's daemons stop); a second signal exits at once. Unhandled rejections
 *   are logged instead of taking the node down.
 */
import { defineCommand } from "citty";
import { lookup } from "node:dns/promises";
import { writeSync } from "node:fs";
import { isIP } from "node:net";
import { renderHelp } from "./cli.ts";
import { DEFAULT_CONFIG_PATH, type DaemonArgValues, daemonArgs, type LoadedConfig, parseDaemonArgs, UsageError } from "./daemon_args.ts";
import { type Logger, makeLogger } from "./log.ts";
import { VERSION, versionLine } from "./version.ts";

export interface Running {
  /** Stop this daemon: in-flight work finished (bounded) or handed off. */
  stop(): Promise<void>;
  /**
   * A graceful stop from SIGINT/SIGTERM: the node leaves the group (memberd announces left; the
   * node's other daemons follow it) and this daemon stops. Default: stop().
   */
  leave?(): Promise<void>;
  /** Resolves once the daemon serves; the ready line is printed then. Default: at once. */
  ready?: Promise<void>;
}

/** What daemon_main itself reads of a config. */
export interface DaemonConfig {
  host: string;
  data_dir: string;
}

export interface DaemonSpec<R extends Running, C extends DaemonConfig> {
  name: string;
  description: string;
  /** The config from the parsed flags (services/node_config.ts loadDaemonConfig); throws with the bad field's message. */
  loadConfig(args: DaemonArgValues): LoadedConfig<C>;
  /** Start the service; `exit` lets it end the process cleanly (memberd's /leave, the node left). */
  start(cfg: C, configPath: string, log: Logger, exit: () => void): Promise<R>;
  /** Fields of the ready line besides event, service and version. */
  ready(running: R, cfg: C): Record<string, unknown>;
}

/** A graceful stop that takes longer than this is cut short (exit 1). */
export const STOP_DEADLINE_MS = 15_000;

function usageExit(name: string, message: string): never {
  writeSync(2, `${name}: ${message}\n`);
  process.exit(2);
}

export function runDaemon<R extends Running, C extends DaemonConfig>(spec: DaemonSpec<R, C>, rawArgs = process.argv.slice(2)): void {
  void main(spec, rawArgs);
}

async function main<R extends Running, C extends DaemonConfig>(spec: DaemonSpec<R, C>, rawArgs: string[]): Promise<void> {
  const args = parseArgsOrExit(spec.name, rawArgs);
  if (args.help) await helpExit(spec);
  if (args.version) {
    console.log(versionLine(spec.name));
    process.exit(0);
  }
  const log = makeLogger(spec.name);
  const { cfg, configPath } = loadConfigOrExit(spec, args, log);
  await checkHostOrExit(cfg.host, log);
  const node: NodeState<R> = { stopping: false };
  const shutdown = (how: "signal" | "exit") => stopGracefully(node, how, log);
  handleSignals(log, shutdown);
  try {
    node.running = await spec.start(cfg, configPath, log, () => void shutdown("exit"));
  } catch (err) {
    if (node.stopping) return; // a signal during start: shutdown exits
    log.error((err as Error).message);
    process.exit(1);
  }
  await node.running.ready;
  if (node.stopping) return;
  log.info(`${spec.name} ${VERSION} ready`);
  console.log(JSON.stringify({ event: "ready", service: spec.name, version: VERSION, ...spec.ready(node.running, cfg) }));
}

/** The parsed flags; a usage mistake exits 2 naming it. */
function parseArgsOrExit(name: string, rawArgs: string[]): DaemonArgValues {
  try {
    return parseDaemonArgs(rawArgs);
  } catch (err) {
    if (err instanceof UsageError) usageExit(name, err.message);
    throw err;
  }
}

async function helpExit(spec: { name: string; description: string }): Promise<never> {
  const cmd = defineCommand({ meta: { name: spec.name, description: spec.description }, args: daemonArgs });
  console.log(
    `${await renderHelp(cmd, { stream: process.stdout, version: VERSION })}\n\nWith no flag it runs with ${DEFAULT_CONFIG_PATH} (paths in it resolve against its folder).`,
  );
  process.exit(0);
}

/** The config; a bad value exits 2 with its message. A missing config file is only warned about. */
function loadConfigOrExit<C extends DaemonConfig>(spec: DaemonSpec<Running, C>, args: DaemonArgValues, log: Logger): { cfg: C; configPath: string } {
  try {
    const loaded = spec.loadConfig(args);
    if (!loaded.found)
      log.warn(`no config file ${loaded.path}: running with the built-in defaults (host ${loaded.cfg.host}, data_dir ${loaded.cfg.data_dir}); see --help`);
    return { cfg: loaded.cfg, configPath: loaded.path };
  } catch (err) {
    log.error((err as Error).message);
    process.exit(2);
  }
}

/** A host name must resolve (an address is taken as is); otherwise exit 2 before starting anything. */
async function checkHostOrExit(host: string, log: Logger): Promise<void> {
  if (isIP(host)) return;
  try {
    await lookup(host);
  } catch (err) {
    log.error(`host: cannot resolve ${JSON.stringify(host)} (${(err as Error).message}); expected an address of this machine`);
    process.exit(2);
  }
}

/** The running daemon once started, and whether a stop has begun (signals and exit() share it). */
interface NodeState<R extends Running> {
  running?: R;
  stopping: boolean;
}

/**
 * Stop once (later calls return): a signal leaves the group, exit() just stops; either way the
 * process exits 0, or 1 if the stop outlasts STOP_DEADLINE_MS.
 */
async function stopGracefully(node: NodeState<Running>, how: "signal" | "exit", log: Logger): Promise<void> {
  if (node.stopping) return;
  node.stopping = true;
  const deadline = setTimeout(() => {
    log.error(`graceful stop took more than ${STOP_DEADLINE_MS} ms; exiting anyway`);
    process.exit(1);
  }, STOP_DEADLINE_MS);
  deadline.unref?.();
  const running = node.running;
  try {
    if (running) await (how === "signal" && running.leave ? running.leave() : running.stop());
  } catch (err) {
    log.error(`stop: ${(err as Error).message}`);
  }
  process.exit(0);
}

/** SIGINT/SIGTERM stop gracefully, a second one exits at once; unhandled rejections are only logged. */
function handleSignals(log: Logger, shutdown: (how: "signal") => Promise<void>): void {
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.warn(`${sig} again: exiting at once`);
      process.exit(1);
    }
    log.info(`${sig}: stopping gracefully (this node leaves the group; send it again to exit at once)`);
    void shutdown("signal");
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("unhandledRejection", (err) => log.error(`unhandled: ${(err as Error)?.stack ?? err}`));
}
