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
import { needLeaderOf, rainstormApp } from "./http.ts";
import { LeaderSeat } from "./leader_seat.ts";
import { HydfsJobFiles } from "./job_files.ts";
import type { OutputsNotice, SourceReport } from "./model.ts";
import { checkOpsDir, Worker } from "./worker.ts";
import { HttpTransport, InProcessTransport, localFirst, type RainstormTransport, reportDeath, type TaskDeath } from "./transport.ts";
import { RainstormClient } from "./client.ts";
import { MAX_BATCH_BYTES } from "./wire_checks.ts";
import { DashboardHub, hostOfId, type JobsView, LEADER_TIMEOUT_MS } from "./dashboard/stream.ts";
import { askMemberd, followJobEvents, surveyHydfs } from "./dashboard/sources.ts";
import { timelineOf } from "./dashboard/views.ts";

export interface RunningRainstormd {
  worker: Worker;
  /** Whether this node leads now (leader_seat.ts); `seat.current()` is its Leader then. */
  seat: LeaderSeat;
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
  const http = new ClusterHttp(cfg.cluster_secret);
  const { worker, seat } = buildEngine(cfg, log, http);
  // The dashboard reads the member watch, which is made once memberd agrees (below): until then it lists no members.
  let watch: MemberWatch | undefined;
  const dashboard = dashboardHub(cfg, http, seat, () => watch);
  const requestBytes = { data: 0, control: 0 };
  const app = rainstormApp({ secret: cfg.cluster_secret, host: cfg.host, worker, seat, dashboard, requestBytes: () => requestBytes });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: cfg.host,
      port: cfg.ports.rainstorm,
      fetch: (req) => {
        // Every body this node takes comes with its length (no chunked uploads here): the data through this node.
        const n = Number(req.headers.get("content-length") ?? 0) || 0;
        // Batches to tasks are the data plane; everything else (the leader's notices and reports included) is control.
        if (new URL(req.url).pathname === "/data") requestBytes.data += n;
        else requestBytes.control += n;
        return app.handle(req);
      },
      idleTimeout: 0,
      maxRequestBodySize: MAX_BATCH_BYTES,
    });
  } catch (err) {
    worker.stop();
    seat.stop();
    throw bindError("rainstorm", cfg.host, cfg.ports.rainstorm, err);
  }
  let stopping = false;
  // This node's memberd must run as the same node and imply the same leader: refuse otherwise.
  try {
    await waitForNodeAgreement({ service: "rainstormd", cfg, http, log, checkLeader: true, stopped: () => stopping });
  } catch (err) {
    worker.stop();
    seat.stop();
    server.stop(true);
    throw err;
  }
  watch = watchMembers(cfg, log, http, { worker, seat }, exit);
  watch.start();
  const candidates = cfg.rainstorm.leader || cfg.rainstorm.leader_candidates || "any node";
  log.info(`rainstormd on ${cfg.host}:${cfg.ports.rainstorm}: worker; leader elected among ${candidates}; operators from ${worker.opsDir()}`);
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    watch?.stop();
    dashboard.stop();
    seat.stop();
    worker.stop();
    server.stop(true);
  };
  return {
    worker,
    seat,
    ready: watch.firstReady,
    stop,
    async leave() {
      await watch?.leaveNode("rainstormd");
      await stop();
    },
  };
}

/**
 * The dashboard's sources: members, their changes and the push callback from this node's watch,
 * last heard and knobs from its memberd, jobs and tasks from the leader (this node's own directly,
 * else over HTTP), the leader and term from the seat, the ring and files from HyDFS.
 */
