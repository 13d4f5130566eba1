/**
 * Faults fired on a job's progress, not on a timer, and the proof that they landed. A timer set
 * to "30% of the expected job length" can fire after the job ended (on a loaded box, or when the
 * job runs faster than expected) and the test then passes without any failure; a step here fires
 * once the job has streamed a number of outputs, and settled() fails when a step never fired.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LocalCluster } from "./cluster.ts";

export interface FaultStep {
  /** Fire once the job has streamed at least this many output lines. */
  afterOutputs: number;
  /** What to do then; steps run one after another, each after the previous one finished. */
  act: () => Promise<void>;
}

export class ProgressFaults {
  private outputs = 0;
  private fired = 0;
  private chain: Promise<void> = Promise.resolve();
  private error: unknown;

  constructor(private readonly steps: FaultStep[]) {}

  /** Feed every job event here (RainstormTestClient.run's onEvent). */
  onEvent(ev: Record<string, any>): void {
    if (ev.event === "output") this.outputs += (ev.lines as string[]).length;
    while (this.fired < this.steps.length && this.outputs >= this.steps[this.fired]!.afterOutputs) {
      const step = this.steps[this.fired++]!;
      this.chain = this.chain.then(step.act).catch((err) => {
        this.error ??= err;
      });
    }
  }

  /** Wait for every step; throw the first step's error, or say which step never fired. */
  async settled(): Promise<void> {
    await this.chain;
    if (this.error) throw this.error;
    if (this.fired < this.steps.length) {
      throw new Error(
        `fault step ${this.fired + 1} of ${this.steps.length} never fired: the job streamed ${this.outputs} outputs, the step waits for ${this.steps[this.fired]!.afterOutputs}`,
      );
    }
  }
}

/** A task as the leader lists it (RainstormTestClient.tasks). */
export interface KilledTask {
  stage: number;
  task: number;
  node: string;
  pid: number;
}

/**
 * The task_restarted event that replaced `killed` (same stage and index, another pid), or a
 * message saying it is missing.
 */
export function restartOf(events: Record<string, any>[], killed: KilledTask): Record<string, any> | string {
  const ev = events.find((e) => e.event === "task_restarted" && e.stage === killed.stage && e.index === killed.task && e.pid !== killed.pid);
  return ev ?? `no task_restarted for stage${killed.stage}[${killed.task}] with a pid other than ${killed.pid}`;
}

/**
 * How many processed inputs each start of a task recovered from its exactly-once log, read from
 * the task's stderr log on every node of `c` (the worker writes "recovered N processed inputs" once
 * it has read the log back). A first start recovers 0; a restart after progress recovers more.
 */
export function recoveredInputs(c: LocalCluster, job: string, stage: number, index: number): number[] {
  const counts: number[] = [];
  for (const k of c.nodeNumbers) {
    let text: string;
    try {
      text = readFileSync(join(c.dir, `node-${k}`, "data", "rainstorm", "logs", job, `stage${stage}-task${index}.log`), "utf8");
    } catch {
      continue;
    }
    for (const m of text.matchAll(/recovered (\d+) processed inputs/g)) counts.push(Number(m[1]));
  }
  return counts;
}
