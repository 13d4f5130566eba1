/**
 * Who leads RainStorm, and under which term: pure rules, no I/O.
 *
 * **The rule.** The leader is the oldest live member that may lead: among the members this node's
 * memberd lists alive or suspect that advertise a rainstorm port and whose host is a candidate
 * (`rainstorm.leader` if set, the only one; else `rainstorm.leader_candidates`, empty = every
 * node), the one with the smallest boot time (the `@<bootMs>` of its member id), ties by host. A
 * suspect still leads (failing over on every suspicion would churn); a failed or departed one
 * does not. A node that restarts rejoins under a new, later boot time, so it does not take the
 * lead back from the node that took over: leadership changes only when the leader goes.
 *
 * **Terms.** Two nodes may briefly both believe they lead (their views differ during failure
 * detection, or a leader paused past it wakes up). Each leadership is a term, a number that only
 * grows, claimed in HyDFS by exclusively creating `rainstorm/leader/term-<n>` (HyDFS create is a
 * compare-and-set: one creator wins). Terms are claimed in order, so the names that exist are
 * always term-1..term-N; the next claim is N+1. Every command a leader sends carries its term,
 * and a worker that has seen a higher term refuses it (worker.ts fence), so a stale leader can
 * neither start tasks nor change routes; it steps down when it sees term N+1 exist.
 */
import type { WatchedMember } from "../member/watch.ts";
import { memberHost } from "../member/state.ts";

/** What a worker's refusal of a stale leader's call says (worker.ts fence); the leader steps down on it. */
export const STALE_TERM = "stale leader term";

/** Whether an error is a worker's refusal of this leader's term. */
export function isStaleTerm(err: unknown): boolean {
  return String((err as Error)?.message ?? err).includes(STALE_TERM);
}

/** Where a term's claim lives in HyDFS (its content: the claimant's "host:port"). */
export function termFileName(term: number): string {
  return `rainstorm/leader/term-${term}`;
}

/** The boot time in a member id `host:port@bootMs` (0 when the id has none). */
export function bootMsOf(id: string): number {
  const at = id.lastIndexOf("@");
  const ms = at < 0 ? NaN : Number(id.slice(at + 1));
  return Number.isFinite(ms) ? ms : 0;
}

/**
 * The candidate hosts: `leader` alone when set, else `candidates` (comma-separated; "" = every
 * node, returned as undefined).
 */
export function candidateHosts(settings: { leader: string; leader_candidates: string }): Set<string> | undefined {
  if (settings.leader) return new Set([settings.leader]);
  const list = settings.leader_candidates
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");
  return list.length > 0 ? new Set(list) : undefined;
}

/** The leader by the rule above, as "host:port" of its rainstormd; undefined when no live member may lead. */
export function electLeader(live: readonly WatchedMember[], candidates: ReadonlySet<string> | undefined): string | undefined {
  let best: { host: string; port: number; bootMs: number } | undefined;
  for (const m of live) {
    if (m.state !== "alive" && m.state !== "suspect") continue;
    const port = m.ports?.rainstorm;
    if (!port) continue;
    const host = memberHost(m.id);
    if (candidates && !candidates.has(host)) continue;
    const bootMs = bootMsOf(m.id);
    if (!best || bootMs < best.bootMs || (bootMs === best.bootMs && host < best.host)) best = { host, port, bootMs };
  }
  return best ? `${best.host}:${best.port}` : undefined;
}

/**
 * The highest claimed term, found with O(log N) existence checks: claims are made in order, so
 * term-1..term-N exist and term-(N+1) does not. `exists(n)` says whether term n was claimed.
 */
export async function highestTerm(exists: (term: number) => Promise<boolean>, hint = 0): Promise<number> {
  // Known to exist: lo (0 means none); known not to exist: hi.
  let lo = hint > 0 && (await exists(hint)) ? hint : 0;
  let step = 1;
  let hi = lo + step;
  while (await exists(hi)) {
    lo = hi;
    step *= 2;
    hi = lo + step;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await exists(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
