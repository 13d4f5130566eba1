/**
 * Section 5b, kill to resume: App 1 with exactly_once=true at a paced rate, once killing a stage-1
 * task several times and once a stage-0 task; per kill the time to the task_restarted event, to the
 * restarted task's first logged batch and to the first output after the restart.
 */
import { DEFAULT_RAINSTORM } from "../../../services/rainstorm/config.ts";
import { partitionOf } from "../../../services/rainstorm/plan.ts";
import type { LocalCluster } from "../../../services/testing/cluster.ts";
import type { HydfsTestClient } from "../../../services/testing/hydfs_client.ts";
import type { RainstormTestClient } from "../../../services/testing/rainstorm_client.ts";
import { fmtMs, fmtSec, int, mdTable, percentile } from "../stats.ts";
import { checkApp1, checkDest, checkIncreasing } from "./checks.ts";
import type { BenchCtx } from "./context.ts";
import { app1Args, type Reference, shares, TASKS } from "./input.ts";
import { type JobResult, runJob } from "./job.ts";

/** Source rate of the kill runs (tuples/s). */
export const KILL_RATE = 2000;
/** Seconds of input at KILL_RATE. */
export const killSeconds = (quick: boolean): number => (quick ? 12 : 20);
/** Seconds after `accepted` at which a task is killed, in each kill run. */
export const killAtS = (quick: boolean): number[] => (quick ? [2.5, 5.5, 8.5] : [3, 7, 11, 15]);
/** Target of issue 5: p99 of kill (= detection) to output resuming. */
export const RESUME_TARGET_MS = 3000;
/** Polling period of the restarted task's worker, for its first logged batch. */
const FIRST_BATCH_POLL_MS = 20;
/** How long to look for the restarted task's first logged batch. */
const FIRST_BATCH_DEADLINE_MS = 20_000;

export interface KillTrial {
  stage: number;
  index: number;
  atS: number;
  node: string;
  pid: number;
  /** performance.now() just before the kill_task request. */
  tKill: number;
  status?: number;
  error?: string;
  newPid?: number;
  newNode?: string;
  restartAt?: number;
  /** When the restarted task's first logged batch was seen in its worker's task list. */
  firstBatchAt?: number;
  /** First output (stage 1: with a key the task owns) at or after the task_restarted event. */
  outAfterRestartAt?: number;
  /** First output (stage 1: with a key the task owns) at or after firstBatchAt: output resumed. */
  resumeAt?: number;
}

export interface KillRun {
  stage: number;
  job: string;
  lines: number;
  outputs: number;
  restarts: number;
  durationMs: number;
  check: string;
  trials: KillTrial[];
}

export interface KillResult {
  /** The input, once stored (undefined: the section failed before it). */
  ref?: Reference;
  killAtS: number[];
  killSeconds: number;
  runs: KillRun[];
}

/** The stage's tasks a run kills in turn: stage 0 all of them; stage 1 those owning >= 10% of the keyed tuples, busiest first. */
export function killCandidates(stage: 0 | 1, stage1Shares: readonly number[]): number[] {
  if (stage === 0) return Array.from({ length: TASKS }, (_, i) => i);
  const total1 = stage1Shares.reduce((a, b) => a + b, 0);
  return stage1Shares
    .map((n, i) => ({ n, i }))
    .filter((x) => x.n >= 0.1 * total1)
    .sort((a, b) => b.n - a.n)
    .map((x) => x.i);
}

/** Poll the restarted task's worker until its task list shows a logged batch of the new pid. */
async function pollFirstBatch(rs: RainstormTestClient, c: LocalCluster, job: string, t: KillTrial, isOver: () => boolean): Promise<void> {
  const k = c.nodeNumbers.find((n) => c.host(n) === t.newNode);
  if (k === undefined) return;
  const deadline = performance.now() + FIRST_BATCH_DEADLINE_MS;
  while (performance.now() < deadline && !isOver()) {
    try {
      const list = await rs.workerTasks(k, 2000);
      const me = list.find((x) => x.job === job && x.stage === t.stage && x.index === t.index && x.pid === t.newPid);
      if (me && me.batches > 0) {
        t.firstBatchAt = performance.now();
        return;
      }
    } catch {
      // the worker is busy or the job just ended; try again
    }
    await Bun.sleep(FIRST_BATCH_POLL_MS);
  }
}

