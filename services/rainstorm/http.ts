/**
 * rainstormd's HTTP API (one Elysia instance): job submission and task control on the leader,
 * task hosting and the batched data plane on every worker. With a cluster secret every endpoint
 * but the liveness probe needs a signed request: they start processes and move data.
 */
import { Elysia } from "elysia";
import type { RequestVerifier } from "../shared/auth.ts";
import { authHook, authMetrics, jsonErrorHook, PUBLIC_ROUTES, requestVerifier } from "../shared/http.ts";
import { type Leader, LeaderError, VIEW_NOT_READY_ERROR } from "./leader.ts";
import { parseJobArgs, PlanError } from "./plan.ts";
import { MetricsText } from "../shared/metrics.ts";
import { buildInfoMetric } from "../shared/version.ts";
import { checkOutputsNotice, decodeBatch, RequestError, TaskGone, type Worker } from "./worker.ts";
import { JOB_ID_HEADER } from "./client.ts";
import { eventStream } from "./job_watch.ts";
import { DASHBOARD_ASSETS, dashboardAssets } from "./dashboard/page.ts";
import type { DashboardHub } from "./dashboard/stream.ts";
import {
  AdoptSchema,
  SourceReportSchema,
  SourceStartSchema,
  FlushOutputsSchema,
  JobSubmissionSchema,
  KillJobRequestSchema,
  KillPidSchema,
  KillTaskRequestSchema,
  OutputsNoticeSchema,
  type LeaderInfo,
  RetireTaskSchema,
  RoutesUpdateSchema,
  StopJobSchema,
  TaskDeathSchema,
  TaskStartSchema,
} from "./model.ts";

export interface RainstormAppOptions {
  secret: string;
  /** This node's address: requests must be signed for it. */
  host: string;
  worker: Worker;
  /** Whether this node leads now, its Leader, and who leads by its view (leader_seat.ts). */
  seat?: LeaderSeatView;
  /** Without a seat (tests): this leader, always; or none, naming `leaderHost`. */
  leader?: Leader;
  leaderHost?: string;
  /** Request body bytes this daemon's server has taken so far (rainstorm_http_request_bytes_total); absent: not counted. */
  requestBytes?: () => { data: number; control: number };
  /** The dashboard's stream (GET /dashboard/stream); absent: 503. */
  dashboard?: DashboardHub;
}

/**
 * Routes open without a credential besides PUBLIC_ROUTES: the dashboard page and its scripts
 * (static, the same on every node, holding no cluster data; the data comes from the signed
 * /dashboard/stream).
 */
export const DASHBOARD_PUBLIC_ROUTES = DASHBOARD_ASSETS.map((path) => `GET ${path}`);

/** A seat that never changes: `leader` leads in term 1, or (without one) the node at `leaderHost` does. */
export function fixedSeat(leader: Leader | undefined, leaderHost = ""): LeaderSeatView {
  return {
    current: () => leader,
    isTakingOver: () => false,
    elected: () => (leader ? leader.selfAddr : leaderHost ? `${leaderHost}:15000` : undefined),
    knownTerm: () => leader?.term ?? 0,
  };
}

export function rainstormApp(raw: RainstormAppOptions) {
  const opts = { ...raw, seat: raw.seat ?? fixedSeat(raw.leader, raw.leaderHost) };
  const verifier = requestVerifier(opts.secret, opts.host);
  const app = baseApp(opts, verifier);
  // Routes are added to this one instance after its hooks, so the hooks cover every route.
  leaderRoutes(app, opts);
  workerRoutes(app, opts.worker);
  dashboardRoutes(app, opts.dashboard);
  return app;
}

