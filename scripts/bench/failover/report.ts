/**
 * The leader failover benchmark's report (pure): per measure the median, p90, min and max over the
 * runs, how many runs ended with dest exactly the reference, and every failed run with the command
 * that replays it. leader_failover.ts makes the runs.
 */
import { fmtSec, mdTable, median, percentile } from "../stats.ts";
import { KILL_FROM, KILL_TO } from "./plan.ts";

/** One leader kill: its seed, where it struck, and how long (ms after the kill) each step took. */
export interface FailoverRun {
  run: number;
  seed: number;
  job?: string;
  /** The kill point drawn from the seed (outputs streamed to the submitter), and the node killed. */
  killAtOutputs: number;
  killedNode: number;
  /** Outputs streamed when the kill came (a batch may carry the count past killAtOutputs). */
  streamedAtKill?: number;
  /** The node that took the job over. */
  newLeader?: number;
  /** Kill -> a small job submitted through another surviving node is accepted. */
  acceptedMs?: number;
  /** Kill -> a surviving node answers GET /leader with itself (self: true). */
  takeoverMs?: number;
  /** Kill -> dest (HyDFS) holds more lines than right after the kill. */
  resumedMs?: number;
  /** Kill -> the new leader's source reads the input again (its GET /jobs tuples_read grows). */
  sourceMs?: number;
  /** Kill -> the job's done event. */
  doneMs?: number;
  /**
   * Of doneMs, what the paced source still had to send at the kill (the unsent share of the input
   * at the job's rate): done - this is what the failover added to the job's duration.
   */
  restMs?: number;
  /** Whether dest is exactly the reference counts (countViolations empty). */
  exact: boolean;
  /** How dest differs from the reference (countViolations, up to 20), when it is not exact. */
  violations?: string[];
  /** Why the run failed (not exact, a step that never came); absent when it passed. */
  problem?: string;
}

/** What the report says about the whole benchmark besides the runs. */
export interface FailoverResult {
  atIso: string;
  host: string;
  nproc: number;
  cpuModel: string;
  bunVersion: string;
  subnet: string;
  seed: number;
  lines: number;
  ratePerS: number;
  expectedOutputs: number;
  /** 1-minute load average before and after the runs. */
  loadBefore: number;
  loadAfter: number;
  /** What else ran on the machine meanwhile (--note). */
  note?: string;
  runs: FailoverRun[];
}

/** The measures of the report's table, in order. */
export const MEASURES = [
  { key: "acceptedMs", label: "leader kill → a job accepted again (through another node)" },
  { key: "takeoverMs", label: "leader kill → a new leader leads (GET /leader self)" },
  { key: "resumedMs", label: "leader kill → output resumed (dest grows)" },
  { key: "sourceMs", label: "leader kill → the source reads the input again" },
  { key: "doneMs", label: "leader kill → job done" },
  { key: "delayMs", label: "job delayed by the failover (done − the input's remaining schedule)" },
] as const satisfies readonly { key: keyof FailoverRun | "delayMs"; label: string }[];

/** A run's measure; delayMs = doneMs - restMs, the time the failover added to the job. */
export function measureOf(run: FailoverRun, key: (typeof MEASURES)[number]["key"]): number | undefined {
  if (key !== "delayMs") return run[key];
  return run.doneMs === undefined || run.restMs === undefined ? undefined : run.doneMs - run.restMs;
}

/** The paced source's remaining schedule (ms) once `killAtOutputs` of `expectedOutputs` have streamed. */
export function restOfSchedule(killAtOutputs: number, expectedOutputs: number, lines: number, ratePerS: number): number {
  const unsent = Math.max(0, 1 - killAtOutputs / expectedOutputs) * lines;
  return Math.round((unsent / ratePerS) * 1000);
}

export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** Median, p90 (nearest rank), min and max of the values that are defined; undefined when none is. */
export function summarize(values: readonly (number | undefined)[]): Summary | undefined {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (xs.length === 0) return undefined;
  return { n: xs.length, median: median(xs)!, p90: percentile(xs, 90)!, min: Math.min(...xs), max: Math.max(...xs) };
}

/** The command that replays one run alone. */
export function replayCommand(run: Pick<FailoverRun, "seed">, lines: number): string {
  return `bun scripts/bench/leader_failover.ts --seed ${run.seed} --runs 1 --lines ${lines}`;
}

/** The runs that failed, one line each, with how to replay them. */
export function failureLines(r: Pick<FailoverResult, "runs" | "lines">): string[] {
  return r.runs.filter((x) => x.problem !== undefined).map((x) => `run ${x.run} (seed ${x.seed}): ${x.problem}; replay with ${replayCommand(x, r.lines)}`);
}

/** The Markdown report. */
export function report(r: FailoverResult): string {
  const exact = r.runs.filter((x) => x.exact).length;
  const rows = MEASURES.map(({ key, label }) => {
    const s = summarize(r.runs.map((x) => measureOf(x, key)));
    return [label, s ? `${s.n}/${r.runs.length}` : `0/${r.runs.length}`, fmtSec(s?.median), fmtSec(s?.p90), fmtSec(s?.min), fmtSec(s?.max)];
  });
  const failures = failureLines(r);
  return [
    `# Leader failover: SIGKILL of the leader mid-job, exactly-once App 1 (${r.runs.length} runs)`,
    "",
    `${r.atIso} on ${r.host}: nproc=${r.nproc} (${r.cpuModel}), Bun ${r.bunVersion}. One 5-node local cluster (${r.subnet}.1-5, dist/bin ` +
      `executables, default settings); each run submits App 1 exactly-once (3 tasks per stage) over ${r.lines.toLocaleString("en-US")} generated ` +
      `lines paced at ${r.ratePerS} tuples/s (${r.expectedOutputs.toLocaleString("en-US")} outputs expected) to the leader, SIGKILLs every daemon ` +
      `of the leader's node once ${KILL_FROM * 100}-${KILL_TO * 100} % of the outputs have streamed (drawn from the run's seed), measures ` +
      `from the kill, then restarts the node before the next run. Seed ${r.seed} (run i: seed ${r.seed} + i).`,
    "",
    `Load average (1 min): ${r.loadBefore.toFixed(2)} before, ${r.loadAfter.toFixed(2)} after.${r.note ? ` Meanwhile: ${r.note}` : ""}`,
    "",
    mdTable(["measure", "runs", "median", "p90", "min", "max"], rows),
    "",
    `Dest exactly the reference counts: **${exact}/${r.runs.length}** runs.`,
    "",
    "- accepted again: a 1-stage job submitted to the leader a surviving non-leader node names (GET /leader), until one answers 200;",
    "- a new leader leads: a surviving node's own GET /leader says `self: true`;",
    "- output resumed: dest (HyDFS, read through a survivor) holds more lines than right after the kill;",
    "- the source reads again: the new leader's GET /jobs `tuples_read` of the job grows past the first value it shows;",
    "- done: the job's `done` event, watched on the new leader; delayed: done less the time the paced source still needed for the " +
      "input not yet sent at the kill (outputs are spread evenly over the input).",
    ...(failures.length > 0 ? ["", "Failed runs:", "", ...failures.map((f) => `- ${f}`)] : []),
    "",
  ].join("\n");
}
