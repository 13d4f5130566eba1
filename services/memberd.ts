#!/usr/bin/env bun
/** memberd: membership and failure detection for one node. Composition root only. */
import { defineCommand } from "citty";
import { runCli } from "./shared/cli.ts";
import { daemonArgs, loadDaemonConfig } from "./shared/daemon_args.ts";
import { makeLogger } from "./shared/log.ts";
import { startMemberd } from "./member/start.ts";

const main = defineCommand({
  meta: { name: "memberd", description: "RainStorm membership daemon: gossip or SWIM ping/ack failure detection, introducer, HTTP admin" },
  args: daemonArgs,
  async run({ args }) {
    const log = makeLogger("memberd");
    let cfg;
    try {
      cfg = loadDaemonConfig(args);
    } catch (err) {
      log.error((err as Error).message);
      process.exit(2);
    }
    let stopping = false;
    const shutdown = async (code: number) => {
      if (stopping) return;
      stopping = true;
      await running.stop();
      process.exit(code);
    };
    let running: Awaited<ReturnType<typeof startMemberd>>;
    try {
      running = await startMemberd(cfg, args.config, log, () => void shutdown(0));
    } catch (err) {
      log.error((err as Error).message);
      process.exit(1);
    }
    // One failed promise must not take the node down: log it and keep serving.
    process.on("unhandledRejection", (err) => log.error(`unhandled: ${(err as Error)?.stack ?? err}`));
    process.on("SIGINT", () => void shutdown(0));
    process.on("SIGTERM", () => void shutdown(0));
    console.log(JSON.stringify({ event: "ready", service: "memberd", id: running.daemon.node.id, host: cfg.host, ports: cfg.ports }));
  },
});

void runCli(main);
