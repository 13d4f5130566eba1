/**
 * The autoscaling policy of one job, pure: fed one sample of every stage's per-task input rates at a time
 * (nowMs is passed in), it says which stages gain or lose a task. The caller carries the decisions out.
 *
 * Rules, per stage (these are the product requirements):
 * 1. Average per-task rate = sum of the known rates / number of known rates. A sample in which any task's
 *    rate is unknown (null: the task is restarting; or not a finite number) does not count and resets the
 *    stage's streak, so restarts never trigger scaling. A stage with no tasks is never scaled.
 * 2. Scale up by one task when avg > HW for sustainSamples consecutive samples (and tasks < maxTasks);
 *    scale down by one when avg < LW for sustainSamples consecutive samples and tasks > minTasks.
 *    At most one decision per stage per sample.
 * 3. Anti-flapping: no scale-down if the projected average after removal, avg * n / (n - 1), would exceed
 *    HW; no scale-up if the projected average after adding, avg * n / (n + 1), would fall below LW. The
 *    stage would only oscillate; nothing is done (the streak goes on, so the rule is re-checked each sample).
 * 4. Damping: after a change of a stage (the policy records nowMs of its decision as the change time), the
 *    stage is ignored until settleMs has passed; its streak then restarts from zero (samples taken while
 *    settling do not count).
 * 5. A change in a stage's number of tasks not made by the policy (the rates list's length differs from
 *    the last one seen, or from the count the policy's own decision set) resets the stage's streak; the
 *    sample showing the new count does not count either (its new tasks have barely started).
 * 6. Hence a steady load strictly between LW and HW never causes a decision: every such sample resets the
 *    streak.
 * Samples are expected about once a second; the streak counts samples, not seconds.
 */

export interface AutoscaleConfig {
  /**
   * LW: a stage whose average per-task input rate (tuples/s) stays below this loses a task (never below
   * minTasks). No default (the job names it). Higher frees idle tasks sooner but risks a scale-down that
   * the next burst undoes; must not exceed HW.
   */
  lowWatermark: number;
  /**
   * HW: a stage whose average per-task input rate stays above this gains a task (up to maxTasks). No default
   * (the job names it). Lower keeps tasks further from saturation at the cost of more tasks; the wider the
   * LW..HW band, the fewer changes.
   */
  highWatermark: number;
  /**
   * Consecutive samples (one per second) the condition must hold before acting. Default 3: long enough to
   * ignore a one-second spike, short enough to react to a real step within ~3 s. Higher = steadier, slower.
   */
  sustainSamples: number;
  /**
   * After a change to a stage, no further change to it for this long (ms): the change settles, new tasks
   * warm up and the rates re-balance. Default 5000. Lower reaches the right size sooner after a large step
   * but may act on rates measured before the new task took its share.
   */
  settleMs: number;
  /** Fewest tasks a stage is scaled down to. Default 1 (a stage needs a task); raise it to keep spare capacity. */
  minTasks: number;
  /** Most tasks a stage is scaled up to. Default 16: bounds the processes one job spreads over the cluster. */
  maxTasks: number;
}

export const DEFAULT_AUTOSCALE: Omit<AutoscaleConfig, "lowWatermark" | "highWatermark"> = {
  sustainSamples: 3,
  settleMs: 5000,
  minTasks: 1,
  maxTasks: 16,
};

/** Throws an Error naming the first bad field and what it should be. */
export function validateAutoscaleConfig(c: AutoscaleConfig): void {
  const { lowWatermark: lw, highWatermark: hw, sustainSamples, settleMs, minTasks, maxTasks } = c;
  if (!Number.isFinite(lw) || lw < 0) throw new Error(`autoscale: low watermark LW must be a finite number >= 0 tuples/s, got ${lw}`);
  if (!Number.isFinite(hw) || hw <= 0) throw new Error(`autoscale: high watermark HW must be a finite number > 0 tuples/s, got ${hw}`);
  if (lw > hw) throw new Error(`autoscale: low watermark LW (${lw}) must not exceed high watermark HW (${hw})`);
  if (!Number.isInteger(sustainSamples) || sustainSamples < 1) throw new Error(`autoscale: sustainSamples must be a positive integer, got ${sustainSamples}`);
  if (!Number.isFinite(settleMs) || settleMs < 0) throw new Error(`autoscale: settleMs must be a finite number >= 0, got ${settleMs}`);
  if (!Number.isInteger(minTasks) || minTasks < 1) throw new Error(`autoscale: minTasks must be an integer >= 1, got ${minTasks}`);
  if (!Number.isInteger(maxTasks) || maxTasks < minTasks) throw new Error(`autoscale: maxTasks must be an integer >= minTasks (${minTasks}), got ${maxTasks}`);
}

