/**
 * Start a complete hydfsd in-process: store, node, HTTP API, and the membership follower.
 * The entry file and in-process tests both use this.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { NodeConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { MemberWatch } from "../shared/member_watch.ts";
import { hydfsApp } from "./http.ts";
import { HydfsNode } from "./node.ts";
import { FileStore } from "./store.ts";

export interface RunningHydfsd {
  node: HydfsNode;
  /** memberd's view is current, so this hydfsd coordinates client requests (until then: 503). */
  viewReady(): boolean;
  stop(): Promise<void>;
}

/**
 * Wait this long for memberd to say this node's view is current before printing the ready line
 * anyway (an introducer waits rejoin_wait_ms more). Meanwhile, and until memberd says so, the
 * node coordinates no client request (503, which clients retry); a memberd that never answers
 * or never joins leaves it up but not serving. Longer holds back the ready line on a node whose
 * introducer is down; shorter prints it before the view is current more often (harmless: the
 * 503s say so).
 */
const FIRST_VIEW_WAIT_MS = 5000;

export async function startHydfsd(cfg: NodeConfig, log: Logger): Promise<RunningHydfsd> {
  const root = join(cfg.data_dir, "hydfs");
  mkdirSync(root, { recursive: true });
  mkdirSync(cfg.hydfs.local_files_dir || join(cfg.data_dir, "local"), { recursive: true });
  const node = new HydfsNode(cfg, new FileStore(root), log);
  const app = hydfsApp(node);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: cfg.host,
      port: cfg.ports.hydfs,
      fetch: (req) => app.handle(req),
      // Only a ceiling: uploads stream through chunkStream, which enforces hydfs.max_body_bytes
      // itself, and every other route reads its body with its own much smaller running bound
      // (limits.ts) or not at all (http.ts).
      maxRequestBodySize: cfg.hydfs.max_body_bytes + 1024 * 1024,
      idleTimeout: 120,
    });
  } catch (err) {
    throw new Error(`cannot serve HTTP on ${cfg.host}:${cfg.ports.hydfs}: ${(err as Error).message}`);
  }
  // The node coordinates nothing (viewReady starts false) until memberd says its view is current.
  let viewCurrent: () => void = () => {};
  const gotReady = new Promise<void>((resolve) => (viewCurrent = resolve));
  const watch = new MemberWatch({
    baseUrl: `http://${cfg.host}:${cfg.ports.http}`,
    log,
    http: node.http,
    onChange: (live) => node.setMembers(live),
    // The HydfsNode refuses to coordinate reads and writes (503) while its view is not current
    // (and logs each change).
    onReady: (ready) => {
      node.setViewReady(ready);
      if (ready) viewCurrent();
    },
  });
  watch.start();
  await Promise.race([gotReady, Bun.sleep(FIRST_VIEW_WAIT_MS + (cfg.is_introducer ? cfg.rejoin_wait_ms : 0))]);
  if (!watch.connected) log.warn(`no member list from memberd at ${cfg.host}:${cfg.ports.http} yet; up, but client requests get 503 until it answers and says this node's view is current`);
  else if (!watch.ready) log.warn(`memberd at ${cfg.host}:${cfg.ports.http} has not said this node's view is current yet (still joining); up, but client requests get 503 until it does`);
  node.scheduleMaintenance();
  return {
    node,
    viewReady: () => watch.ready,
    async stop() {
      watch.stop();
      node.stop();
      server.stop(true);
    },
  };
}