/**
 * Per trial, the first output after the restart and after the first logged batch (stage 1: a line
 * whose key the killed task owns; stage 0: any line, its outputs cannot be told apart).
 */
export function outputTimes(stage: number, trials: KillTrial[], arrivals: JobResult["arrivals"]): void {
  const owns = (line: string, index: number) => stage === 0 || partitionOf(line.slice(0, line.lastIndexOf("\t")), TASKS) === index;
  for (const t of trials) {
    const first = (from: number | undefined) =>
      from === undefined ? undefined : arrivals.find((a) => a.t >= from && a.lines.some((l) => owns(l, t.index)))?.t;
    t.outAfterRestartAt = first(t.restartAt);
    t.resumeAt = first(t.firstBatchAt);
  }
}

/** The kill a task_restarted event answers: same task, killed, not yet restarted, and a new pid. */
export function restartedTrial(trials: readonly KillTrial[], ev: { stage: number; index: number; pid: number }): KillTrial | undefined {
  return trials.find((x) => x.stage === ev.stage && x.index === ev.index && Number.isFinite(x.tKill) && x.restartAt === undefined && x.pid !== ev.pid);
}

/**
 * Kills a stage-`stage` task at each of `atS` after accepted (rotating over `candidates`) and
 * follows each kill to its task_restarted event and the restarted task's first logged batch.
 */
class Killer {
  readonly trials: KillTrial[] = [];
  private readonly timers: Timer[] = [];
  private readonly pending: Promise<void>[] = [];
  private job = "";
  private over = false;

  constructor(
    private readonly log: (line: string) => void,
    private readonly c: LocalCluster,
    private readonly rs: RainstormTestClient,
    private readonly label: string,
    private readonly stage: 0 | 1,
    private readonly candidates: readonly number[],
    private readonly atS: readonly number[],
  ) {}

  /** runJob's onEvent. */
  onEvent(ev: Record<string, any>, now: number): void {
    if (ev.event === "accepted") {
      this.job = ev.job;
      this.atS.forEach((at, i) =>
        this.timers.push(setTimeout(() => this.pending.push(this.kill(at, this.candidates[i % this.candidates.length]!)), at * 1000)),
      );
    } else if (ev.event === "task_restarted") {
      const t = restartedTrial(this.trials, ev as { stage: number; index: number; pid: number });
      if (t) {
        t.restartAt = now;
        t.newPid = ev.pid;
        t.newNode = ev.node;
        this.pending.push(pollFirstBatch(this.rs, this.c, this.job, t, () => this.over));
      }
    } else if (ev.event === "done" || ev.event === "failed") this.over = true;
  }

  /** After the job: no more kills, and every kill and first-batch poll has finished. */
  async finish(): Promise<void> {
    this.over = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.pending);
  }

  private async kill(at: number, index: number): Promise<void> {
    const { stage, label, rs, log } = this;
    const trial: KillTrial = { stage, index, atS: at, node: "", pid: 0, tKill: NaN };
    this.trials.push(trial);
    try {
      const t = (await rs.tasks()).find((x) => x.job === this.job && x.stage === stage && x.task === index);
      if (!t?.pid) throw new Error(`no running task stage${stage}[${index}] in list_tasks`);
      trial.node = t.node;
      trial.pid = t.pid;
      trial.tKill = performance.now();
      const res = await rs.killTask(t.node, t.pid);
      trial.status = res.status;
      if (!res.ok) trial.error = `kill_task: ${res.status} ${await res.text()}`;
      log(`${label}: killed stage${stage}[${index}] pid ${t.pid} on ${t.node} at ${at} s: ${res.status}`);
    } catch (err) {
      trial.error = (err as Error).message;
      log(`${label}: kill at ${at} s: ${trial.error}`);
    }
  }
}

