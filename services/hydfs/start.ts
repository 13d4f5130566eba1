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
  stop(): Promise<void>;
}

/** Wait this long for the first member list before reporting ready anyway. */
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
  let firstView: () => void = () => {};
  const gotView = new Promise<void>((resolve) => (firstView = resolve));
  const watch = new MemberWatch({
    baseUrl: `http://${cfg.host}:${cfg.ports.http}`,
    log,
    http: node.http,
    onChange: (live) => {
      node.setMembers(live);
      firstView();
    },
  });
  watch.start();
  await Promise.race([gotView, Bun.sleep(FIRST_VIEW_WAIT_MS)]);
  if (!watch.connected) log.warn(`no member list from memberd at ${cfg.host}:${cfg.ports.http} yet; serving, and will follow it once it answers`);
  node.scheduleMaintenance();
  return {
    node,
    async stop() {
      watch.stop();
      node.stop();
      server.stop(true);
    },
  };
}
