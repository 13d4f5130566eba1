/**
 * Following a job's events until it ends, across leader failovers: how ctl tells each event
 * (results to stdout, news to stderr, --json: every event as a line), and what it does when the
 * leader's stream breaks (the connection reset or refused, the stream ending before a final
 * event, or a stream gone quiet while another node leads): find the leader again (leader.ts
 * askLeader), reattach with GET /jobs/:job/events, say
 * so on stderr, and go on printing. The reattached stream replays the job's recent events; the
 * ReplayFilter (replay_filter.ts) drops those already printed, so no result line is printed twice
 * and none is lost. `ctl rainstorm` and `ctl watch_job` both follow through here.
 */
import { whyFailed } from "../shared/http.ts";
import type { JobEvent } from "../rainstorm/model.ts";
import type { Ctx } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";
import { askLeader, knownNodes, leaderNamedNow, NoLeaderFound } from "./leader.ts";
import { leaderQuery, rainstormd, streamClient } from "./rainstormd.ts";
import { ReplayFilter } from "./replay_filter.ts";

/**
 * How long ctl looks for a leader that takes the job after its leader is lost, before it gives
 * up (exit 1). It must outlast failure detection plus the new leader's rebuilding of its jobs (a
 * few seconds each); longer keeps a person waiting on a cluster that has really lost its leader.
 */
export const FAILOVER_TIMEOUT_MS = 60_000;

/** Between two reattach attempts (no leader yet, or it is still rebuilding: 503, 404). */
export const REATTACH_PAUSE_MS = 500;

/**
 * A stream without an event for this long makes ctl ask who leads (one GET /leader round): a
 * leader paused past failure detection (SIGSTOP) keeps its connection open and says nothing while
 * another leads the job. Failure detection itself takes seconds, so asking more often would not
 * find the new leader much sooner; a quiet job costs one round per period.
 */
export const QUIET_CHECK_MS = 5000;

/** Where a followed job is printed: `out` is stdout (one line per call), `err` stderr. */
export interface FollowIo {
  out(line: string): void;
  err(line: string): void;
}

/** The process's stdout and stderr. */
export const PROCESS_IO: FollowIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export interface FollowOptions {
  io?: FollowIo;
  /** Default FAILOVER_TIMEOUT_MS (tests give less). */
  failoverTimeoutMs?: number;
  /** Default QUIET_CHECK_MS (tests give less). */
  quietCheckMs?: number;
}

/** How ctl tells one job event: result lines go to stdout, news to stderr; `error` is why the job did not complete. */
export function eventText(ev: JobEvent): { stdout?: string; stderr?: string; error?: string } {
  switch (ev.event) {
    case "output":
      return { stdout: ev.lines.join("\n") };
    case "accepted":
      return { stderr: `job ${ev.job} accepted: ${ev.tasks.length} tasks on ${[...new Set(ev.tasks.map((t) => t.node))].join(", ")}` };
    case "task_restarted":
      return { stderr: `task stage${ev.stage}[${ev.index}] restarted on ${ev.node} as pid ${ev.pid} (${ev.reason})` };
    case "scaled":
      return { stderr: `autoscale: stage${ev.stage}: ${ev.reason}` };
    case "done":
      return {
        stderr: `job ${ev.job} done: ${ev.tuples_read} tuples read, ${ev.tuples_out} out, ${(ev.duration_ms / 1000).toFixed(1)} s, ${ev.tuples_per_s} tuples/s; results in HyDFS ${ev.dest}`,
      };
    case "failed":
      return { error: `job ${ev.job} failed: ${ev.error}` };
    case "cancelled":
      return {
        error: `job ${ev.job} cancelled by kill_job after ${ev.tuples_read} tuples read, ${ev.tuples_out} out; HyDFS ${ev.dest} keeps the ${ev.tuples_out} results written before (not removed)`,
      };
    case "watching": {
      const j = ev.summary;
      return {
        stderr: `watching job ${j.job}: ${j.status}, ${j.stages.join(" | ")}, ${j.tuples_read} tuples read, ${j.tuples_out} out, ${j.tuples_per_s} tuples/s; its last ${ev.replayed} events follow${j.status === "running" ? ", then the live ones" : " (it has ended)"}`,
      };
    }
    case "dropped":
      return { stderr: `note: ${ev.events} events dropped here (this watch read more slowly than the job went)` };
  }
}

/** A stream of a job's events, the leader that sends it (and its term, when a node named it), and how to drop it. */
export interface Attached {
  host: string;
  term?: number;
  events: AsyncIterable<JobEvent>;
  /** Close the stream's connection (rainstormd.ts streamClient); absent: it cannot be dropped. */
  drop?: () => void;
}

/** How one stream ended: with the job (`failure` unless done), or broken off (`why`). */
type StreamEnd = { final: true; failure?: string } | { final: false; why: string; job?: string };

/** Whether the leader `named` now takes over from the one ctl is `attached` to: another node, in a newer term when both are known. */
export function supersedes(named: { host: string; term?: number }, attached: { host: string; term?: number }): boolean {
  return named.host !== attached.host && (named.term === undefined || attached.term === undefined || named.term > attached.term);
}

