/**
 * A worker's periodic upkeep, on its clock: sample each task's input rate, kill operators that
 * are hung, and stop the tasks of jobs whose leader has ended them or is gone (orphans).
 *
 * Separate from worker.ts because it runs on timers rather than on requests: the worker hosts
 * tasks and moves batches; this looks at those tasks from the outside, through the small
 * UpkeepHost the worker gives it, and decides through the pure guards in worker_guards.ts.
 */
import type { Logger } from "../shared/log.ts";
import type { RainstormSettings } from "./config.ts";
import type { Clock } from "./clock.ts";
import type { TaskDeath } from "./model.ts";
import type { TaskRunner } from "./task.ts";
import {
  type Claim,
  ENDED_GRACE_MS,
  hungReason,
  judgeJob,
  type LeaderAnswer,
  LEADER_QUERY_TIMEOUT_MS,
  ORPHAN_CHECK_MS,
  watchAnswers,
} from "./worker_guards.ts";

/** How often each task's input rate is sampled (list_tasks, autoscaling, the task log), and its operator's progress (hung operators). */
const RATE_SAMPLE_MS = 1000;
/** Samples this far apart mean this process was paused: no operator is judged hung on them (worker_guards.ts watchAnswers). */
const SAMPLE_GAP_MS = 3 * RATE_SAMPLE_MS;

/** The leader as the orphan guard asks it: its address, and GET /jobs (each job it knows and its status). */
export interface LeaderJobs {
  addr: string;
  jobs(timeoutMs: number): Promise<{ job: string; status: string }[]>;
}

/** What the upkeep sees of and asks of its worker. */
export interface UpkeepHost {
  /** The worker's tasks by key (job/stage/index), live: the upkeep reads it, never changes it. */
  readonly tasks: ReadonlyMap<string, TaskRunner>;
  readonly clock: Clock;
  readonly log: Logger;
  /** The node's rainstorm settings, read at each check (operator_timeout_ms, orphan_timeout_ms). */
  readonly settings: RainstormSettings;
  /** Where to ask which jobs are still running; without it no orphan check runs. */
  readonly leader?: LeaderJobs;
  /** A line in a task's local log. */
  note(logPath: string, text: string): void;
  /** Stop (kill) a job's tasks on this worker. */
  stopJob(job: string): Promise<number>;
  /** Report a task dead to the leader. */
  onTaskDied(t: TaskDeath): void;
  /** Whether any task or source runs here. */
  busy(): boolean;
  /** Collect garbage (once per idle spell, IDLE_COLLECT_MS after the work ended). */
  collectGarbage(): void;
}

/**
 * A worker whose tasks have all been gone this long collects its garbage once: JavaScriptCore
 * keeps a heap grown during a job, and the RSS with it. Measured (leader_memory.ts, 1M-line
 * exactly-once App 1): after the job workers sat at up to 5.7x their idle RSS, with this at most 1.6x.
 */
export const IDLE_COLLECT_MS = 2000;

export class WorkerUpkeep {
  /** The periodic timers (rates and hung operators; orphans); stop() cancels them. */
  private readonly timers: { cancel(): void }[] = [];
  /** The orphan guard's view of each job with tasks here. */
  private readonly claims = new Map<string, Claim>();
  private checkingOrphans = false;
  /** Work ran since the last collection; and since when the worker has been idle, if it is. */
  private workedSinceCollect = false;
  private idleSinceMs: number | undefined;

  constructor(private readonly host: UpkeepHost) {
    this.timers.push(every(host.clock, RATE_SAMPLE_MS, () => this.sample()));
    if (host.leader) this.timers.push(every(host.clock, ORPHAN_CHECK_MS, () => void this.checkOrphans()));
  }

  stop(): void {
    for (const t of this.timers.splice(0)) t.cancel();
  }

  private sample(): void {
    this.sampleRates();
    this.killHungOperators();
    this.collectWhenIdle();
  }

  private collectWhenIdle(): void {
    if (this.host.busy()) {
      this.workedSinceCollect = true;
      this.idleSinceMs = undefined;
      return;
    }
    if (!this.workedSinceCollect) return;
    const nowMs = this.host.clock.nowMs();
    this.idleSinceMs ??= nowMs;
    if (nowMs - this.idleSinceMs < IDLE_COLLECT_MS) return;
    this.workedSinceCollect = false;
    this.idleSinceMs = undefined;
    this.host.collectGarbage();
  }

