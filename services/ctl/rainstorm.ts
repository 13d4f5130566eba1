/**
 * ctl RainStorm commands: `rainstorm` (submit a job and stream its results), `list_tasks`,
 * `kill_task` (the job commands list_jobs, kill_job and watch_job are in jobs.ts). They talk to
 * the leader, which ctl finds out (leader.ts leaderTarget): the node given with --node, else
 * the config's rainstorm.leader, else the leader rule applied to what the reached node's memberd
 * says (its introducers). A rainstormd that is not the leader answers 421 naming it, and ctl
 * follows that once.
 *
 * `rainstorm` takes the seed's syntax, whose `-stage-config-map` looks like a flag: its arguments
 * are therefore passed through untouched (only --node, --config, --json and --timeout are ours,
 * and --rate-schedule is the job's; any other `--flag` is refused as unknown).
 */
import { defineCommand } from "citty";
import { UsageError } from "../shared/cli.ts";
import { HttpCallError, whyFailed } from "../shared/http.ts";
import { type JobStream, RainstormClient, RainstormHttpError } from "../rainstorm/client.ts";
import type { JobEvent, ListedTask } from "../rainstorm/model.ts";
import { commonArgs, type Ctx, makeCtx, nodeHost, print, table } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";
import { atLeader } from "./leader.ts";
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

/** The client of rainstormd for this command (signed with the cluster secret). */
export function client(ctx: Ctx): RainstormClient {
  return new RainstormClient(ctx.http);
}

/** `host`'s rainstormd, "host:port". */
export function rainstormd(ctx: Ctx, host: string): string {
  return `${host}:${ctx.cfg.ports.rainstorm}`;
}

/** A refusal in ctl's words: the daemon's message and status, its body kept (atLeader follows a 421 with it). */
function refused(err: RainstormHttpError, prefix: string): CtlHttpError {
  return new CtlHttpError(`${prefix}${err.error} (HTTP ${err.status})`, err.status, err.body);
}

/**
 * One call to `host`'s rainstormd in ctl's words: unreachable is a CtlError naming the daemon, a
 * refusal a CtlHttpError naming the host (as every ctl command says them).
 */
export async function leaderQuery<T>(ctx: Ctx, host: string, call: (addr: string) => Promise<T>): Promise<T> {
  try {
    return await call(rainstormd(ctx, host));
  } catch (err) {
    if (err instanceof HttpCallError) throw new CtlError(`rainstormd at ${rainstormd(ctx, host)} unreachable: ${err.why}`);
    if (err instanceof RainstormHttpError) throw refused(err, `${host}: `);
    throw err;
  }
}

/** The running tasks, from the leader (found by atLeader); `host` is the leader that answered. */
export async function leaderTasks(ctx: Ctx): Promise<{ host: string; value: ListedTask[] }> {
  return atLeader(ctx, (host) => leaderQuery(ctx, host, (addr) => client(ctx).listTasks(addr, { timeoutMs: ctx.timeoutMs })));
}

/** POST the job to `host`'s rainstormd; the answer must begin within the timeout. */
async function submit(ctx: Ctx, host: string, args: string[]): Promise<JobStream> {
  try {
    // The leader must accept or refuse within the timeout; after that the job runs as long as its
    // input and the leader's stream ends it.
    return await client(ctx).submitJob(rainstormd(ctx, host), args, { acceptWithinMs: ctx.timeoutMs });
  } catch (err) {
    if (err instanceof RainstormHttpError) throw refused(err, "");
    throw new CtlError(`RainStorm leader at ${rainstormd(ctx, host)} unreachable: ${whyFailed(err)}`);
  }
}

/**
 * Submit, retrying while the leader answers 503 (its membership view is not current yet, as after
 * a restart): nothing was started then, so asking again is safe. Retries follow CTL_RETRY and end
 * with --timeout; each says `retrying: <error>` on stderr, as ctl's HyDFS commands do.
 */
