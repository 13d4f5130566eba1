/**
 * ctl RainStorm commands: `rainstorm` (submit a job and stream its results), `list_tasks`,
 * `kill_task`. They talk to the leader (config rainstorm.leader, or the first introducer's host).
 *
 * `rainstorm` takes the seed's syntax, whose `-stage-config-map` looks like a flag: its arguments
 * are therefore passed through untouched (only --node, --config, --json and --timeout are ours).
 */
import { defineCommand } from "citty";
import { leaderHost } from "../shared/config.ts";
import { whyFailed } from "../shared/http.ts";
import { readLines } from "../shared/lines.ts";
import { commonArgs, CtlError, type Ctx, daemonCall, makeCtx, print, resolveNodeName, table } from "./context.ts";

function leaderCtx(args: { node: string; json: boolean; config: string; timeout: string }, nodeGiven: boolean): Ctx {
  const ctx = makeCtx(args);
  return nodeGiven ? ctx : { ...ctx, host: leaderHost(ctx.cfg) };
}

function leaderCall(ctx: Ctx, method: string, path: string, body?: unknown): Promise<any> {
  return daemonCall(ctx, "rainstormd", ctx.cfg.ports.rainstorm, path, { method, body });
}

/** Pull our own flags out of a raw argument list; everything else belongs to the job. */
export function splitOwnFlags(raw: string[]): { own: { node?: string; json: boolean; config: string; timeout: string }; rest: string[] } {
  const own = { node: undefined as string | undefined, json: false, config: "./config.json", timeout: "10000" };
  const rest: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    const m = /^--(node|config|timeout)(?:=(.*))?$/.exec(a);
    if (m) {
      const value = m[2] ?? raw[++i];
      if (value === undefined) throw new CtlError(`--${m[1]}: expected a value`);
      own[m[1] as "node" | "config" | "timeout"] = value;
    } else if (a === "--json") own.json = true;
    else rest.push(a);
  }
  return { own, rest };
}

/** Submit a job and stream its events; resolves with the exit code. */
export async function runRainstorm(raw: string[]): Promise<number> {
  const { own, rest } = splitOwnFlags(raw);
  const ctx = leaderCtx({ node: own.node ?? "01", json: own.json, config: own.config, timeout: own.timeout }, own.node !== undefined);
  let res: Response;
  // The leader must accept or refuse within the timeout; after that the job runs as long as its
  // input and the leader's stream ends it, so the deadline is lifted once the answer has begun.
  const accepted = new AbortController();
  const timer = setTimeout(() => accepted.abort(), ctx.timeoutMs);
  try {
    res = await ctx.http.fetch(`http://${ctx.host}:${ctx.cfg.ports.rainstorm}/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ args: rest }), signal: accepted.signal });
  } catch (err) {
    throw new CtlError(`RainStorm leader at ${ctx.host}:${ctx.cfg.ports.rainstorm} unreachable: ${accepted.signal.aborted ? `no answer within ${ctx.timeoutMs} ms` : whyFailed(err)}`);
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    const text = await res.text();
    let msg = text;
    try {
      msg = JSON.parse(text).error ?? text;
    } catch {}
    throw new CtlError(`${msg} (HTTP ${res.status})`);
  }
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
    const ctx = leaderCtx(args, process.argv.some((a) => a.startsWith("--node")));
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
  meta: { name: "kill_task", description: "kill_task <node> <pid>: kill one task's operator process; the leader restarts the task" },
  args: { ...commonArgs, target: { type: "positional", description: "node alias or address", required: true }, pid: { type: "positional", description: "operator pid (see list_tasks)", required: true } },
  async run({ args }) {
    const ctx = leaderCtx(args, false);
    const pid = Number(args.pid);
    if (!Number.isInteger(pid) || pid < 1) throw new CtlError(`pid ${JSON.stringify(args.pid)}: expected a positive integer`);
    const node = resolveNodeName(ctx.cfg.aliases, args.target, "kill_task node");
    const r = await leaderCall(ctx, "POST", "/kill_task", { node, pid });
    print(ctx, r, () => `killed pid ${r.pid} on ${r.node} (job ${r.job} stage${r.stage}[${r.task}]); the leader restarts it`);
  },
});

export const rainstormCommands = { rainstorm: rainstormCmd, list_tasks: listTasksCmd, kill_task: killTaskCmd };
