/**
 * ctl RainStorm commands: `rainstorm` (submit a job and stream its results), `list_tasks`,
 * `kill_task`. They talk to the leader, which ctl finds out (context.ts leaderTarget): the node
 * given with --node, else the config's rainstorm.leader, else the leader rule applied to what the
 * reached node's memberd says (its introducers). A rainstormd that is not the leader answers 421
 * naming it, and ctl follows that once.
 *
 * `rainstorm` takes the seed's syntax, whose `-stage-config-map` looks like a flag: its arguments
 * are therefore passed through untouched (only --node, --config, --json and --timeout are ours,
 * and --rate-schedule is the job's; any other `--flag` is refused as unknown).
 */
import { defineCommand } from "citty";
import { UsageError } from "../shared/cli.ts";
import { whyFailed } from "../shared/http.ts";
import { readLines } from "../shared/lines.ts";
import { atLeader, commonArgs, CtlError, CtlHttpError, type Ctx, leaderCall, makeCtx, nodeHost, print, table } from "./context.ts";

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
      throw new UsageError(`unknown flag ${a.split("=")[0]} for ctl rainstorm; it takes --node, --json, --config, --timeout and the job's ${JOB_FLAGS.join(", ")} (see ctl rainstorm --help)`);
    } else rest.push(a);
  }
  return { own, rest };
}

/** POST the job to `host`'s rainstormd; the answer must begin within the timeout. */
async function submit(ctx: Ctx, host: string, args: string[]): Promise<Response> {
  const url = `http://${host}:${ctx.cfg.ports.rainstorm}/jobs`;
  // The leader must accept or refuse within the timeout; after that the job runs as long as its
  // input and the leader's stream ends it, so the deadline is lifted once the answer has begun.
  const accepted = new AbortController();
  const timer = setTimeout(() => accepted.abort(), ctx.timeoutMs);
  let res: Response;
  try {
    res = await ctx.http.fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ args }), signal: accepted.signal });
  } catch (err) {
    throw new CtlError(`RainStorm leader at ${host}:${ctx.cfg.ports.rainstorm} unreachable: ${accepted.signal.aborted ? `no answer within ${ctx.timeoutMs} ms` : whyFailed(err)}`);
  } finally {
    clearTimeout(timer);
  }
  if (res.ok) return res;
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  const msg = typeof (body as { error?: unknown })?.error === "string" ? (body as { error: string }).error : text;
  throw new CtlHttpError(`${msg} (HTTP ${res.status})`, res.status, body);
}

/** Submit a job and stream its events; resolves with the exit code. */
export async function runRainstorm(raw: string[]): Promise<number> {
  const { own, rest } = splitOwnFlags(raw);
  const ctx = await makeCtx({ node: own.node, json: own.json, config: own.config, timeout: own.timeout });
  const res = (await atLeader(ctx, (host) => submit(ctx, host, rest))).value;
  let code = 1;
  for await (const line of readLines(res.body!)) {
    {
      if (!line) continue;
      const ev = JSON.parse(line);
      if (ctx.json) {
        console.log(line);
      } else if (ev.event === "output") {
        process.stdout.write(`${ev.lines.join("\n")}\n`);
      } else if (ev.event === "accepted") {
        console.error(`job ${ev.job} accepted: ${ev.tasks.length} tasks on ${[...new Set(ev.tasks.map((t: { node: string }) => t.node))].join(", ")}`);
      } else if (ev.event === "task_restarted") {
        console.error(`task stage${ev.stage}[${ev.index}] restarted on ${ev.node} as pid ${ev.pid} (${ev.reason})`);
      } else if (ev.event === "scaled") {
        console.error(`autoscale: stage${ev.stage}: ${ev.reason}`);
      } else if (ev.event === "done") {
        console.error(`job ${ev.job} done: ${ev.tuples_read} tuples read, ${ev.tuples_out} out, ${(ev.duration_ms / 1000).toFixed(1)} s, ${ev.tuples_per_s} tuples/s; results in HyDFS ${ev.dest}`);
      } else if (ev.event === "failed") {
        console.error(`error: job ${ev.job} failed: ${ev.error}`);
      }
      if (ev.event === "done") code = 0;
      if (ev.event === "failed") code = 1;
    }
  }
  return code;
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
    const r = await leaderCall(ctx, "GET", "/tasks");
    print(ctx, r, () =>
      r.tasks.length === 0
        ? "no running tasks"
        : table([
            ["JOB", "STAGE", "TASK", "NODE", "PID", "OP", "ARGS", "TUPLES/S", "RESTARTS", "LOG"],
            ...r.tasks.map((t: any) => [t.job, String(t.stage), String(t.task), t.node, String(t.pid), t.op, t.args.join(" "), t.rate === null ? "?" : String(t.rate), String(t.restarts), t.log]),
          ]),
    );
  },
});

export const killTaskCmd = defineCommand({
  meta: { name: "kill_task", description: "kill_task <node> <pid>: kill one task's operator process (on <node>); the leader restarts the task. --node: the node asked, as for every command" },
  args: { ...commonArgs, target: { type: "positional", description: "the node the task runs on: alias, name or address", required: true }, pid: { type: "positional", description: "operator pid (see list_tasks)", required: true } },
  async run({ args }) {
    const pid = Number(args.pid);
    if (!Number.isInteger(pid) || pid < 1) throw new CtlError(`pid ${JSON.stringify(args.pid)}: expected a positive integer`);
    const ctx = await makeCtx(args);
    const node = await nodeHost(ctx, args.target, "kill_task node");
    const r = await leaderCall(ctx, "POST", "/kill_task", { node, pid });
    print(ctx, r, () => `killed pid ${r.pid} on ${r.node} (job ${r.job} stage${r.stage}[${r.task}]); the leader restarts it`);
  },
});

export const rainstormCommands = { rainstorm: rainstormCmd, list_tasks: listTasksCmd, kill_task: killTaskCmd };
