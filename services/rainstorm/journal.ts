/**
 * The durable state of each job, so that a new leader can take over its running jobs (issue 14):
 * an append-only journal per job in HyDFS, one JSON line per record, plus one index of every job
 * ever submitted. Pure: encode, decode and fold; the leader's driver does the appends (leader.ts)
 * and the reads (takeover.ts).
 *
 * What is journaled is what a successor cannot learn from the workers: the job's spec, its
 * placement and route version (every change, before the change is sent), the source's
 * acknowledged position (every SOURCE_JOURNAL_MS while it moves) and how the job ended. Which
 * tasks still run, and their pids, the successor asks the workers; exactly-once task state is in
 * the tasks' own logs; dest is written by the last stage's tasks.
 *
 * Every record carries the term of the leader that wrote it. A leader paused past failure
 * detection may still append after its successor took over: `foldJournal` ignores a record whose
 * term is lower than one already folded, so a stale leader cannot rewrite a job's state.
 */
import type { AutoscaleConfig } from "./autoscale.ts";
import type { JobStatus } from "./job_events.ts";
import type { JobSpec } from "./plan.ts";

/** The placement part of routes: which worker runs each task, and the version of that list. */
export interface JournalRoutes {
  version: number;
  stages: string[][];
}

export type JournalRecord =
  | { k: "submit"; term: number; job: string; spec: JobSpec; autoscale?: AutoscaleConfig; startedWallMs: number; routes: JournalRoutes }
  | { k: "routes"; term: number; routes: JournalRoutes }
  /** The source has every line up to `pos` acknowledged end to end: a successor resumes after it. */
  | { k: "source"; term: number; pos: number }
  | { k: "end"; term: number; status: Exclude<JobStatus, "running">; tuplesRead: number; tuplesOut: number; durationMs?: number; error?: string };

/** What a journal says of its job. */
export interface JournaledJob {
  job: string;
  spec: JobSpec;
  autoscale?: AutoscaleConfig;
  startedWallMs: number;
  routes: JournalRoutes;
  /** Source lines acknowledged end to end. */
  pos: number;
  status: JobStatus;
  /** An ended job's counts, duration and (failed) error, from its end record. */
  tuplesRead?: number;
  tuplesOut?: number;
  durationMs?: number;
  error?: string;
  /** The highest term among the folded records. */
  term: number;
}

/** Where a job's journal lives in HyDFS. */
export function journalName(job: string): string {
  return `rainstorm/jobs/${job}.journal`;
}

/** The index of every job submitted: one `{"job": id, "term": n}` line each. */
export const JOB_INDEX_NAME = "rainstorm/jobs/index";

export function encodeRecord(r: JournalRecord): string {
  return `${JSON.stringify(r)}\n`;
}

export function encodeIndexEntry(job: string, term: number): string {
  return `${JSON.stringify({ job, term })}\n`;
}

/** The job ids of the index, each once, in the order first listed. Bad lines are skipped (named in `problems`). */
export function parseIndex(text: string): { jobs: string[]; problems: string[] } {
  const jobs = new Set<string>();
  const problems: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line) return;
    try {
      const e = JSON.parse(line) as { job?: unknown };
      if (typeof e.job !== "string") throw new Error('expected {"job": "<id>", "term": <n>}');
      jobs.add(e.job);
    } catch (err) {
      problems.push(`index line ${i + 1}: ${(err as Error).message}`);
    }
  });
  return { jobs: [...jobs], problems };
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isStages = (v: unknown): v is string[][] => Array.isArray(v) && v.every((s) => Array.isArray(s) && s.every((a) => typeof a === "string"));

function checkRoutes(v: unknown): JournalRoutes {
  const r = v as JournalRoutes | undefined;
  if (!r || !isCount(r.version) || !isStages(r.stages)) throw new Error("routes: expected {version: <n>, stages: [[host:port, ...], ...]}");
  return { version: r.version, stages: r.stages };
}

/** One journal line as a record; throws naming what is wrong. */
export function decodeRecord(line: string): JournalRecord {
  const r = JSON.parse(line) as Record<string, unknown>;
  if (!isCount(r.term)) throw new Error(`term: expected a non-negative integer, got ${JSON.stringify(r.term)}`);
  switch (r.k) {
    case "submit": {
      const spec = r.spec as JobSpec | undefined;
      if (typeof r.job !== "string" || !spec || !Array.isArray(spec.stages) || typeof spec.src !== "string" || typeof spec.dest !== "string")
        throw new Error("submit: expected job, spec (stages, src, dest), startedWallMs and routes");
      if (!isCount(r.startedWallMs)) throw new Error("submit: startedWallMs: expected a non-negative integer");
      return {
        k: "submit",
        term: r.term,
        job: r.job,
        spec,
        ...(r.autoscale ? { autoscale: r.autoscale as AutoscaleConfig } : {}),
        startedWallMs: r.startedWallMs,
        routes: checkRoutes(r.routes),
      };
    }
    case "routes":
      return { k: "routes", term: r.term, routes: checkRoutes(r.routes) };
    case "source":
      if (!isCount(r.pos)) throw new Error(`source: pos: expected a non-negative integer, got ${JSON.stringify(r.pos)}`);
      return { k: "source", term: r.term, pos: r.pos };
    case "end":
      if (r.status !== "done" && r.status !== "failed" && r.status !== "cancelled")
        throw new Error(`end: status: expected done, failed or cancelled, got ${JSON.stringify(r.status)}`);
      return {
        k: "end",
        term: r.term,
        status: r.status,
        tuplesRead: isCount(r.tuplesRead) ? r.tuplesRead : 0,
        tuplesOut: isCount(r.tuplesOut) ? r.tuplesOut : 0,
        ...(isCount(r.durationMs) ? { durationMs: r.durationMs } : {}),
        ...(typeof r.error === "string" ? { error: r.error.slice(0, 4096) } : {}),
      };
    default:
      throw new Error(`k: expected submit, routes, source or end, got ${JSON.stringify(r.k)}`);
  }
}

/**
 * Fold a journal's text into its job's state. Records of a term lower than one already folded are
 * ignored (a stale leader's late appends); a journal without a submit record says nothing
 * (undefined). A line that does not decode throws, naming its number: HyDFS appends are whole,
 * so a bad line is corruption, not a torn write.
 */
export function foldJournal(text: string): JournaledJob | undefined {
  let job: JournaledJob | undefined;
  let term = 0;
  text.split("\n").forEach((line, i) => {
    if (!line) return;
    let r: JournalRecord;
    try {
      r = decodeRecord(line);
    } catch (err) {
      throw new Error(`journal line ${i + 1}: ${(err as Error).message}`);
    }
    if (r.term < term) return;
    term = r.term;
    if (r.k === "submit") {
      job ??= {
        job: r.job,
        spec: r.spec,
        startedWallMs: r.startedWallMs,
        routes: r.routes,
        pos: 0,
        status: "running",
        term,
        ...(r.autoscale ? { autoscale: r.autoscale } : {}),
      };
      return;
    }
    if (!job) return;
    job.term = term;
    if (r.k === "routes" && r.routes.version >= job.routes.version) job.routes = r.routes;
    else if (r.k === "source") job.pos = Math.max(job.pos, r.pos);
    else if (r.k === "end")
      Object.assign(job, { status: r.status, tuplesRead: r.tuplesRead, tuplesOut: r.tuplesOut, durationMs: r.durationMs, error: r.error });
  });
  return job;
}
