/**
 * Start a complete hydfsd in-process: store, node, HTTP API, and the membership follower.
 * The entry file and in-process tests both use this.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { NodeConfig } from "../node_config.ts";
import { bindError } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { MemberWatch } from "../member/watch.ts";
import { waitForNodeAgreement } from "../node_check.ts";
import { hydfsApp } from "./http.ts";
import { HydfsNode } from "./node.ts";
import { FileStore } from "./store.ts";

export interface RunningHydfsd {
  node: HydfsNode;
  /** memberd's view is current, so this hydfsd coordinates client requests (until then: 503). */
  /** Resolves once memberd says this node's view is current: the ready line follows. */
  ready: Promise<void>;
  /** Stop: no new connections; requests in flight get up to DRAIN_MS to finish. */
  stop(): Promise<void>;
  /** Graceful stop: ask this node's memberd to leave (peers list the node left, the ring drops it), then stop. */
  leave(): Promise<void>;
}

/**
 * If memberd has not said this node's view is current this long after start (an introducer:
 * plus rejoin_wait_ms), say what hydfsd waits for. It keeps waiting: no ready line and 503 to
 * client requests until memberd says so.
 */
const FIRST_VIEW_WAIT_MS = 5000;

/**
 * A stopping hydfsd lets requests in flight finish for at most this long, then closes what is
 * left. Longer lets a big upload through; shorter stops sooner. A write cut short was not
 * acknowledged, so its client retries it elsewhere under the same (client, seq).
 */
export const DRAIN_MS = 5000;

export async function startHydfsd(cfg: NodeConfig, log: Logger, exit: () => void = () => {}): Promise<RunningHydfsd> {
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
    throw bindError("hydfs", cfg.host, cfg.ports.hydfs, err);
  }
  let stopping = false;
  // This node's memberd must run as the same node (host, ports, data_dir): refuse otherwise.
  try {
    await waitForNodeAgreement({ service: "hydfsd", cfg, http: node.http, log, stopped: () => stopping });
  } catch (err) {
    server.stop(true);
    throw err;
  }
  const watch = watchMembers(cfg, log, node, exit);
  watch.start();
  node.scheduleMaintenance();
  const notYet = setTimeout(() => warnIfNotReady(cfg, log, watch), FIRST_VIEW_WAIT_MS + (cfg.is_introducer ? cfg.rejoin_wait_ms : 0));
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearTimeout(notYet);
    watch.stop();
    node.stop();
    // No new connections; requests in flight finish (bounded), then whatever is left is closed.
    await Promise.race([server.stop(false), Bun.sleep(DRAIN_MS)]);
    await server.stop(true);
  };
  return {
    node,
    ready: watch.firstReady,
    stop,
    async leave() {
      await watch.leaveNode("hydfsd");
      await stop();
    },
  };
}

/**
 * Follow this node's memberd. The node coordinates nothing (viewReady starts false) until memberd
 * says its view is current: it refuses client reads and writes (503) while it is not (and logs
 * each change).
 */
function watchMembers(cfg: NodeConfig, log: Logger, node: HydfsNode, exit: () => void): MemberWatch {
  return new MemberWatch({
    baseUrl: `http://${cfg.host}:${cfg.ports.http}`,
    log,
    http: node.http,
    onChange: (live) => node.setMembers(live),
    onReady: (isReady) => node.setViewReady(isReady),
    onLeft: () => {
      log.info("this node left the group (memberd announced it): hydfsd stops; the other replicas re-replicate its files");
      exit();
    },
  });
}

/** Say why the node is still not ready, once, after it had time to be. */
function warnIfNotReady(cfg: NodeConfig, log: Logger, watch: MemberWatch): void {
  const at = `${cfg.host}:${cfg.ports.http}`;
  if (watch.ready) return;
  if (!watch.connected)
    log.warn(`no member list from memberd at ${at} yet; not ready: client requests get 503 until it answers and says this node's view is current`);
  else log.warn(`memberd at ${at} has not said this node's view is current yet (still joining); not ready: client requests get 503 until it does`);
}
