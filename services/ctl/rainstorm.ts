/**
 * ctl RainStorm commands: `rainstorm` (submit a job and stream its results), `list_tasks`,
 * `kill_task` (the job commands list_jobs, kill_job and watch_job are in jobs.ts). They talk to
 * the leader, which ctl finds out (leader.ts atLeader): the node given with --node, else the
 * config's rainstorm.leader, else the leader the cluster names (GET /leader); a rainstormd that
 * is not the leader answers 421, and ctl goes where it points. `rainstorm` follows its job
 * across a leader failover (follow.ts).
 *
 * `rainstorm` takes the seed's syntax, whose `-stage-config-map` looks like a flag: its arguments
 * are therefore passed through untouched (only --node, --config, --json and --timeout are ours,
 * and --rate-schedule is the job's; any other `--flag` is refused as unknown).
 */
import { defineCommand } from "citty";
import { UsageError } from "../shared/cli.ts";
import { HttpCallError, whyFailed } from "../shared/http.ts";
import { type JobStream, type RainstormClient, RainstormHttpError } from "../rainstorm/client.ts";
import type { JobEvent, ListedTask } from "../rainstorm/model.ts";
import { commonArgs, type Ctx, makeCtx, nodeHost, print, table } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";
import { type Attached, type FollowIo, type FollowOptions, followJob, PROCESS_IO } from "./follow.ts";
import { atLeader } from "./leader.ts";
import { client, leaderQuery, rainstormd, refused, streamClient } from "./rainstormd.ts";
import { type Attempt, CTL_RETRY, REAL_TIME, RetriesExhausted, retrying } from "../shared/retry.ts";

/** The job's own `--` flags; every other one is a mistake (a typo of ours, or of the job's). */
const JOB_FLAGS = ["--rate-schedule"];

/** Pull our own flags out of a raw argument list; everything else belongs to the job. */
export function splitOwnFlags(raw: string[]): { own: { node?: string; json: boolean; config?: string; timeout: string }; rest: string[] } {
  const own = { node: undefined as string | undefined, json: false, config: undefined as string | undefined, timeout: "10000" };
  const rest: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    const m = /^--(node|config|timeout)(?:=(.*))?$/.exec(a);
    if (m) {
      const value = m[2] ?? raw[++i];
      if (value === undefined) throw new CtlError(`--${m[1]}: expected a value`);
      own[m[1] as "node" | "config" | "timeout"] = value;
    } else if (a === "--json") own.json = true;
    else if (/^--[A-Za-z]/.test(a) && !JOB_FLAGS.includes(a.split("=")[0]!)) {
      throw new UsageError(
        `unknown flag ${a.split("=")[0]} for ctl rainstorm; it takes --node, --json, --config, --timeout and the job's ${JOB_FLAGS.join(", ")} (see ctl rainstorm --help)`,
      );
    } else rest.push(a);
  }
  return { own, rest };
}

/** The running tasks, from the leader (found by atLeader); `host` is the leader that answered. */
export async function leaderTasks(ctx: Ctx): Promise<{ host: string; value: ListedTask[] }> {
  return atLeader(ctx, (host) => leaderQuery(ctx, host, (addr) => client(ctx).listTasks(addr, { timeoutMs: ctx.timeoutMs })));
}

/**
 * The id ctl gives a job it submits (JOB_ID_PATTERN: `job-<base36 ms>-<number>`): known before
 * any answer, so a submission whose leader is lost before it answered can be followed by id.
 */
export function newJobId(nowMs: number, random: () => number): string {
  return `job-${Math.floor(nowMs).toString(36)}-${1 + Math.floor(random() * 1e15)}`;
}

/** The leader went away (a network failure, not a refusal) before it answered a submission: the job may run under the next one. */
export class SubmissionLost extends CtlError {
  constructor(
    readonly host: string,
    readonly why: string,
    message: string,
  ) {
    super(message);
  }
}

/** POST the job, as `job`, to `host`'s rainstormd through `rs`; the answer must begin within the timeout. */
async function submit(ctx: Ctx, rs: RainstormClient, host: string, args: string[], job: string): Promise<JobStream> {
  try {
    // The leader must accept or refuse within the timeout; after that the job runs as long as its
    // input and the leader's stream ends it.
    return await rs.submitJob(rainstormd(ctx, host), args, { acceptWithinMs: ctx.timeoutMs }, job);
  } catch (err) {
    if (err instanceof RainstormHttpError) throw refused(err, "");
    const message = `RainStorm leader at ${rainstormd(ctx, host)} unreachable: ${whyFailed(err)}`;
    // Refused: nothing listened, so nothing was submitted. Otherwise the leader may have taken it.
    if (err instanceof HttpCallError && err.code === "ECONNREFUSED") throw new CtlError(message);
    throw new SubmissionLost(host, whyFailed(err), message);
  }
}

/**
 * Submit, retrying while the leader answers 503 (its membership view is not current yet, as after
 * a restart): nothing was started then, so asking again is safe. Retries follow CTL_RETRY and end
 * with --timeout; each says `retrying: <error>` on stderr, as ctl's HyDFS commands do.
 */
