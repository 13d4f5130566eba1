#!/usr/bin/env bun
/** memberd: membership and failure detection for one node. Composition root only. */
import { startMemberd } from "./member/start.ts";
import { loadDaemonConfig } from "./node_config.ts";
import { runDaemon } from "./shared/daemon_main.ts";

runDaemon({
  name: "memberd",
  description: "RainStorm membership daemon: gossip or SWIM ping/ack failure detection, introducer, HTTP admin",
  loadConfig: loadDaemonConfig,
  start: (cfg, configPath, log, exit) => startMemberd(cfg, configPath, log, exit),
  ready: (r, cfg) => ({ id: r.daemon.node.id, host: cfg.host, ports: cfg.ports }),
});
