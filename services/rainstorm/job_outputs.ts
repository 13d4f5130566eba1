/**
 * The output notices' side of the job state machine (job_machine.ts), pure like it: a last-stage
 * task appended results to dest itself (dest_writer.ts) and says so (outputs.ts). The machine
 * counts them (tuplesOut: the latest `total` of each appender, `from`) and streams the lines to
 * the job's watchers; a `seq` it has had from that appender (a resend) is dropped, and of a
 * notice's lines, which are the appender's results total-lines.length+1 .. total, those up to
 * the total it has had are dropped (a notice merging several of which it had some). What it keeps
 * per job is one entry per appender: O(tasks), never O(outputs). Separate because it is the one
 * event that comes from outside the leader's own calls (a worker's POST), so it checks and refuses.
 */
import type { JobInput, MachineContext, MachineJob } from "./job_events.ts";

/** Results a last-stage task put in dest: counted, and streamed to the submitter and watchers. */
export function outputsNotice(ctx: MachineContext, job: MachineJob | undefined, ev: Extract<JobInput, { type: "outputs" }>): void {
  const refuse = (status: number, error: string) => ctx.emit({ cmd: "refuse", status, error });
  if (!job) return refuse(404, `outputs: job ${ev.job} is not known on this leader`);
  const last = job.spec.stages.length - 1;
  if (ev.stage !== last) return refuse(400, `outputs of job ${job.id}: only its last stage (stage ${last}) writes dest, got stage ${ev.stage}`);
  // wire_checks.ts checkOutputsNotice has checked that `from` names this task.
  const perTask = ev.from === `s${ev.stage}t${ev.index}`;
  if (perTask !== job.spec.exactlyOnce)
    return refuse(
      400,
      `outputs of job ${job.id}: an ${job.spec.exactlyOnce ? "exactly-once job's task appends as s<stage>t<index>" : "at-least-once job's task appends as s<stage>t<index>-<pid>"}, got ${ev.from}`,
    );
  // An ended job still counts and streams notices: a cancelled job's workers send theirs while
  // they stop its tasks, before the driver tells `cancelled` (job_runtime.ts tell drops what comes after it).
  const had = job.outputs.get(ev.from);
  if (had && ev.seq <= had.seq) return; // heard already (a resend)
  job.outputs.set(ev.from, { seq: ev.seq, total: ev.total });
  job.tuplesOut += ev.total - (had?.total ?? 0);
  const heard = Math.max(0, (had?.total ?? 0) - (ev.total - ev.lines.length));
  const lines = heard > 0 ? ev.lines.slice(heard) : ev.lines;
  if (lines.length > 0) ctx.emit({ cmd: "emit", job: job.id, event: { event: "output", lines, from: ev.from, seq: ev.seq } });
}