  private sampleRates(): void {
    for (const t of this.host.tasks.values()) {
      t.ratePerSec = t.inputs - t.inputsAtSample;
      t.inputsAtSample = t.inputs;
      if (t.ratePerSec > 0 || t.inputs > 0) {
        try {
          this.host.note(t.logPath, `${t.ratePerSec} tuples/s (${t.inputs} total)`);
        } catch {}
      }
    }
  }

  /** An operator with inputs pending that answered nothing for rainstorm.operator_timeout_ms is killed; its death report says why. */
  private killHungOperators(): void {
    const timeoutMs = this.host.settings.operator_timeout_ms;
    const now = this.host.clock.nowMs();
    for (const [k, t] of this.host.tasks) {
      if (timeoutMs <= 0 || !t.op.progress || t.stopping || !t.op.alive || t.killedBecause) continue;
      const progress = t.op.progress();
      t.answers = watchAnswers(t.answers, progress, now, SAMPLE_GAP_MS);
      const reason = hungReason(progress.pending, t.answers.silentSinceMs, now, timeoutMs);
      if (!reason) continue;
      t.killedBecause = reason;
      this.host.note(t.logPath, `task ${k}: killed: ${reason}`);
      this.host.log.warn(`task ${k} (pid ${t.op.pid}) is hung: ${reason}; killing it (the leader restarts it)`);
      t.op.kill();
    }
  }

  /**
   * Ask the leader about the jobs with tasks here; stop those it reports ended, and those no
   * leader has claimed for rainstorm.orphan_timeout_ms (judgeJob).
   */
  private async checkOrphans(): Promise<void> {
    const leader = this.host.leader;
    if (!leader || this.checkingOrphans) return;
    const jobs = new Set([...this.host.tasks.values()].map((t) => t.start.job));
    for (const j of this.claims.keys()) if (!jobs.has(j)) this.claims.delete(j);
    if (jobs.size === 0) return;
    this.checkingOrphans = true;
    let answer: LeaderAnswer;
    try {
      answer = { reached: true, status: new Map((await leader.jobs(LEADER_QUERY_TIMEOUT_MS)).map((j) => [j.job, j.status])) };
    } catch (err) {
      answer = { reached: false, error: (err as Error).message };
    } finally {
      this.checkingOrphans = false;
    }
    const rule = { orphanTimeoutMs: this.host.settings.orphan_timeout_ms, endedGraceMs: ENDED_GRACE_MS, leader: leader.addr };
    const now = this.host.clock.nowMs();
    for (const job of jobs) {
      const { claim, stop } = judgeJob(job, this.claims.get(job), answer, now, rule);
      this.claims.set(job, claim);
      if (stop) await this.stopOrphan(job, stop);
    }
  }

  /**
   * Stop a job's tasks here, and report each as dead: a leader that still runs the job after all
   * (it was unreachable for a while) restarts them rather than wait for them forever; one that
   * has ended or does not know the job ignores the report.
   */
  private async stopOrphan(job: string, why: string): Promise<void> {
    this.claims.delete(job);
    const mine = [...this.host.tasks].filter(([, t]) => t.start.job === job);
    if (mine.length === 0) return;
    this.host.log.warn(`job ${job}: stopping its ${mine.length} tasks on this worker: ${why}`);
    for (const [k, t] of mine) this.host.note(t.logPath, `task ${k}: stopped: ${why}`);
    await this.host.stopJob(job);
    for (const [, t] of mine) {
      const { stage, index } = t.start;
      this.host.onTaskDied({ job, stage, index, pid: t.op.pid, reason: `stopped by its worker: ${why}` });
    }
  }
}

/** Run `fn` every `ms` on `clock` until cancelled. */
function every(clock: Clock, ms: number, fn: () => void): { cancel(): void } {
  let timer: { cancel(): void } | undefined;
  const arm = () => {
    timer = clock.after(ms, () => {
      fn();
      if (timer) arm();
    });
  };
  arm();
  return {
    cancel: () => {
      timer?.cancel();
      timer = undefined;
    },
  };
}
