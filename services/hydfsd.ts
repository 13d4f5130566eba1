#!/usr/bin/env bun
/** hydfsd: one HyDFS storage node. Composition root only. */
import { startHydfsd } from "./hydfs/start.ts";
import { loadDaemonConfig } from "./node_config.ts";
import { runDaemon } from "./shared/daemon_main.ts";

runDaemon({
  name: "hydfsd",
  description: "HyDFS storage node: replicated append-friendly files on a consistent-hash ring (follows the local memberd)",
  loadConfig: loadDaemonConfig,
  start: (cfg, _configPath, log, exit) => startHydfsd(cfg, log, exit),
  ready: (r, cfg) => ({ host: cfg.host, port: cfg.ports.hydfs, ring: r.node.ring.size, view_current: r.node.viewReady }),
});
