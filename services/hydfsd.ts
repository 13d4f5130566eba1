#!/usr/bin/env bun
/** hydfsd: one HyDFS storage node. Composition root only. */
import { defineCommand } from "citty";
import { startHydfsd } from "./hydfs/start.ts";
import { runCli } from "./shared/cli.ts";
import { daemonArgs, loadDaemonConfig } from "./shared/daemon_args.ts";
import { makeLogger } from "./shared/log.ts";

const main = defineCommand({
  meta: { name: "hydfsd", description: "HyDFS storage node: replicated append-friendly files on a consistent-hash ring (follows the local memberd)" },
  args: daemonArgs,
  async run({ args }) {
    const log = makeLogger("hydfsd");
    let cfg;
    try {
      cfg = loadDaemonConfig(args);
    } catch (err) {
      log.error((err as Error).message);
      process.exit(2);
    }
    let running: Awaited<ReturnType<typeof startHydfsd>>;
    try {
      running = await startHydfsd(cfg, log);
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
    console.log(JSON.stringify({ event: "ready", service: "hydfsd", host: cfg.host, port: cfg.ports.hydfs, ring: running.node.ring.size }));
  },
});

void runCli(main);
