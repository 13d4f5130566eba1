/**
 * Start a complete memberd (protocol driver + HTTP admin) in-process; the entry file and the
 * in-process tests both use this.
 */
import type { NodeConfig } from "../node_config.ts";
import { bindError } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { factsOf, removeNodeRecord, writeNodeRecord } from "../node_check.ts";
import { VERSION } from "../shared/version.ts";
import { adminApp } from "./admin.ts";
import { LEAVE_FLUSH_MS, MemberDaemon } from "./driver.ts";

/** Largest admin request body accepted. */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024;

export interface RunningMemberd {
  daemon: MemberDaemon;
  /** Resolves once this node's view is current (joined; an introducer: its peers back): the ready line follows. */
  ready: Promise<void>;
  /** Stop at once (no leave: peers detect a failure). */
  stop(): Promise<void>;
  /** A graceful stop: announce left to every live member, flush, stop. The node's hydfsd and rainstormd follow. */
  leave(): Promise<void>;
}

export async function startMemberd(cfg: NodeConfig, configPath: string, log: Logger, onLeave: () => void): Promise<RunningMemberd> {
  const daemon = new MemberDaemon(cfg, configPath, log);
  await daemon.start();
  const app = adminApp(daemon, { onLeave });
  let server: ReturnType<typeof Bun.serve> | undefined;
  try {
    server = Bun.serve({
      hostname: cfg.host,
      port: cfg.ports.http,
      fetch: (req) => app.handle(req),
      // /watch streams stay open for as long as the follower wants.
      idleTimeout: 0,
      // Admin bodies are a few knobs: anything bigger is refused with 413 before it is buffered.
      maxRequestBodySize: ADMIN_MAX_BODY_BYTES,
    });
  } catch (err) {
    await daemon.stop();
    throw bindError("http", cfg.host, cfg.ports.http, err);
  }
  // What this node runs as, for its hydfsd and rainstormd to check theirs against (node_check.ts).
  try {
    writeNodeRecord({ ...factsOf(cfg), pid: process.pid, id: daemon.node.id, config: configPath, version: VERSION });
  } catch (err) {
    log.warn(`cannot write this node's record under ${cfg.data_dir} (${(err as Error).message}); hydfsd and rainstormd check against /get only`);
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await daemon.stop();
    server?.stop(true);
    try {
      removeNodeRecord(cfg.data_dir);
    } catch {}
  };
  return {
    daemon,
    ready: daemon.whenViewReady(),
    stop,
    async leave() {
      daemon.leave();
      await Bun.sleep(LEAVE_FLUSH_MS);
      await stop();
    },
  };
}
