/**
 * Autoscaling of a running job, part of the job state machine (job_machine.ts) and pure like it:
 * sample the tasks' rates, hand them to the job's AutoscalePolicy (autoscale.ts, which decides),
 * and carry out its decisions (a task added to or retired from a stage), then report each change.
 * Separate because it is one concern with its own events (sample_due, rates, retired) and state
 * (MachineJob.autoscaler); these are functions over the MachineContext the machine gives them.
 */
import type { ScalingDecision } from "./autoscale.ts";
import { hostOf, type JobInput, type MachineContext, type MachineJob, taskKey, type TaskInfo } from "./job_events.ts";

/** How often an autoscaling job's task rates are sampled (the policy counts samples). */
export const AUTOSCALE_SAMPLE_MS = 1000;

/** The key of a task's rate in a `rates` event: job, stage, index and the pid it runs as. */
export function rateKey(job: string, stage: number, index: number, pid: number): string {
  return `${job}/${stage}/${index}/${pid}`;
}

/** Every AUTOSCALE_SAMPLE_MS: ask the workers for their tasks' rates, unless the last sample is still being acted on. */
export function sampleDue(ctx: MachineContext, job: MachineJob): void {
  const a = job.autoscaler;
  if (!a || job.status !== "running") return;
  ctx.after(AUTOSCALE_SAMPLE_MS, { type: "sample_due", job: job.id });
  if (a.sampling || a.changing > 0) return;
  a.sampling = true;
  ctx.emit({ cmd: "sample_rates", job: job.id, addrs: [...new Set(job.tasks.flat().map((t) => t.addr))] });
}

/** The workers' rates came back: every task's rate to the policy, then carry out what it decides. */
export function onRates(ctx: MachineContext, job: MachineJob, rates: Map<string, number>): void {
  const a = job.autoscaler;
  if (!a || !a.sampling || job.status !== "running") return;
  a.sampling = false;
  const stages = job.tasks.map((ts, stage) => ({ stage, taskRates: ts.map((t) => rates.get(rateKey(job.id, t.stage, t.index, t.pid)) ?? null) }));
  for (const d of a.policy.observe(ctx.nowMs(), stages)) {
    const text = `task rates ${stages[d.stage]!.taskRates.map((r) => r ?? "?").join(", ")} tuples/s`;
    if (d.to > d.from) addTask(ctx, job, d, text);
    else removeTask(ctx, job, d, text);
  }
}

/** Grow a stage: the new task runs before any route names it, then everyone learns the routes. */
function addTask(ctx: MachineContext, job: MachineJob, d: ScalingDecision, rates: string): void {
  const stageTasks = job.tasks[d.stage]!;
  if (ctx.workers().length === 0) return;
  const { op, args } = stageTasks[0]!;
  const t: TaskInfo = { stage: d.stage, index: stageTasks.length, op, args, addr: ctx.leastLoaded(), pid: 0, logPath: "", restarts: 0 };
  stageTasks.push(t);
  ctx.nextRoutes(job);
  job.autoscaler!.changing++;
  ctx.start(job, t, { why: "scale", decision: d, rates });
}

/** Shrink a stage: its last task leaves the routes, then its worker retires it once idle. */
function removeTask(ctx: MachineContext, job: MachineJob, d: ScalingDecision, rates: string): void {
  const stageTasks = job.tasks[d.stage]!;
  if (stageTasks.length <= 1) return;
  const t = stageTasks.pop()!;
  ctx.nextRoutes(job);
  ctx.broadcastRoutes(job, [t.addr]);
  job.autoscaler!.changing++;
  job.autoscaler!.retiring.set(taskKey(t.stage, t.index), { decision: d, rates });
  ctx.emit({ cmd: "retire", job: job.id, addr: t.addr, stage: t.stage, index: t.index });
}

export function onRetired(ctx: MachineContext, job: MachineJob, ev: Extract<JobInput, { type: "retired" }>): void {
  const a = job.autoscaler;
  const pending = a?.retiring.get(taskKey(ev.stage, ev.index));
  if (!a || !pending) return;
  a.retiring.delete(taskKey(ev.stage, ev.index));
  changeDone(job);
  // Its worker is gone or slow: the task is out of the routes anyway, and whatever it did not
  // acknowledge is re-sent to the remaining tasks.
  if (ev.error !== undefined) ctx.emit({ cmd: "log", level: "warn", text: `job ${job.id}: retiring stage${ev.stage}[${ev.index}] on ${ev.addr}: ${ev.error}` });
  if (job.status === "running") reportScaled(ctx, job, pending.decision, pending.rates, `stage${ev.stage}[${ev.index}] on ${hostOf(ev.addr)} retired`);
}

/** One change of the job's size is over (added, failed to add, or retired): samples may resume once none is under way. */
export function changeDone(job: MachineJob): void {
  if (job.autoscaler) job.autoscaler.changing = Math.max(0, job.autoscaler.changing - 1);
}

/** A change of a stage's size took effect: logged and told to the submitter as `scaled`. */
export function reportScaled(ctx: MachineContext, job: MachineJob, d: ScalingDecision, rates: string, what: string): void {
  ctx.emit({ cmd: "log", level: "info", text: `job ${job.id}: autoscale stage${d.stage} ${d.from} -> ${d.to} tasks: ${d.reason} (${rates}); ${what}` });
  ctx.emit({
    cmd: "emit",
    job: job.id,
    event: { event: "scaled", stage: d.stage, from: d.from, to: d.to, avg_rate_per_task: Math.round(d.avgRatePerTask), reason: d.reason },
  });
}
