/**
 * ctl job commands: `list_jobs` (every job the leader runs or ran), `kill_job <job>` (cancel a
 * running job: its tasks stop, dest keeps what was written) and `watch_job <job>` (reattach to a
 * job from any shell: its recent events, then the live ones until it ends). Like the other
 * RainStorm commands they talk to the leader (leader.ts atLeader), each call under --timeout;
 * watch_job's answer must begin within it, then it lasts as long as the job, following it across
 * a leader failover (follow.ts).
 */
import { defineCommand } from "citty";
import type { JobSummary } from "../rainstorm/model.ts";
import { CALL_TIMEOUT_MS, type RainstormClient } from "../rainstorm/client.ts";
import { commonArgs, type Ctx, makeCtx, print, table } from "./context.ts";
import { CtlError } from "./errors.ts";
import { followJob } from "./follow.ts";
import { atLeader } from "./leader.ts";
import { client, leaderQuery, rainstormd, streamClient } from "./rainstormd.ts";

/**
 * The least time kill_job waits for its answer, whatever --timeout says: the leader answers once
 * every worker's stop call is answered, and waits up to CALL_TIMEOUT_MS for a worker that is down
 * (all in parallel), plus a margin for the rest.
 */
export const KILL_JOB_MIN_TIMEOUT_MS = CALL_TIMEOUT_MS + 2000;

/** A job id as the leader makes them (job-<base36 time>-<n>): anything else is refused before a call. */
const JOB_ID = /^job-[0-9a-z]+-[0-9]+$/;

/** The job argument, checked: a bad one is named with what was expected. */
export function jobArg(raw: unknown, command: string): string {
  const job = String(raw ?? "");
  if (!JOB_ID.test(job)) throw new CtlError(`${command}: job ${JSON.stringify(job)}: expected a job id such as job-m1abc2de-1 (see ctl list_jobs)`);
  return job;
}

/** list_jobs' table: one row per job. */
export function jobsTable(jobs: JobSummary[]): string {
  if (jobs.length === 0) return "no jobs";
  return table([
    ["JOB", "STATUS", "STAGES", "TASKS", "READ", "OUT", "TUPLES/S", "SRC -> DEST"],
    ...jobs.map((j) => [
      j.job,
      j.status,
      j.stages.join(" | "),
      j.tasks.join("+"),
      String(j.tuples_read),
      String(j.tuples_out),
      String(j.tuples_per_s),
      `${j.src} -> ${j.dest}`,
    ]),
  ]);
}

/** One call to the leader (atLeader) in ctl's words (leaderQuery); `host` is the leader that answered. */
function askLeader<T>(ctx: Ctx, call: (rs: RainstormClient, addr: string) => Promise<T>): Promise<{ host: string; value: T }> {
  return atLeader(ctx, (host) => leaderQuery(ctx, host, (addr) => call(client(ctx), addr)));
}

/** A command `<name> <job>`: the job id is checked before anything is asked. */
function jobCommand(name: string, description: string, act: (ctx: Ctx, job: string) => Promise<void>) {
  return defineCommand({
    meta: { name, description: `${name} <job>: ${description}` },
    args: { ...commonArgs, job: { type: "positional", description: "the job id (see list_jobs)", required: true } },
    async run({ args }) {
      const job = jobArg(args.job, name);
      await act(await makeCtx(args), job);
    },
  });
}

export const listJobsCmd = defineCommand({
  meta: {
    name: "list_jobs",
    description:
      "every job the leader runs or ran: id, status (running, done, failed, cancelled), stages, tasks per stage, tuples read and out, tuples/s, src -> dest. --json: {leader, jobs}",
  },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await askLeader(ctx, (rs, addr) => rs.jobs(addr, { timeoutMs: ctx.timeoutMs }));
    print(ctx, { leader: rainstormd(ctx, r.host), jobs: r.value }, () => jobsTable(r.value));
  },
});

export const killJobCmd = jobCommand(
  "kill_job",
  "cancel a running job: every task stops, the job is marked cancelled, its submitter's ctl rainstorm ends with an error; dest keeps what was written",
  async (ctx, job) => {
    const r = (await askLeader(ctx, (rs, addr) => rs.killJob(addr, job, { timeoutMs: Math.max(ctx.timeoutMs, KILL_JOB_MIN_TIMEOUT_MS) }))).value;
    const line = `job ${r.job} cancelled: every task stopped after ${r.tuples_read} tuples read, ${r.tuples_out} out`;
    print(ctx, r, () => `${line}; HyDFS ${r.dest} is kept as written (${r.tuples_out} results, not removed)`);
  },
);

export const watchJobCmd = jobCommand(
  "watch_job",
  "from any shell, print a job's events and results from now on (after a summary line and its recent past) until it ends; exit 0 when done, 1 when failed or cancelled",
  async (ctx, job) => {
    // Only the answer's start is due within --timeout; the watch then lasts as long as the job.
    const { rs, drop } = streamClient(ctx);
    const {
      host,
      term,
      value: stream,
    } = await atLeader(ctx, (at) => leaderQuery(ctx, at, (addr) => rs.watchJob(addr, job, { acceptWithinMs: ctx.timeoutMs })));
    const failure = await followJob(ctx, job, { host, term, events: stream.events, drop });
    if (failure !== undefined) throw new CtlError(failure);
  },
);

export const jobCommands = { list_jobs: listJobsCmd, kill_job: killJobCmd, watch_job: watchJobCmd };