/** `promise`, or QUIET if it has not settled within `ms`. */
const QUIET = Symbol("quiet");
async function orQuiet<T>(promise: Promise<T>, ms: number): Promise<T | typeof QUIET> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<typeof QUIET>((resolve) => (timer = setTimeout(() => resolve(QUIET), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Print a job's events as they come (--json: one JSON line each) through `filter`; a reattached
 * stream's `watching` is not printed (the line saying ctl follows the job stands for it). After
 * `quietMs` without an event, ask who leads: a leader paused past failure detection keeps its
 * connection open and says nothing, while another leads the job; then drop this stream.
 */
async function printStream(ctx: Ctx, io: FollowIo, stream: Attached, filter: ReplayFilter, reattached: boolean, quietMs: number): Promise<StreamEnd> {
  let job: string | undefined;
  const events = stream.events[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = events.next();
      let got = await orQuiet(next, quietMs);
      while (got === QUIET) {
        const named = await leaderNamedNow(ctx);
        if (named !== undefined && supersedes(named, stream)) {
          next.catch(() => undefined); // the dropped stream's read fails: nobody waits for it
          stream.drop?.();
          return { final: false, why: `no event for ${quietMs / 1000} s, and ${named.host} leads now`, job };
        }
        got = await orQuiet(next, quietMs);
      }
      if (got.done) return { final: false, why: "its stream ended before the job did", job };
      const ev = got.value;
      if (ev.event === "accepted") job = ev.job;
      if ((reattached && ev.event === "watching") || !filter.admit(ev)) continue;
      const text = eventText(ev);
      if (ctx.json) io.out(JSON.stringify(ev));
      else if (text.stdout !== undefined) io.out(text.stdout);
      else if (text.stderr !== undefined) io.err(text.stderr);
      if (ev.event === "done") return { final: true };
      if (text.error !== undefined) return { final: true, failure: text.error };
    }
  } catch (err) {
    // A reset connection, or a line cut in the middle (not JSON): the stream is broken either way.
    stream.drop?.();
    return { final: false, why: whyFailed(err), job };
  }
}

/** A refusal worth waiting out while a failover settles: not the leader (421), rebuilding (503, 5xx), job not known yet (404). */
function settling(err: unknown): boolean {
  if (err instanceof CtlHttpError) return err.status === 421 || err.status === 404 || err.status >= 500;
  return err instanceof CtlError && !(err instanceof NoLeaderFound);
}

/**
 * After `lost` broke off: find the leader and reattach to `job` there, until one answers or the
 * failover deadline passes (then a CtlError saying what was lost, why, and what was tried last).
 */
async function reattach(ctx: Ctx, job: string, lost: string, why: string, failoverTimeoutMs: number): Promise<Attached> {
  const deadlineMs = performance.now() + failoverTimeoutMs;
  const gaveUp = (last: string) =>
    new CtlError(`job ${job}: leader ${rainstormd(ctx, lost)} lost (${why}) and no leader took the job within ${failoverTimeoutMs / 1000} s; last: ${last}`);
  for (;;) {
    try {
      const leader = await askLeader(ctx, deadlineMs);
      const acceptWithinMs = Math.max(1, Math.min(ctx.timeoutMs, deadlineMs - performance.now()));
      const { rs, drop } = streamClient(ctx);
      const stream = await leaderQuery(ctx, leader.host, (addr) => rs.watchJob(addr, job, { acceptWithinMs }));
      return { ...leader, events: stream.events, drop };
    } catch (err) {
      if (err instanceof NoLeaderFound) throw gaveUp(err.message);
      if (!settling(err)) throw err;
      const leftMs = deadlineMs - performance.now();
      if (leftMs <= 0) throw gaveUp((err as Error).message);
      await Bun.sleep(Math.min(REATTACH_PAUSE_MS, leftMs));
    }
  }
}

/**
 * Follow `job` from `first` until it ends, reattaching at the leader after each break (a line on
 * stderr says so). Resolves with why the job did not complete (failed, cancelled, or no leader
 * took it back in time), undefined once done. `job` may be unknown at first (a submission whose
 * answer had no job id): the `accepted` event names it.
 */
export async function followJob(ctx: Ctx, job: string | undefined, first: Attached, opts: FollowOptions = {}): Promise<string | undefined> {
  const io = opts.io ?? PROCESS_IO;
  const filter = new ReplayFilter();
  // Learn the cluster's members now, while the leader's node still answers: after it is lost
  // they are the nodes to ask who leads (leader.ts knownNodes keeps them).
  const learning = knownNodes(ctx);
  let attached = first;
  for (let reattached = false; ; reattached = true) {
    const end = await printStream(ctx, io, attached, filter, reattached, opts.quietCheckMs ?? QUIET_CHECK_MS);
    if (end.final) return end.failure;
    job ??= end.job;
    if (job === undefined) return `the leader's stream ended before the job was accepted (${end.why})`;
    await learning;
    try {
      const next = await reattach(ctx, job, attached.host, end.why, opts.failoverTimeoutMs ?? FAILOVER_TIMEOUT_MS);
      io.err(`leader ${rainstormd(ctx, attached.host)} lost; following job ${job} on ${rainstormd(ctx, next.host)}${next.term === undefined ? "" : ` (term ${next.term})`}`);
      attached = next;
    } catch (err) {
      if (err instanceof CtlError) return err.message;
      throw err;
    }
  }
}