/** The hooks (errors, then authentication) and the routes about the daemon itself. */
function baseApp(opts: RainstormAppOptions & { seat: LeaderSeatView }, verifier: RequestVerifier | undefined) {
  return (
    new Elysia()
      .onError((ctx) => errorAnswer(ctx))
      // Deny by default: every route needs the credential but those in PUBLIC_ROUTES (declared next) and the dashboard's page.
      .onRequest(authHook(verifier, [...PUBLIC_ROUTES, ...DASHBOARD_PUBLIC_ROUTES]))
      .get("/health", () => ({ ok: true, service: "rainstormd" }))
      .get("/help", () => ({
        leader: ["/jobs", "/jobs/:job/events", "/kill_job", "/tasks", "/kill_task"],
        worker: ["/worker/start", "/worker/routes", "/worker/stop_job", "/worker/kill", "/worker/flush_outputs", "/worker/tasks", "/data"],
      }))
      .get("/metrics", ({ set }) => {
        set.headers["content-type"] = "text/plain; version=0.0.4";
        return metricsText(opts.worker, opts.seat.current(), verifier, opts.requestBytes?.());
      })
  );
}

type RainstormApp = ReturnType<typeof baseApp>;

/** The engine's own errors keep their status; anything else is still one JSON error, never a bare text page. */
function errorAnswer(ctx: Parameters<typeof jsonErrorHook>[0] & { error: unknown }) {
  if (ctx.error instanceof PlanError || ctx.error instanceof LeaderError) {
    ctx.set.status = ctx.error instanceof LeaderError ? ctx.error.status : 400;
    return { error: ctx.error.message };
  }
  if (ctx.error instanceof RequestError) {
    ctx.set.status = ctx.error.status;
    return { error: ctx.error.message };
  }
  if (ctx.error instanceof TaskGone) {
    ctx.set.status = 503;
    return { error: ctx.error.message };
  }
  const known = jsonErrorHook(ctx);
  if (known) return known;
  // Anything else is this daemon's fault.
  ctx.set.status = 500;
  return { error: `internal error: ${(ctx.error as Error)?.message ?? String(ctx.error)}` };
}

/** What the routes see of the node's leader seat. */
export interface LeaderSeatView {
  current(): Leader | undefined;
  /** The Leader, waiting a bounded time while this node may become it (leader_seat.ts LEADER_WAIT_MS). */
  leading?(): Promise<Leader | undefined>;
  isTakingOver(): boolean;
  elected(): string | undefined;
  /** Whether this node's membership view is current (without it, no node is elected here yet). */
  isViewReady?(): boolean;
  /** Whether this node is the leader: it leads, or its view elects it (a standby claims its term at the first call). */
  leadsHere?(): boolean;
  knownTerm(): number;
}

/** The Leader of this node, or why not: 503 while it takes over (or none is elected), 421 naming the leader elsewhere. */
export function needLeaderOf(seat: LeaderSeatView): Leader {
  const leader = seat.current();
  if (leader) return leader;
  if (seat.isTakingOver()) throw new LeaderError("this node is taking over as the RainStorm leader; retry in a moment", 503);
  const elected = seat.elected();
  if (seat.isViewReady?.() === false) throw new LeaderError(VIEW_NOT_READY_ERROR, 503);
  if (!elected) throw new LeaderError("no RainStorm leader is elected right now (no live candidate); retry in a moment", 503);
  throw new LeaderError(`this node is not the RainStorm leader; send jobs to ${elected.split(":")[0]}`, 421);
}

/** Job submission and task control, on the leader node (421 naming the leader elsewhere). */
function leaderRoutes(app: RainstormApp, opts: { seat: LeaderSeatView }): void {
  const needLeader = async (): Promise<Leader> => (await opts.seat.leading?.()) ?? needLeaderOf(opts.seat);
  app
    .get("/leader", (): LeaderInfo => {
      const leader = opts.seat.elected() ?? null;
      return { leader, term: opts.seat.knownTerm(), self: opts.seat.leadsHere?.() ?? opts.seat.current() !== undefined };
    })
    .post("/jobs", async ({ body }) => submitJob(await needLeader(), body.args, body.job), { body: JobSubmissionSchema })
    .get("/jobs", async () => (await needLeader()).jobList())
    .get("/jobs/:job/events", async ({ params }) => watchJob(await needLeader(), params.job))
    .post("/kill_job", async ({ body }) => (await needLeader()).killJob(body.job), { body: KillJobRequestSchema })
    .get("/tasks", async () => ({ tasks: await (await needLeader()).listTasks() }))
    .post("/kill_task", async ({ body }) => (await needLeader()).killTask(body.node, body.pid), { body: KillTaskRequestSchema })
    .post(
      "/leader/task_died",
      async ({ body }) => {
        void (await needLeader()).onTaskDied(body);
        return { ok: true };
      },
      { body: TaskDeathSchema },
    )
    .post(
      "/leader/source",
      async ({ body }) => {
        await (await needLeader()).onSourceReport(body);
        return { ok: true };
      },
      { body: SourceReportSchema },
    )
    .post(
      "/outputs",
      async ({ body }) => {
        return { ok: true, ...(await (await needLeader()).outputs(checkOutputsNotice(body))) };
      },
      { body: OutputsNoticeSchema },
    );
}