async function submitRetrying503(ctx: Ctx, host: string, args: string[]): Promise<JobStream> {
  const policy = { ...CTL_RETRY, deadlineMs: ctx.timeoutMs };
  let last: CtlHttpError | undefined;
  try {
    return await retrying(
      "submit",
      policy,
      async (): Promise<Attempt<JobStream>> => {
        try {
          return { value: await submit(ctx, host, args) };
        } catch (err) {
          if (!(err instanceof CtlHttpError) || err.status !== 503) throw err;
          last = err;
          return { retry: err.message, status: 503 };
        }
      },
      { ...REAL_TIME, onRetry: (why) => process.stderr.write(`retrying: ${why}\n`) },
    );
  } catch (err) {
    // Out of retries: the last refusal, in the leader's words.
    throw err instanceof RetriesExhausted && last ? last : err;
  }
}

/** Submit a job and stream its events; resolves with the exit code (0 once done; 1 failed, cancelled or cut off). */
export async function runRainstorm(raw: string[]): Promise<number> {
  const { own, rest } = splitOwnFlags(raw);
  const ctx = await makeCtx({ node: own.node, json: own.json, config: own.config, timeout: own.timeout });
  const job = (await atLeader(ctx, (host) => submitRetrying503(ctx, host, rest))).value;
  const failure = await followEvents(ctx, job.events, `job ${job.jobId ?? "?"}`);
  if (failure === undefined) return 0;
  console.error(`error: ${failure}`);
  return 1;
}

/** How ctl tells one job event: result lines go to stdout, news to stderr; `error` is why the job did not complete. */
export function eventText(ev: JobEvent): { stdout?: string; stderr?: string; error?: string } {
  switch (ev.event) {
    case "output":
      return { stdout: ev.lines.join("\n") };
    case "accepted":
      return { stderr: `job ${ev.job} accepted: ${ev.tasks.length} tasks on ${[...new Set(ev.tasks.map((t) => t.node))].join(", ")}` };
    case "task_restarted":
      return { stderr: `task stage${ev.stage}[${ev.index}] restarted on ${ev.node} as pid ${ev.pid} (${ev.reason})` };
    case "scaled":
      return { stderr: `autoscale: stage${ev.stage}: ${ev.reason}` };
    case "done":
      return {
        stderr: `job ${ev.job} done: ${ev.tuples_read} tuples read, ${ev.tuples_out} out, ${(ev.duration_ms / 1000).toFixed(1)} s, ${ev.tuples_per_s} tuples/s; results in HyDFS ${ev.dest}`,
      };
    case "failed":
      return { error: `job ${ev.job} failed: ${ev.error}` };
    case "cancelled":
      return {
        error: `job ${ev.job} cancelled by kill_job after ${ev.tuples_read} tuples read, ${ev.tuples_out} out; HyDFS ${ev.dest} keeps the ${ev.tuples_out} results written before (not removed)`,
      };
    case "watching": {
      const j = ev.summary;
      return {
        stderr: `watching job ${j.job}: ${j.status}, ${j.stages.join(" | ")}, ${j.tuples_read} tuples read, ${j.tuples_out} out, ${j.tuples_per_s} tuples/s; its last ${ev.replayed} events follow${j.status === "running" ? ", then the live ones" : " (it has ended)"}`,
      };
    }
    case "dropped":
      return { stderr: `note: ${ev.events} events dropped here (this watch read more slowly than the job went)` };
  }
}

/**
 * Print a job's events as they come (--json: one JSON line each); resolves with why the job did
 * not complete (failed, cancelled, or the stream cut off before its end), undefined once done.
 */
export async function followEvents(ctx: Ctx, events: AsyncIterable<JobEvent>, what: string): Promise<string | undefined> {
  for await (const ev of events) {
    const text = eventText(ev);
    if (ctx.json) console.log(JSON.stringify(ev));
    else if (text.stdout !== undefined) process.stdout.write(`${text.stdout}\n`);
    else if (text.stderr !== undefined) console.error(text.stderr);
    if (ev.event === "done") return undefined;
    if (text.error !== undefined) return text.error;
  }
  return `${what}: the leader's stream ended before the job did (leader down?); ctl watch_job <job> reattaches`;
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