/** One kill run: App 1 exactly-once over eo-kill.csv (`ref`), killing a stage-`stage` task at each of `atS`. */
export async function run(
  ctx: BenchCtx,
  c: LocalCluster,
  hydfs: HydfsTestClient,
  rs: RainstormTestClient,
  stage: 0 | 1,
  ref: Reference,
  atS: readonly number[],
): Promise<KillRun> {
  const { log } = ctx;
  const mismatch = (what: string) => ctx.problems.mismatch(what);
  // Stage 1 of App 1 is keyed by Asset Category: only the tasks that own a category get tuples.
  const candidates = killCandidates(stage, shares("eo-kill.csv", ref.lines, ref.app1Counts)[1]);
  const label = `EO kill run (stage ${stage})`;
  const dest = `eo-kill-s${stage}.txt`;
  const killer = new Killer(log, c, rs, label, stage, candidates, atS);
  log(
    `${label}: App 1 exactly_once=true at input_rate ${KILL_RATE} over ${int(ref.lines)} lines; kills of stage-${stage} tasks ${candidates.join("/")} at ${atS.join(", ")} s`,
  );
  const r = await runJob(ctx, c, rs, label, app1Args("eo-kill.csv", dest, KILL_RATE, true), true, (ev, now) => killer.onEvent(ev, now));
  await killer.finish();
  const { trials } = killer;
  outputTimes(stage, trials, r.arrivals);
  const checks = [
    checkApp1(mismatch, label, r.run, ref),
    checkIncreasing(mismatch, label, r.run.outputs),
    (await checkDest(mismatch, hydfs, label, dest, r.run.outputs)).check,
  ];
  const restarts = r.run.events.filter((e) => e.event === "task_restarted").length;
  const killed = trials.filter((t) => t.status === 200).length;
  if (restarts < killed) checks.push(mismatch(`${label}: ${killed} kills answered 200 but ${restarts} task_restarted events`));
  log(`${label}: done in ${r.run.done!.duration_ms} ms; ${restarts} restarts; ${checks.join("; ")}`);
  return {
    stage,
    job: r.run.done!.job,
    lines: r.run.done!.tuples_read,
    outputs: r.run.outputs.length,
    restarts,
    durationMs: r.run.done!.duration_ms,
    check: checks.join("; "),
    trials,
  };
}

/** Each answered kill's time from the kill to its output resuming (Infinity when it never did). */
export function resumeTimes(runs: readonly KillRun[]): number[] {
  const all = runs.flatMap((k) => k.trials);
  return all.map((t) => (t.resumeAt !== undefined ? t.resumeAt - t.tKill : Infinity)).filter((_, i) => all[i]!.status === 200);
}

/** "p50 / p99" of f over the answered kills (undefined f = Infinity). */
function p50p99(f: (t: KillTrial) => number | undefined, trials: readonly KillTrial[]): string {
  const xs = trials.filter((t) => t.status === 200).map((t) => f(t) ?? Infinity);
  return xs.length ? `${fmtMs(percentile(xs, 50), 0)} / ${fmtMs(percentile(xs, 99), 0)}` : "n/a";
}

/** Milliseconds from the kill to the moment `at` picks, if any. */
const since = (at: (t: KillTrial) => number | undefined) => (t: KillTrial) => {
  const a = at(t);
  return a === undefined ? undefined : a - t.tKill;
};

function trialsTable(runs: readonly KillRun[]): string {
  return mdTable(
    [
      "run",
      "kill at",
      "task",
      "node",
      "pid -> new pid",
      "kill_task",
      "kill -> task_restarted",
      "kill -> restarted task's first logged batch",
      "kill -> first output after restart",
      "**kill -> output resumed**",
    ],
    runs.flatMap((k) =>
      k.trials.map((t) => [
        `stage ${k.stage}`,
        `${t.atS} s`,
        `stage${t.stage}[${t.index}]`,
        t.node ? t.node.split(".").pop()! : "n/a",
        `${t.pid || "n/a"} -> ${t.newPid ?? "n/a"}${t.newNode && t.newNode !== t.node ? ` (on .${t.newNode.split(".").pop()})` : ""}`,
        t.error ? `**${t.error}**` : String(t.status),
        fmtMs(since((x) => x.restartAt)(t), 0),
        fmtMs(since((x) => x.firstBatchAt)(t), 0),
        fmtMs(since((x) => x.outAfterRestartAt)(t), 0),
        `**${fmtMs(since((x) => x.resumeAt)(t), 0)}**`,
      ]),
    ),
  );
}