const NDJSON = "application/x-ndjson";

/** Start a job; its events stream back as NDJSON, its id in a header. */
async function submitJob(leader: Leader, args: string[], proposedId: string | undefined): Promise<Response> {
  const spec = parseJobArgs(args);
  let stop = () => {};
  const { stream, push } = eventStream(false, () => stop());
  const jobId = await leader.submit(spec, push, proposedId);
  // The submitter hung up (ctl exits, or follows another leader): it no longer listens.
  stop = () => leader.unlisten(jobId, push);
  return new Response(stream, { headers: { "content-type": NDJSON, [JOB_ID_HEADER]: jobId } });
}

/** Watch a job: `watching`, its recent events, then the live ones until it ends (a bounded stream: job_watch.ts). */
function watchJob(leader: Leader, job: string): Response {
  let stop = () => {};
  const { stream, push } = eventStream(true, () => stop());
  const w = leader.watch(job, (ev) => void push(ev));
  stop = w.stop;
  push({ event: "watching", summary: w.summary, replayed: w.recent.length });
  for (const ev of w.recent) push(ev);
  // A job that had ended before (its final event was among the recent ones) has closed the stream already.
  return new Response(stream, { headers: { "content-type": NDJSON } });
}

/** Task hosting and the batched data plane, on every node. */
function workerRoutes(app: RainstormApp, worker: Worker): void {
  app
    // The worker checks the request itself (checkTaskStart, operatorFile) before it makes a path or starts a process.
    .post("/worker/start", ({ body }) => worker.startTask(body), { body: TaskStartSchema })
    .post(
      "/worker/routes",
      ({ body }) => {
        worker.setRoutes(body.job, body.routes);
        return { ok: true };
      },
      { body: RoutesUpdateSchema },
    )
    .post("/worker/stop_job", async ({ body }) => ({ stopped: await worker.stopJob(body.job, body.end_of_stream ?? false, body.term) }), {
      body: StopJobSchema,
    })
    .post("/worker/retire", ({ body }) => retireTask(worker, body), { body: RetireTaskSchema })
    .post("/worker/kill", ({ body }) => killPid(worker, body.pid, body.term), { body: KillPidSchema })
    .post("/worker/adopt", ({ body }) => worker.adopt(body.term), { body: AdoptSchema })
    // The worker checks the request itself (checkSourceStart) before the source reads anything.
    .post(
      "/worker/source",
      ({ body }) => {
        worker.startSource(body);
        return { ok: true };
      },
      { body: SourceStartSchema },
    )
    .post("/worker/flush_outputs", async ({ body }) => ({ flushed: await worker.flushOutputs(body.job) }), { body: FlushOutputsSchema })
    .get("/worker/tasks", () => worker.list())
    .post(
      "/data",
      async ({ request }) => {
        await worker.handleBatch(decodeBatch(new Uint8Array(await request.arrayBuffer())));
        return { ok: true };
      },
      { parse: "none" },
    );
}

