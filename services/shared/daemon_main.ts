/**
 * The shape every daemon's entry file shares: flags and config (fatal config errors exit 2),
 * start, a ready line on stdout, a clean stop on SIGINT/SIGTERM, and unhandled rejections logged
 * instead of taking the node down.
 */
import { defineCommand } from "citty";
import { runCli } from "./cli.ts";
import type { NodeConfig } from "./config.ts";
import { daemonArgs, loadDaemonConfig } from "./daemon_args.ts";
import { type Logger, makeLogger } from "./log.ts";

export interface Running {
  stop(): Promise<void>;
}

export interface DaemonSpec<R extends Running> {
  name: string;
  description: string;
  /** Start the service; `exit` lets it end the process cleanly (memberd's /leave). */
  start(cfg: NodeConfig, configPath: string, log: Logger, exit: () => void): Promise<R>;
  /** Fields of the ready line besides event and service. */
  ready(running: R, cfg: NodeConfig): Record<string, unknown>;
}

export function runDaemon<R extends Running>(spec: DaemonSpec<R>): void {
  const main = defineCommand({
    meta: { name: spec.name, description: spec.description },
    args: daemonArgs,
    async run({ args }) {
      const log = makeLogger(spec.name);
      let cfg: NodeConfig;
      try {
        cfg = loadDaemonConfig(args);
      } catch (err) {
        log.error((err as Error).message);
        process.exit(2);
      }
      let running: R | undefined;
      let stopping = false;
      const shutdown = async () => {
        if (stopping) return;
        stopping = true;
        await running?.stop();
        process.exit(0);
      };
      try {
        running = await spec.start(cfg, args.config, log, () => void shutdown());
      } catch (err) {
        log.error((err as Error).message);
        process.exit(1);
      }
      process.on("unhandledRejection", (err) => log.error(`unhandled: ${(err as Error)?.stack ?? err}`));
      process.on("SIGINT", () => void shutdown());
      process.on("SIGTERM", () => void shutdown());
      console.log(JSON.stringify({ event: "ready", service: spec.name, ...spec.ready(running, cfg) }));
    },
  });
  void runCli(main);
}
