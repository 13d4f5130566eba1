/**
 * The sink's side of the job state machine (job_machine.ts), pure like it: a batch of results of
 * a job's last stage is checked against the job, its repeats dropped (exactly-once: each output
 * id once), counted, streamed to the submitter and written to dest. Separate because it is the one
 * event that comes from outside the leader's own calls (a worker's POST), so it checks and refuses.
 */
import type { JobInput, MachineContext, MachineJob } from "./job_events.ts";

/** Results of the last stage: counted, streamed to the submitter and written to dest (exactly-once: each output id once). */
export function sinkBatch(ctx: MachineContext, job: MachineJob | undefined, ev: Extract<JobInput, { type: "sink_batch" }>): void {
  const refuse = (status: number, error: string) => ctx.emit({ cmd: "refuse", status, error });
  if (!job) return refuse(404, `sink batch: job ${ev.job} is not known on this leader`);
  const nStages = job.spec.stages.length;
  if (ev.stage !== nStages || ev.index !== 0)
    return refuse(
      400,
      `sink batch: job ${job.id} has ${nStages} stages, so its results come as stage ${nStages} index 0, got stage ${ev.stage} index ${ev.index}`,
    );
  if (ev.ids && !job.spec.exactlyOnce) return refuse(400, `sink batch: job ${job.id} is not exactly-once; its results carry no ids`);
  if (job.status !== "running") return; // a late batch of a finished job: nothing to do
  let lines = ev.lines;
  if (job.spec.exactlyOnce) {
    const ids = ev.ids;
    if (!ids || ids.length !== lines.length)
      return refuse(400, `sink batch of job ${job.id}: exactly-once needs one id per line (${lines.length} lines, ${ids?.length ?? "no"} ids)`);
    lines = lines.filter((_, i) => {
      if (job.sinkSeen.has(ids[i]!)) return false;
      job.sinkSeen.add(ids[i]!);
      return true;
    });
    if (lines.length === 0) return;
  }
  job.tuplesOut += lines.length;
  ctx.emit({ cmd: "emit", job: job.id, event: { event: "output", lines } });
  ctx.emit({ cmd: "write_dest", job: job.id, text: `${lines.join("\n")}\n` });
}
