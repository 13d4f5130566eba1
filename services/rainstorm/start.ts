/**
 * Start a complete rainstormd in-process: the worker (every node), the leader (on the leader
 * node), the HTTP API, and the membership follower.
 */
import { leaderHost, type NodeConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { MemberWatch } from "../shared/member_watch.ts";
import { rainstormApp } from "./http.ts";
import { Leader } from "./leader.ts";
import { Worker } from "./worker.ts";

export interface RunningRainstormd {
  worker: Worker;
  leader?: Leader;
  stop(): Promise<void>;
}

export async function startRainstormd(cfg: NodeConfig, log: Logger): Promise<RunningRainstormd> {
  const leaderAt = leaderHost(cfg);
  const isLeader = leaderAt === cfg.host;
  let leader: Leader | undefined;
  const reportDeath = async (report: { job: string; stage: number; index: number; pid: number; reason: string }) => {
    if (leader) return leader.onTaskDied(report);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (cfg.cluster_secret) headers.authorization = `Bearer ${cfg.cluster_secret}`;
    for (let attempt = 1; attempt <= 10; attempt++) {
      try {
        const res = await fetch(`http://${leaderAt}:${cfg.ports.rainstorm}/leader/task_died`, { method: "POST", headers, body: JSON.stringify(report), signal: AbortSignal.timeout(2000) });
        if (res.ok) return;
      } catch {}
      await Bun.sleep(200 * attempt);
    }
    log.warn(`could not tell the leader at ${leaderAt} that task ${report.job}/${report.stage}/${report.index} died`);
  };
  const worker = new Worker({ cfg, log, onTaskDied: (r) => void reportDeath(r) });
  if (isLeader) leader = new Leader({ cfg, log, worker });
  const app = rainstormApp({ secret: cfg.cluster_secret, worker, leader, leaderHost: leaderAt });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ hostname: cfg.host, port: cfg.ports.rainstorm, fetch: (req) => app.handle(req), idleTimeout: 0, maxRequestBodySize: 256 * 1024 * 1024 });
  } catch (err) {
    worker.stop();
    throw new Error(`cannot serve HTTP on ${cfg.host}:${cfg.ports.rainstorm}: ${(err as Error).message}`);
  }
  const watch = new MemberWatch({ baseUrl: `http://${cfg.host}:${cfg.ports.http}`, log, onChange: (live) => {
      worker.setMembers(live);
      leader?.onMembers(live);
    },
  });
  watch.start();
  log.info(`rainstormd on ${cfg.host}:${cfg.ports.rainstorm}: worker${isLeader ? " and leader" : `; leader is ${leaderAt}`}, operators from ${worker.opsDir()}`);
  return {
    worker,
    leader,
    async stop() {
      watch.stop();
      worker.stop();
      server.stop(true);
    },
  };
}
