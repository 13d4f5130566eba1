/**
 * The leader's answers that change no job: list_tasks (with each task's current rate, asked of
 * its worker), kill_task (the operator is killed; the machine hears of it as any other death) and
 * a job's summary for list_jobs and watch_job. Separate from the driver (leader.ts) because they
 * only read the job machine's jobs and ask the workers, and the autoscaler's rate sampling shares
 * taskRates with list_tasks.
 */
import { LeaderError } from "./job_checks.ts";
import { type MachineJob, rateKey, tuplesPerS } from "./job_machine.ts";
import type { JobSummary, KillTaskAnswer, ListedTask } from "./model.ts";
import type { RainstormTransport } from "./transport.ts";

/** Each task's input rate (tuples/s in the last second), keyed by rateKey, from the workers at `addrs`. */
export async function taskRates(transport: RainstormTransport, addrs: Iterable<string>): Promise<Map<string, number>> {
  const rates = new Map<string, number>();
  await Promise.allSettled(
    [...new Set(addrs)].map(async (a) => {
      for (const r of await transport.listTasks(a)) rates.set(rateKey(r.job, r.stage, r.index, r.pid), r.ratePerSec);
    }),
  );
  return rates;
}

/** list_tasks: every task of the running jobs, with its rate (null if its worker did not answer). */
export async function listTasks(transport: RainstormTransport, running: MachineJob[]): Promise<ListedTask[]> {
  const addrs = running.flatMap((j) => j.tasks.flat().map((t) => t.addr));
  const rates = await taskRates(transport, addrs);
  return running.flatMap((j) =>
    j.tasks.flat().map((t) => ({
      job: j.id,
      stage: t.stage,
      task: t.index,
      node: t.addr.split(":")[0]!,
      pid: t.pid,
      op: t.op,
      args: t.args,
      rate: rates.get(rateKey(j.id, t.stage, t.index, t.pid)) ?? null,
      restarts: t.restarts,
      ...(t.lastRestartReason === undefined ? {} : { last_restart_reason: t.lastRestartReason }),
      log: t.logPath,
    })),
  );
}

/** kill_task: the running task with `pid` on `node` is killed by its worker (404 if there is none). */
export async function killTask(transport: RainstormTransport, running: MachineJob[], node: string, pid: number, term?: number): Promise<KillTaskAnswer> {
  for (const j of running) {
    for (const t of j.tasks.flat()) {
      if (t.pid === pid && t.addr.split(":")[0] === node) {
        await transport.killTask(t.addr, pid, term);
        return { job: j.id, stage: t.stage, task: t.index, node, pid };
      }
    }
  }
  throw new LeaderError(`no running task with pid ${pid} on node ${node} (see list_tasks)`, 404);
}

/** A job as list_jobs and watch_job show it. */
export function jobSummary(j: MachineJob, nowMs: number): JobSummary {
  return {
    job: j.id,
    status: j.status,
    stages: j.spec.stages.map((s) => [s.op, ...s.args].join(" ")),
    tasks: j.tasks.map((ts) => ts.length),
    src: j.spec.src,
    dest: j.spec.dest,
    tuples_read: j.tuplesRead,
    tuples_out: j.tuplesOut,
    tuples_per_s: tuplesPerS(j, nowMs),
  };
}
