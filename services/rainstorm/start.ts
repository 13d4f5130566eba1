/**
 * Start a complete rainstormd in-process: the worker (every node), the leader (on the leader
 * node), the HTTP API, and the membership follower.
 */
import { leaderHost, type NodeConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { ClusterHttp } from "../shared/http.ts";
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
  const http = new ClusterHttp(cfg.cluster_secret);
  const reportDeath = async (report: { job: string; stage: number; index: number; pid: number; reason: string }) => {
    if (leader) return leader.onTaskDied(report);
    for (let attempt = 1; attempt <= 10; attempt++) {
      try {
        const res = await http.fetch(`http://${leaderAt}:${cfg.ports.rainstorm}/leader/task_died`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(report), timeoutMs: 2000 });
        if (res.ok) return;
      } catch {}
      await Bun.sleep(200 * attempt);
    }
    log.warn(`could not tell the leader at ${leaderAt} that task ${report.job}/${report.stage}/${report.index} died`);
  };
  const worker = new Worker({ cfg, log, onTaskDied: (r) => void reportDeath(r) });
  if (isLeader) leader = new Leader({ cfg, log, worker });
  const app = rainstormApp({ secret: cfg.cluster_secret, host: cfg.host, worker, leader, leaderHost: leaderAt });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ hostname: cfg.host, port: cfg.ports.rainstorm, fetch: (req) => app.handle(req), idleTimeout: 0, maxRequestBodySize: 256 * 1024 * 1024 });
  } catch (err) {
    worker.stop();
    throw new Error(`cannot serve HTTP on ${cfg.host}:${cfg.ports.rainstorm}: ${(err as Error).message}`);
  }
  const watch = new MemberWatch({
    baseUrl: `http://${cfg.host}:${cfg.ports.http}`,
    log,
    http,
    onChange: (live) => {
      worker.setMembers(live);
      leader?.onMembers(live);
    },
    // The leader refuses jobs (503) until this node's membership view is current.
    onReady: (ready) => leader?.setViewReady(ready),
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
