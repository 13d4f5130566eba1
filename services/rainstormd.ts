#!/usr/bin/env bun
/** rainstormd: the RainStorm worker agent on every node, and the leader on the leader node. */
import { defineCommand } from "citty";
import { startRainstormd } from "./rainstorm/start.ts";
import { runCli } from "./shared/cli.ts";
import { daemonArgs, loadDaemonConfig } from "./shared/daemon_args.ts";
import { makeLogger } from "./shared/log.ts";

const main = defineCommand({
  meta: { name: "rainstormd", description: "RainStorm stream processing: worker agent on every node, leader on the leader node (config rainstorm.leader)" },
  args: daemonArgs,
  async run({ args }) {
    const log = makeLogger("rainstormd");
    let cfg;
    try {
      cfg = loadDaemonConfig(args);
    } catch (err) {
      log.error((err as Error).message);
      process.exit(2);
    }
    let running: Awaited<ReturnType<typeof startRainstormd>>;
    try {
      running = await startRainstormd(cfg, log);
    } catch (err) {
      log.error((err as Error).message);
      process.exit(1);
    }
    const shutdown = async () => {
      await running.stop();
      process.exit(0);
    };
    // One failed promise must not take the node down: log it and keep serving.
    process.on("unhandledRejection", (err) => log.error(`unhandled: ${(err as Error)?.stack ?? err}`));
    process.on("SIGINT", () => void shutdown());
    process.on("SIGTERM", () => void shutdown());
    console.log(JSON.stringify({ event: "ready", service: "rainstormd", host: cfg.host, port: cfg.ports.rainstorm, leader: !!running.leader }));
  },
});

void runCli(main);
