/**
 * A worker's two guards, as pure decisions (time passed in, nothing else read); worker_upkeep.ts samples
 * and acts on them.
 *
 * Hung operators (rainstorm.operator_timeout_ms): an operator that has inputs pending and has
 * answered nothing for the timeout is killed, and its task restarts as after a crash. Progress is
 * sampled (pending inputs and the count of answers so far), so the silence measured runs from the
 * last sample that saw an answer or nothing pending: it never exceeds the real silence, and an
 * operator is never killed early, only up to one sample late.
 *
 * Orphans (rainstorm.orphan_timeout_ms): every few seconds the worker asks the leader which jobs
 * it runs. A job of tasks here that the leader reports ended is stopped; one that no leader has
 * reported running for the timeout (the leader is gone or unreachable, or does not know the job)
 * is stopped too. So an operator never outlives its job's leader by more than the timeout plus
 * one check.
 */

// ---- hung operators ----------------------------------------------------------------------------

/** An operator's progress at one sample: inputs written to it and not yet answered, answers (done) so far. */
export interface OperatorProgress {
  pending: number;
  answered: number;
}

/** What a worker keeps of an operator between samples. */
export interface AnswerWatch {
  /** `answered` at the last sample. */
  answered: number;
  /** Since when the operator's silence counts: the last sample that saw an answer, or nothing pending. */
  silentSinceMs: number;
  /** When the last sample was taken. */
  sampledMs: number;
}

/**
 * Fold one progress sample in. The silence starts over when the operator answered since the last
 * sample, had nothing pending, or when samples were `maxGapMs` apart or more (this process was
 * paused: a long GC, SIGSTOP; its operators' answers may still wait unread in the pipes).
 */
export function watchAnswers(prev: AnswerWatch | undefined, now: OperatorProgress, nowMs: number, maxGapMs: number): AnswerWatch {
  const restart = !prev || now.answered !== prev.answered || now.pending === 0 || nowMs - prev.sampledMs >= maxGapMs;
  return { answered: now.answered, silentSinceMs: restart ? nowMs : prev.silentSinceMs, sampledMs: nowMs };
}

/** Why an operator is hung (the text of its death report), or undefined while it is not; timeoutMs 0 = never. */
export function hungReason(pending: number, silentSinceMs: number, nowMs: number, timeoutMs: number): string | undefined {
  if (timeoutMs <= 0 || pending === 0) return undefined;
  const silentMs = Math.round(nowMs - silentSinceMs);
  return silentMs >= timeoutMs ? `operator answered nothing for ${silentMs} ms with ${pending} inputs pending` : undefined;
}

// ---- orphans -----------------------------------------------------------------------------------

/** How often a worker asks the leader about the jobs it runs tasks of. */
export const ORPHAN_CHECK_MS = 2000;
/** Deadline of that question (GET /jobs). */
export const LEADER_QUERY_TIMEOUT_MS = 2000;
/**
 * A job the leader reports ended is stopped here only once it has been seen ended for this long:
 * the leader's own stop (end of stream first, for a finished job) normally arrives within it.
 */
export const ENDED_GRACE_MS = 2000;

/** The leader's answer to one check: each job it knows with its status, or why there was no answer. */
export type LeaderAnswer = { reached: true; status: ReadonlyMap<string, string> } | { reached: false; error: string };

/** What a worker keeps of one job it runs tasks of. */
export interface Claim {
  /** When a leader last reported the job running (first: when the worker first saw the job's tasks). */
  claimedMs: number;
  /** Since when the leader has reported it ended (undefined while it is running). */
  endedSinceMs?: number;
}

export interface OrphanRule {
  /** rainstorm.orphan_timeout_ms (0 = never stop an unclaimed job). */
  orphanTimeoutMs: number;
  endedGraceMs: number;
  /** "host:port" of the leader asked (for the reason). */
  leader: string;
}

/** One job at one check: its claim after the leader's answer, and why to stop its tasks here (undefined: keep them). */
export function judgeJob(job: string, prev: Claim | undefined, answer: LeaderAnswer, nowMs: number, rule: OrphanRule): { claim: Claim; stop?: string } {
  const status = answer.reached ? answer.status.get(job) : undefined;
  if (status === "running") return { claim: { claimedMs: nowMs } };
  const claimedMs = prev?.claimedMs ?? nowMs;
  if (status !== undefined) {
    const endedSinceMs = prev?.endedSinceMs ?? nowMs;
    const claim = { claimedMs, endedSinceMs };
    return nowMs - endedSinceMs >= rule.endedGraceMs ? { claim, stop: `the leader at ${rule.leader} reports the job ${status}` } : { claim };
  }
  const claim = { claimedMs };
  const unclaimedMs = Math.round(nowMs - claimedMs);
  if (rule.orphanTimeoutMs <= 0 || unclaimedMs < rule.orphanTimeoutMs) return { claim };
  const why = answer.reached ? `the leader at ${rule.leader} does not know it` : `the leader at ${rule.leader} is unreachable (${answer.error})`;
  return { claim, stop: `no leader has claimed the job for ${unclaimedMs} ms: ${why}` };
}
