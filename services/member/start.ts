/**
 * Start a complete memberd (protocol driver + HTTP admin) in-process; the entry file and the
 * in-process tests both use this.
 */
import type { NodeConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { adminApp } from "./admin.ts";
import { MemberDaemon } from "./driver.ts";

/** Largest admin request body accepted. */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024;

export interface RunningMemberd {
  daemon: MemberDaemon;
  stop(): Promise<void>;
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
    throw new Error(`cannot serve HTTP on ${cfg.host}:${cfg.ports.http}: ${(err as Error).message}`);
  }
  return {
    daemon,
    async stop() {
      await daemon.stop();
      server?.stop(true);
    },
  };
}
