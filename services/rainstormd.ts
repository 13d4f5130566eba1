#!/usr/bin/env bun
/** rainstormd: the RainStorm worker agent on every node, and the the leader on the node elected (leader_seat.ts). */
import { startRainstormd } from "./rainstorm/start.ts";
import { loadDaemonConfig } from "./node_config.ts";
import { runDaemon } from "./shared/daemon_main.ts";

runDaemon({
  name: "rainstormd",
  description: "RainStorm stream processing: worker agent on every node; the node elected among rainstorm.leader_candidates leads",
  loadConfig: loadDaemonConfig,
  start: (cfg, _configPath, log, exit) => startRainstormd(cfg, log, exit),
  ready: (r, cfg) => ({ host: cfg.host, port: cfg.ports.rainstorm, leader: r.seat.elected() ?? null }),
});