/** The dashboard: its page and scripts (public, see DASHBOARD_PUBLIC_ROUTES) and its data stream (signed). */
function dashboardRoutes(app: RainstormApp, hub: DashboardHub | undefined): void {
  const assets = dashboardAssets();
  for (const [path, asset] of assets) app.get(path, () => new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache" } }));
  app.get("/dashboard/stream", () => {
    if (!hub) throw new LeaderError("this daemon has no dashboard", 503);
    return new Response(hub.open(), { headers: { "content-type": NDJSON, "cache-control": "no-store" } });
  });
}

async function retireTask(worker: Worker, body: { job: string; stage: number; index: number; term?: number }) {
  const inputs = await worker.retireTask(body.job, body.stage, body.index, undefined, undefined, body.term);
  if (inputs === false) throw new LeaderError(`task ${body.job}/${body.stage}/${body.index} is not running on this worker`, 404);
  return { retired: true, inputs };
}

function killPid(worker: Worker, pid: number, term?: number) {
  const task = worker.killPid(pid, term);
  if (!task) throw new LeaderError(`pid ${pid} is not an operator process of this worker`, 404);
  return { killed: pid, job: task.job, stage: task.stage, index: task.index };
}

function metricsText(
  worker: Worker,
  leader: Leader | undefined,
  verifier: RequestVerifier | undefined,
  requestBytes: { data: number; control: number } | undefined,
): string {
  const m = new MetricsText();
  authMetrics(m, "rainstormd", verifier);
  const series = m.series.bind(m);
  if (requestBytes !== undefined)
    series(
      "rainstorm_http_request_bytes_total",
      "counter",
      "Request body bytes this rainstormd took: batches to its tasks (data), everything else (control: output notices, source reports, control calls).",
      [
        ['{kind="data"}', requestBytes.data],
        ['{kind="control"}', requestBytes.control],
      ],
    );
  taskMetrics(m, worker);
  if (leader) {
    const jobs = leader.jobList();
    series(
      "rainstorm_job_tuples_read_total",
      "counter",
      "Source tuples read, per job.",
      jobs.map((j) => [`{job="${j.job}",status="${j.status}"}`, Number(j.tuples_read)]),
    );
    series(
      "rainstorm_job_tuples_out_total",
      "counter",
      "Result tuples written to dest, per job.",
      jobs.map((j) => [`{job="${j.job}",status="${j.status}"}`, Number(j.tuples_out)]),
    );
  }
  return m.text() + buildInfoMetric("rainstormd");
}

/** Each task's counters on this worker. */
function taskMetrics(m: MetricsText, worker: Worker): void {
  const series = m.series.bind(m);
  const tasks = worker.list();
  const label = (t: (typeof tasks)[number]) => `{job="${t.job}",stage="${t.stage}",task="${t.index}",op="${t.op}"}`;
  series(
    "rainstorm_task_tuples_in_total",
    "counter",
    "Tuples given to the task's operator.",
    tasks.map((t) => [label(t), t.inputs]),
  );
  series(
    "rainstorm_task_tuples_out_total",
    "counter",
    "Tuples the task's operator produced.",
    tasks.map((t) => [label(t), t.outputs]),
  );
  series(
    "rainstorm_task_batches_in_total",
    "counter",
    "Input batches (mean batch size = tuples_in / batches_in).",
    tasks.map((t) => [label(t), t.batches]),
  );
  series(
    "rainstorm_task_input_rate",
    "gauge",
    "Input tuples in the last second.",
    tasks.map((t) => [label(t), t.ratePerSec]),
  );
  series(
    "rainstorm_task_batches_active",
    "gauge",
    "Input batches the task is working on.",
    tasks.map((t) => [label(t), t.active]),
  );
  series(
    "rainstorm_task_batches_queued",
    "gauge",
    "Input batches waiting for the task (backpressure).",
    tasks.map((t) => [label(t), t.waiting]),
  );
  series(
    "rainstorm_task_dedup_ids",
    "gauge",
    "Exactly-once tasks: input ids held to drop repeats (those above the source's acknowledged position).",
    tasks.flatMap((t) => (t.dedupIds === undefined ? [] : [[label(t), t.dedupIds] as [string, number]])),
  );
}
