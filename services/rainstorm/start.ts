/**
 * Start a complete rainstormd in-process: the worker (every node), the leader (on the leader
 * node), the HTTP API, and the membership follower.
 */
import type { NodeConfig } from "../node_config.ts";
import { bindError } from "../shared/config.ts";
import { leaderHost } from "./config.ts";
import type { Logger } from "../shared/log.ts";
import { ClusterHttp } from "../shared/http.ts";
import { MemberWatch } from "../member/watch.ts";
import { waitForNodeAgreement } from "../node_check.ts";
import { rainstormApp } from "./http.ts";
import { Leader } from "./leader.ts";
import { checkOpsDir, Worker } from "./worker.ts";
import { HttpTransport, InProcessTransport, localFirst, reportDeath, type TaskDeath } from "./transport.ts";
import { RainstormClient } from "./client.ts";
import { DashboardHub, hostOfId, type JobsView, LEADER_TIMEOUT_MS } from "./dashboard/stream.ts";

export interface RunningRainstormd {
  worker: Worker;
  leader?: Leader;
  /** Resolves once memberd says this node's view is current: the ready line follows. */
  ready: Promise<void>;
  /** Stop: the operators of this worker's tasks are killed (the leader restarts them elsewhere once it sees this node gone). */
  stop(): Promise<void>;
  /** Graceful stop: ask this node's memberd to leave (peers list the node left, the leader moves its tasks), then stop. */
  leave(): Promise<void>;
}

export async function startRainstormd(cfg: NodeConfig, log: Logger, exit: () => void = () => {}): Promise<RunningRainstormd> {
  // A node without its operators refuses to start, rather than fail every job later.
  checkOpsDir(cfg);
  const leaderAt = leaderHost(cfg);
  const isLeader = leaderAt === cfg.host;
  const http = new ClusterHttp(cfg.cluster_secret);
  const { worker, leader } = buildEngine(cfg, log, http, leaderAt);
  // The dashboard reads the member watch, which is made once memberd agrees (below): until then it lists no members.
  let watch: MemberWatch | undefined;
  const dashboard = dashboardHub(cfg, http, leader, leaderAt, () => watch);
  const app = rainstormApp({ secret: cfg.cluster_secret, host: cfg.host, worker, leader, leaderHost: leaderAt, dashboard });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: cfg.host,
      port: cfg.ports.rainstorm,
      fetch: (req) => app.handle(req),
      idleTimeout: 0,
      maxRequestBodySize: 256 * 1024 * 1024,
    });
  } catch (err) {
    worker.stop();
    throw bindError("rainstorm", cfg.host, cfg.ports.rainstorm, err);
  }
  let stopping = false;
  // This node's memberd must run as the same node and imply the same leader: refuse otherwise.
  try {
    await waitForNodeAgreement({ service: "rainstormd", cfg, http, log, checkLeader: true, stopped: () => stopping });
  } catch (err) {
    worker.stop();
    server.stop(true);
    throw err;
  }
  watch = watchMembers(cfg, log, http, { worker, leader }, exit);
  watch.start();
  log.info(
    `rainstormd on ${cfg.host}:${cfg.ports.rainstorm}: worker${isLeader ? " and leader" : `; leader is ${leaderAt}`}, operators from ${worker.opsDir()}`,
  );
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    watch?.stop();
    dashboard.stop();
    worker.stop();
    server.stop(true);
  };
  return {
    worker,
    leader,
    ready: watch.firstReady,
    stop,
    async leave() {
      await watch?.leaveNode("rainstormd");
      await stop();
    },
  };
}

/** The dashboard's sources: members from this node's watch, jobs and tasks from the leader (this node's own directly, else over HTTP). */
function dashboardHub(cfg: NodeConfig, http: ClusterHttp, leader: Leader | undefined, leaderAt: string, watch: () => MemberWatch | undefined): DashboardHub {
  const client = new RainstormClient(http);
  const leaderAddr = `${leaderAt}:${cfg.ports.rainstorm}`;
  const jobs = async (): Promise<JobsView> => {
    if (leader) return { jobs: leader.jobList(), tasks: await leader.listTasks() };
    const [list, tasks] = await Promise.all([
      client.jobs(leaderAddr, { timeoutMs: LEADER_TIMEOUT_MS }),
      client.listTasks(leaderAddr, { timeoutMs: LEADER_TIMEOUT_MS }),
    ]);
    return { jobs: list, tasks };
  };
  // Sorted, so the page's rows keep their places as states change.
  const members = () =>
    (watch()?.all() ?? [])
      .map((m) => ({ id: m.id, host: hostOfId(m.id), state: m.state, incarnation: m.incarnation }))
      .sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
  return new DashboardHub({ node: cfg.host, leader: leaderAt, members, jobs });
}

/** This node's worker, and its leader when it is the leader's node, wired by one transport. */
function buildEngine(cfg: NodeConfig, log: Logger, http: ClusterHttp, leaderAt: string): { worker: Worker; leader?: Leader } {
  // This node's own worker (and leader) are called directly, every other node over HTTP.
  const here = new InProcessTransport();
  const transport = localFirst(here, new HttpTransport(http));
  const leaderAddr = `${leaderAt}:${cfg.ports.rainstorm}`;
  const reportDeathOf = async (report: TaskDeath) => {
    if (!(await reportDeath(transport, leaderAddr, report, (ms) => Bun.sleep(ms))))
      log.warn(`could not tell the leader at ${leaderAt} that task ${report.job}/${report.stage}/${report.index} died`);
  };
  // The orphan guard asks the leader which jobs run: this node's own leader directly, another over HTTP.
  let leader: Leader | undefined;
  const client = new RainstormClient(http);
  const jobs = (timeoutMs: number) => (leader ? Promise.resolve(leader.jobList()) : client.jobs(leaderAddr, { timeoutMs }));
  const worker = new Worker({
    cfg,
    log,
    onTaskDied: (r) => void reportDeathOf(r),
    transport,
    leader: { addr: leaderAddr, jobs },
    leaderAddr: () => leaderAddr,
  });
  if (leaderAt === cfg.host) leader = new Leader({ cfg, log, worker, transport });
  here.register(`${cfg.host}:${cfg.ports.rainstorm}`, { worker, leader });
  return { worker, leader };
}

/** Follow this node's memberd: members to the worker and leader, readiness to the leader, leaving to `exit`. */
function watchMembers(cfg: NodeConfig, log: Logger, http: ClusterHttp, engine: { worker: Worker; leader?: Leader }, exit: () => void): MemberWatch {
  const { worker, leader } = engine;
  return new MemberWatch({
    baseUrl: `http://${cfg.host}:${cfg.ports.http}`,
    log,
    http,
    onChange: (live) => {
      worker.setMembers(live);
      leader?.onMembers(live);
    },
    // The leader refuses jobs (503) until this node's membership view is current.
    onReady: (isReady) => leader?.setViewReady(isReady),
    onLeft: () => {
      const what = leader ? " (this is the leader: its running jobs end with it)" : "; the leader restarts them on other workers";
      log.info(`this node left the group (memberd announced it): rainstormd stops its tasks${what}`);
      exit();
    },
  });
}