function percentilesTable(runs: readonly KillRun[]): string {
  const allTrials = runs.flatMap((k) => k.trials);
  const row = (name: string, ts: KillTrial[]) => [
    name,
    String(ts.filter((t) => t.status === 200).length),
    p50p99(
      since((t) => t.restartAt),
      ts,
    ),
    p50p99(
      since((t) => t.firstBatchAt),
      ts,
    ),
    p50p99(
      since((t) => t.outAfterRestartAt),
      ts,
    ),
    `**${p50p99(
      since((t) => t.resumeAt),
      ts,
    )}**`,
  ];
  return mdTable(
    [
      "kills",
      "n",
      "p50 / p99 kill -> task_restarted",
      "p50 / p99 kill -> first logged batch",
      "p50 / p99 kill -> first output after restart",
      "**p50 / p99 kill -> output resumed**",
    ],
    [
      ...[1, 0].map((s) =>
        row(
          `stage ${s}`,
          allTrials.filter((t) => t.stage === s),
        ),
      ),
      row("all", allTrials),
    ],
  );
}

/** The Markdown of section 5b. */
export function report(r: KillResult): string {
  const out: string[] = [];
  out.push(`### 5b. Kill to resume: App 1, exactly_once=true, input_rate ${int(KILL_RATE)}`);
  out.push("");
  out.push(
    r.ref
      ? `Input: the first ${int(r.ref.lines)} lines of the generated file (~${r.killSeconds} s at ${int(KILL_RATE)} tuples/s; the source sends batches of ${Math.max(1, Math.min(DEFAULT_RAINSTORM.batch_size, Math.ceil(KILL_RATE / 20)))}). ` +
          `Two runs: one kills a stage-1 (aggregate) task at ${r.killAtS.join(", ")} s after \`accepted\`, rotating over the aggregate tasks that own >= 10% of the keyed tuples ` +
          "(App 1 has 4 categories: one of the 3 aggregate tasks owns none), the other a stage-0 (grep) task at the same moments, rotating over the 3; each kill is a kill_task of the pid list_tasks shows at that moment."
      : "No kill runs (the section failed before them).",
  );
  out.push("");
  out.push(trialsTable(r.runs));
  out.push("");
  out.push(percentilesTable(r.runs));
  out.push("");
  out.push(
    mdTable(
      ["run", "job", "lines in", "outputs", "task_restarted events", "job duration (paced: lines/rate)", "check"],
      r.runs.map((k) => [
        `stage ${k.stage}`,
        k.job,
        int(k.lines),
        int(k.outputs),
        String(k.restarts),
        `${fmtSec(k.durationMs)} (${fmtSec((k.lines / KILL_RATE) * 1000)})`,
        k.check,
      ]),
    ),
  );
  out.push("");
  out.push(
    "Times are measured at the submitter (this script) with performance.now(): the kill is the moment the kill_task request is sent to the leader. The worker sees its operator's exit at once " +
      "(it is its child), so kill time = detection time, and the target's 3 s counts from it. `task_restarted` = arrival of that event on the job's stream. `first logged batch` = the first poll " +
      "(every 20 ms) of the restarted task's worker (`/worker/tasks`) showing the new pid with batches > 0, i.e. it has restored its state from its log, processed fresh input and appended " +
      "that batch's record to HyDFS. `first output after restart` = the first output event at or after task_restarted whose key the killed task owns (stage 1; for stage 0 any output, since " +
      "App 1's outputs do not name their input line) - it can still be an output the old incarnation had logged and its worker forwarded. **Output resumed** = the first such output event at or " +
      "after the first logged batch: certainly downstream of the new incarnation (an upper bound by up to one poll). A kill with no restart or no resumption counts as infinite. " +
      "Nearest-rank percentiles: with fewer than 100 kills p99 is the maximum. Check: exactly one count update per matching line, final counts = reference, counts strictly increase, dest = outputs.",
  );
  out.push("");
  return out.join("\n");
}