/** One sample of a stage: one entry per task currently in the stage; null = unknown (task restarting). */
export interface StageRates {
  stage: number;
  taskRates: (number | null)[];
}

export interface ScalingDecision {
  stage: number;
  from: number;
  to: number;
  avgRatePerTask: number;
  /** A human sentence with the rates, e.g. "avg 812 tuples/s per task > HW 500 for 3 samples; 2 -> 3 tasks". */
  reason: string;
}

interface StageState {
  /** Task count last seen (or set by the policy's own decision). */
  tasks: number | undefined;
  /** Direction of the current streak. */
  dir: "up" | "down" | undefined;
  /** Consecutive counting samples in `dir`. */
  streak: number;
  /** nowMs of the policy's last decision for the stage. */
  lastChangeMs: number | undefined;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

export class AutoscalePolicy {
  private readonly cfg: AutoscaleConfig;
  private readonly stages = new Map<number, StageState>();

  constructor(cfg: AutoscaleConfig) {
    validateAutoscaleConfig(cfg);
    this.cfg = { ...cfg };
  }

  /**
   * Feed one sample (nowMs, every stage's per-task rates); returns the decisions to carry out now (at most
   * one per stage). The caller applies them and the policy assumes they were applied: it records nowMs as
   * that stage's last change and the decision's `to` as its task count.
   */
  observe(nowMs: number, stages: StageRates[]): ScalingDecision[] {
    const decisions: ScalingDecision[] = [];
    const seen = new Set<number>();
    for (const { stage, taskRates } of stages) {
      if (seen.has(stage)) continue; // at most one decision per stage, even if a sample repeats a stage
      seen.add(stage);
      const decision = this.observeStage(nowMs, stage, taskRates);
      if (decision) decisions.push(decision);
    }
    return decisions;
  }

  private observeStage(nowMs: number, stage: number, rates: (number | null)[]): ScalingDecision | undefined {
    let st = this.stages.get(stage);
    if (!st) {
      st = { tasks: undefined, dir: undefined, streak: 0, lastChangeMs: undefined };
      this.stages.set(stage, st);
    }
    const n = rates.length;
    const reset = (): undefined => {
      st.dir = undefined;
      st.streak = 0;
      return undefined;
    };
    const countChanged = st.tasks !== undefined && st.tasks !== n;
    st.tasks = n;
    // Rule 4: settling (nowMs before the change counts as settling too).
    if (st.lastChangeMs !== undefined && nowMs - st.lastChangeMs < this.cfg.settleMs) return reset();
    // Rule 5 and rule 1.
    if (countChanged || n === 0) return reset();
    let sum = 0;
    for (const r of rates) {
      if (r === null || !Number.isFinite(r)) return reset();
      sum += r;
    }
    const avg = sum / n;
    const { lowWatermark: lw, highWatermark: hw, sustainSamples, minTasks, maxTasks } = this.cfg;
    const dir = avg > hw ? "up" : avg < lw ? "down" : undefined;
    // Rule 6: in the band, nothing builds up.
    if (dir === undefined) return reset();
    st.streak = st.dir === dir ? st.streak + 1 : 1;
    st.dir = dir;
    if (st.streak < sustainSamples) return undefined;
    let to: number;
    let reason: string;
    if (dir === "up") {
      if (n >= maxTasks) return undefined;
      if ((avg * n) / (n + 1) < lw) return undefined; // rule 3
      to = n + 1;
      reason = `avg ${fmt(avg)} tuples/s per task > HW ${fmt(hw)} for ${st.streak} samples; ${n} -> ${to} tasks`;
    } else {
      if (n <= minTasks) return undefined;
      if ((avg * n) / (n - 1) > hw) return undefined; // rule 3
      to = n - 1;
      reason = `avg ${fmt(avg)} tuples/s per task < LW ${fmt(lw)} for ${st.streak} samples; ${n} -> ${to} tasks`;
    }
    reset();
    st.lastChangeMs = nowMs;
    st.tasks = to;
    return { stage, from: n, to, avgRatePerTask: avg, reason };
  }
}