async function submitRetrying503(ctx: Ctx, rs: RainstormClient, host: string, args: string[], job: string, io: FollowIo): Promise<JobStream> {
  const policy = { ...CTL_RETRY, deadlineMs: ctx.timeoutMs };
  let last: CtlHttpError | undefined;
  try {
    return await retrying(
      "submit",
      policy,
      async (): Promise<Attempt<JobStream>> => {
        try {
          return { value: await submit(ctx, rs, host, args, job) };
        } catch (err) {
          if (!(err instanceof CtlHttpError) || err.status !== 503) throw err;
          last = err;
          return { retry: err.message, status: 503 };
        }
      },
      { ...REAL_TIME, onRetry: (why) => io.err(`retrying: ${why}`) },
    );
  } catch (err) {
    // Out of retries: the last refusal, in the leader's words.
    throw err instanceof RetriesExhausted && last ? last : err;
  }
}

/** A stream that breaks at once (followJob then reattaches by the job's id). */
async function* brokenStream(why: string): AsyncGenerator<JobEvent> {
  throw new Error(`it was lost before it answered the submission (${why})`);
}

/**
 * Submit a job and follow its events across leader failovers (follow.ts); resolves with the exit
 * code (0 once done; 1 failed, cancelled, or no leader took it back in time).
 */
export async function runRainstorm(raw: string[], opts: FollowOptions = {}): Promise<number> {
  const { own, rest } = splitOwnFlags(raw);
  const ctx = await makeCtx({ node: own.node, json: own.json, config: own.config, timeout: own.timeout });
  const io = opts.io ?? PROCESS_IO;
  const { rs, drop } = streamClient(ctx);
  const job = newJobId(Date.now(), Math.random);
  let first: Attached;
  // The id the leader answered with (the one proposed, unless the leader chose its own), or ours when it never answered.
  let known: string | undefined;
  try {
    const { host, term, value } = await atLeader(ctx, (at) => submitRetrying503(ctx, rs, at, rest, job, io));
    first = { host, term, events: value.events, drop };
    known = value.jobId ?? undefined;
  } catch (err) {
    if (!(err instanceof SubmissionLost)) throw err;
    // It may have been journaled before the leader went: the next leader runs it then, and knows it by its id.
    io.err(`${err.message}; the job may still run: looking for ${job} at the leader`);
    first = { host: err.host, events: brokenStream(err.why) };
    known = job;
  }
  const failure = await followJob(ctx, known, first, opts);
  if (failure === undefined) return 0;
  io.err(`error: ${failure}`);
  return 1;
}

/** For `ctl rainstorm --help` and the shell's help; the real work is runRainstorm. */
export const rainstormCmd = defineCommand({
  meta: {
    name: "rainstorm",
    description:
      "run a job: rainstorm <Nstages> <Ntasks_per_stage> -stage-config-map '<stage0 op args... stage1 op args...>' <src> <dest> <exactly_once> <autoscale> <input_rate> <LW> <HW> [--rate-schedule 500:10s,5000:20s,...] (or <op1> '<args>' <op2> '<args>' ... instead of the map); results stream here and go to <dest> in HyDFS",
  },
  args: commonArgs,
  run() {
    throw new CtlError("rainstorm: arguments are parsed by runRainstorm");
  },
});

export const listTasksCmd = defineCommand({
  meta: { name: "list_tasks", description: "every task of the running jobs: stage, task, node, pid, operator, args, input tuples/s, log file" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const tasks = (await leaderTasks(ctx)).value;
    // Why a task last restarted is a last column, shown once some task has restarted.
    const reasons = tasks.some((t) => t.last_restart_reason !== undefined);
    print(ctx, { tasks }, () =>
      tasks.length === 0
        ? "no running tasks"
        : table([
            ["JOB", "STAGE", "TASK", "NODE", "PID", "OP", "ARGS", "TUPLES/S", "RESTARTS", "LOG", ...(reasons ? ["LAST RESTART"] : [])],
            ...tasks.map((t) => [
              t.job,
              String(t.stage),
              String(t.task),
              t.node,
              String(t.pid),
              t.op,
              t.args.join(" "),
              t.rate === null ? "?" : String(t.rate),
              String(t.restarts),
              t.log,
              ...(reasons ? [t.last_restart_reason ?? ""] : []),
            ]),
          ]),
    );
  },
});

export const killTaskCmd = defineCommand({
  meta: {
    name: "kill_task",
    description:
      "kill_task <node> <pid>: kill one task's operator process (on <node>); the leader restarts the task. --node: the node asked, as for every command",
  },
  args: {
    ...commonArgs,
    target: { type: "positional", description: "the node the task runs on: alias, name or address", required: true },
    pid: { type: "positional", description: "operator pid (see list_tasks)", required: true },
  },
  async run({ args }) {
    const pid = Number(args.pid);
    if (!Number.isInteger(pid) || pid < 1) throw new CtlError(`pid ${JSON.stringify(args.pid)}: expected a positive integer`);
    const ctx = await makeCtx(args);
    const node = await nodeHost(ctx, args.target, "kill_task node");
    const r = (await atLeader(ctx, (host) => leaderQuery(ctx, host, (addr) => client(ctx).killTask(addr, node, pid, { timeoutMs: ctx.timeoutMs })))).value;
    print(ctx, r, () => `killed pid ${r.pid} on ${r.node} (job ${r.job} stage${r.stage}[${r.task}]); the leader restarts it`);
  },
});

export const rainstormCommands = { rainstorm: rainstormCmd, list_tasks: listTasksCmd, kill_task: killTaskCmd };