function dashboardHub(cfg: NodeConfig, http: ClusterHttp, seat: LeaderSeat, watch: () => MemberWatch | undefined): DashboardHub {
  const client = new RainstormClient(http);
  const jobs = async (): Promise<JobsView> => {
    const leader = seat.current();
    if (leader) return { jobs: leader.jobList(), tasks: await leader.listTasks() };
    const leaderAddr = seat.elected();
    if (!leaderAddr) throw new Error("no leader elected right now");
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
  // A ring member's hydfsd at the port its memberd advertises (this node's port while the watch does not list it).
  const hydfsPort = (id: string) => (watch()?.all() ?? []).find((m) => m.id === id)?.ports?.hydfs;
  const hydfsBase = (id: string, host: string) => `http://${host}:${hydfsPort(id) ?? cfg.ports.hydfs}`;
  return new DashboardHub({
    node: cfg.host,
    get leader() {
      return seat.elected()?.split(":")[0] ?? "";
    },
    term: () => seat.knownTerm(),
    members,
    listen: (f) => watch()?.listen(f),
    timeline: () => timelineOf(watch()?.recentChanges() ?? []),
    memberd: () => askMemberd(http, `http://${cfg.host}:${cfg.ports.http}`),
    jobs,
    hydfs: () => surveyHydfs(http, `http://${cfg.host}:${cfg.ports.hydfs}`, hydfsBase),
    watchJob: (job, onEvent, onEnd) => {
      const leader = seat.current();
      if (!leader) {
        const leaderAddr = seat.elected();
        if (leaderAddr) return followJobEvents(http, leaderAddr, job, onEvent, onEnd);
        onEnd();
        return () => {};
      }
      try {
        const w = leader.watch(job, onEvent);
        for (const ev of w.recent) onEvent(ev);
        return w.stop;
      } catch {
        // Not a job of this leader (any more): the hub asks again while the jobs list says it runs.
        onEnd();
        return () => {};
      }
    },
  });
}

/** This node's worker and its leader seat, wired by one transport. */
function buildEngine(cfg: NodeConfig, log: Logger, http: ClusterHttp): { worker: Worker; seat: LeaderSeat } {
  // This node's own worker (and leader) are called directly, every other node over HTTP.
  const here = new InProcessTransport();
  const transport = localFirst(here, new HttpTransport(http));
  let seat: LeaderSeat | undefined;
  // The leader as the worker knows it: whom this node's view elects, changing with membership.
  const leaderAddr = () => seat?.elected() ?? `${leaderHost(cfg)}:${cfg.ports.rainstorm}`;
  const reportDeathOf = async (report: TaskDeath) => {
    // Each attempt goes to the leader elected at that moment (it may change during a failover).
    const toLeader: RainstormTransport = { ...transport, reportTaskDied: (_addr, death) => transport.reportTaskDied(leaderAddr(), death) };
    if (!(await reportDeath(toLeader, leaderAddr(), report, (ms) => Bun.sleep(ms))))
      log.warn(`could not tell the leader at ${leaderAddr()} that task ${report.job}/${report.stage}/${report.index} died`);
  };
  // The orphan guard asks the leader which jobs run: this node's own leader directly, another over HTTP.
  const client = new RainstormClient(http);
  const leaderJobs = {
    get addr() {
      return leaderAddr();
    },
    jobs: (timeoutMs: number) => {
      const own = seat?.current();
      return own ? Promise.resolve(own.jobList()) : client.jobs(leaderAddr(), { timeoutMs });
    },
  };
  const worker = new Worker({
    cfg,
    log,
    onTaskDied: (r) => void reportDeathOf(r),
    transport,
    leader: leaderJobs,
    onLeaderTerm: (term) => seat?.onWorkerTerm(term),
    leaderAddr,
    // Synchronous and full: it runs only once the worker has been idle for a while (worker_upkeep.ts).
    collectGarbage: () => Bun.gc(true),
  });
  const files = new HydfsJobFiles(`http://${cfg.host}:${cfg.ports.hydfs}`, http, cfg.hydfs.request_timeout_ms);
  seat = new LeaderSeat({ cfg, log, worker, transport, files });
  const s = seat;
  // The leader endpoint forwards to whichever Leader this node has now.
  const leaderEndpoint = {
    outputs: (notice: OutputsNotice) => needLeaderOf(s).outputs(notice),
    onTaskDied: (death: TaskDeath) => needLeaderOf(s).onTaskDied(death),
    onSourceReport: (report: SourceReport) => needLeaderOf(s).onSourceReport(report),
  };
  here.register(`${cfg.host}:${cfg.ports.rainstorm}`, { worker, leader: leaderEndpoint });
  return { worker, seat };
}

/** Follow this node's memberd: members to the worker and leader, readiness to the leader, leaving to `exit`. */
function watchMembers(cfg: NodeConfig, log: Logger, http: ClusterHttp, engine: { worker: Worker; seat: LeaderSeat }, exit: () => void): MemberWatch {
  const { worker, seat } = engine;
  return new MemberWatch({
    baseUrl: `http://${cfg.host}:${cfg.ports.http}`,
    log,
    http,
    onChange: (live) => {
      worker.setMembers(live);
      seat.onMembers(live);
    },
    // No node leads (or takes jobs) until its membership view is current.
    onReady: (isReady) => seat.setViewReady(isReady),
    onRenewed: () => void worker.abandonAll("this node was declared failed and rejoins under a new id"),
    onLeft: () => {
      const what = seat.current() ? " (this is the leader: another node takes its running jobs over)" : "; the leader restarts them on other workers";
      log.info(`this node left the group (memberd announced it): rainstormd stops its tasks${what}`);
      exit();
    },
  });
}
