/**
 * The leader seat of one rainstormd: whether this node leads RainStorm now, and the Leader when it
 * does. Every rainstormd has one. On every membership change it applies the rule of election.ts;
 * the node it elects claims the next term in HyDFS, fences every worker with it, takes over the
 * running jobs from their journals (leader.ts recover) and only then answers leader calls.
 * It steps down when membership elects another node, when a worker refuses its term, or when it
 * sees a higher term claimed (checked every TERM_CHECK_MS): whichever comes first.
 */
import type { WatchedMember } from "../member/watch.ts";
import type { Clock } from "./clock.ts";
import { realClock } from "./clock.ts";
import { candidateHosts, electLeader, highestTerm, termFileName } from "./election.ts";
import type { JobFiles } from "./job_files.ts";
import { Leader, type LeaderOptions } from "./leader.ts";
import { readJournals } from "./takeover.ts";

/** How often a leader checks that no higher term has been claimed (a stale leader steps down within this). */
export const TERM_CHECK_MS = 1000;
/**
 * A leader call that reaches a node which is about to lead (elected and claiming, or not yet
 * elected anyone: its view is new) waits this long for it before it is answered 503: a cluster
 * that just started, or a failover under way, takes jobs without the caller retrying.
 */
export const LEADER_WAIT_MS = 5000;
const LEADER_POLL_MS = 20;

/** A failed claim (HyDFS unreachable, or another node won it) is tried again this much later while this node is elected. */
export const CLAIM_RETRY_MS = 500;

/** Claim the next term: exclusively create term-(N+1) naming this node; another claimant's win means the next one. */
export async function claimTerm(files: JobFiles, selfAddr: string, hint: number): Promise<number> {
  const n = (await highestTerm((t) => files.exists(termFileName(t)), hint)) + 1;
  await files.writer(termFileName(n), `leader-${selfAddr}-term${n}`).write("create", `${selfAddr}\n`);
  return n;
}

export interface SeatOptions extends Omit<LeaderOptions, "term" | "onStale" | "files"> {
  files: JobFiles;
}

export class LeaderSeat {
  private live: WatchedMember[] = [];
  private viewReady = false;
  private leader: Leader | undefined;
  private claiming = false;
  /**
   * Elected, but no term claimed yet: there was no running job to take over, so the claim (a file
   * in HyDFS) waits for the first call that needs a leader (leading()). A cluster that never runs
   * a job writes nothing to HyDFS.
   */
  private standby = false;
  private electedAddr: string | undefined;
  /** The highest term this node knows of (its own claims, and what called its worker). */
  private highestKnown = 0;
  private stopped = false;
  private readonly candidates: Set<string> | undefined;
  private readonly clock: Clock;
  private readonly checkTimer: { cancel(): void };

  constructor(private readonly opts: SeatOptions) {
    this.candidates = candidateHosts(opts.cfg.rainstorm);
    this.clock = opts.clock ?? realClock;
    let timer: { cancel(): void } | undefined;
    const check = () => {
      timer = this.clock.after(TERM_CHECK_MS, () => void this.checkTerm().finally(() => !this.stopped && check()));
    };
    check();
    this.checkTimer = { cancel: () => timer?.cancel() };
  }

  get selfAddr(): string {
    return `${this.opts.cfg.host}:${this.opts.cfg.ports.rainstorm}`;
  }

  /** This node's Leader, when it leads and has taken over (undefined otherwise). */
  current(): Leader | undefined {
    return this.leader && !this.leader.isStopped ? this.leader : undefined;
  }

  /**
   * This node's Leader, waiting up to `timeoutMs` while it is becoming one (elected: claiming
   * its term, or in standby and claiming now); undefined when another node leads, none is
   * elected here, or time is up.
   */
  async leading(timeoutMs = LEADER_WAIT_MS): Promise<Leader | undefined> {
    const deadline = this.clock.nowMs() + timeoutMs;
    for (;;) {
      const leader = this.current();
      if (leader) return leader;
      const mayLead = this.claiming || this.electedAddr === this.selfAddr;
      if (!mayLead || this.stopped || this.clock.nowMs() >= deadline) return undefined;
      // Elected with nothing to take over: the term is claimed now, for the call that needs a leader.
      if (this.standby && !this.claiming) void this.takeLead(true);
      await this.clock.sleep(LEADER_POLL_MS);
    }
  }

  isViewReady(): boolean {
    return this.viewReady;
  }

  leadsHere(): boolean {
    return this.current() !== undefined || (!this.stopped && this.electedAddr === this.selfAddr);
  }

  /** Whether this node is elected and still claiming its term or taking the jobs over. */
  isTakingOver(): boolean {
    return this.claiming;
  }

  /** The leader this node's view elects ("host:port"), if any. */
  elected(): string | undefined {
    return this.electedAddr;
  }

  knownTerm(): number {
    return Math.max(this.highestKnown, this.opts.worker.knownTerm());
  }

  onMembers(live: WatchedMember[]): void {
    this.live = live;
    this.leader?.onMembers(live);
    this.reconsider();
  }

  setViewReady(ready: boolean): void {
    this.viewReady = ready;
    this.leader?.setViewReady(ready);
    this.reconsider();
  }

  /** A leader of `term` called this node's worker: if this node leads under a lower term, it is stale. */
  onWorkerTerm(term: number): void {
    this.highestKnown = Math.max(this.highestKnown, term);
    if (this.leader && term > this.leader.term) this.stepDown(`the leader of term ${term} called this node's worker`);
  }

  stop(): void {
    this.stopped = true;
    this.checkTimer.cancel();
    this.leader?.stop();
    this.leader = undefined;
  }

  private reconsider(): void {
    // Until this node's view is current it may not even see the leader: keep what it has.
    if (!this.viewReady || this.stopped) return;
    const elected = electLeader(this.live, this.candidates);
    if (elected !== this.electedAddr)
      this.opts.log.info(`membership elects ${elected ?? "no node"} as the RainStorm leader (was ${this.electedAddr ?? "none"})`);
    this.electedAddr = elected;
    if (this.electedAddr === this.selfAddr) {
      if (!this.leader && !this.claiming && !this.standby) void this.takeLead(false);
    } else {
      this.standby = false;
      if (this.leader) this.stepDown(`membership now elects ${this.electedAddr ?? "no node"}`);
    }
  }

  private stillElected(): boolean {
    return !this.stopped && this.electedAddr === this.selfAddr;
  }

  /**
   * Claim the next term (retrying while still elected), then take the running jobs over. Unless
   * `now`, a node with no running job to take over stays in standby instead (no claim yet).
   */
  private async takeLead(now: boolean): Promise<void> {
    this.claiming = true;
    try {
      if (!now) {
        const running = await this.runningJobs();
        if (running === undefined) return;
        if (running === 0) {
          this.standby = true;
          this.opts.log.info("this node is elected RainStorm leader; no running job to take over, so it claims its term at the first call that needs it");
          return;
        }
      }
      this.standby = false;
      let term: number | undefined;
      while (term === undefined && this.stillElected()) {
        try {
          term = await claimTerm(this.opts.files, this.selfAddr, this.knownTerm());
        } catch (err) {
          this.opts.log.warn(`claiming the RainStorm leader term failed (${(err as Error).message}); retrying in ${CLAIM_RETRY_MS} ms`);
          await this.clock.sleep(CLAIM_RETRY_MS);
        }
      }
      if (term === undefined) return;
      this.highestKnown = Math.max(this.highestKnown, term);
      const leader = new Leader({ ...this.opts, term, onStale: (why) => this.stepDown(why) });
      leader.onMembers(this.live);
      leader.setViewReady(this.viewReady);
      const t0 = this.clock.nowMs();
      const jobs = await leader.recover();
      if (leader.isStopped || !this.stillElected()) return leader.stop();
      this.leader = leader;
      this.opts.log.info(`this node leads RainStorm in term ${term}: took over ${jobs} running jobs in ${Math.round(this.clock.nowMs() - t0)} ms`);
    } catch (err) {
      this.opts.log.warn(`taking the RainStorm lead failed: ${(err as Error).message}`);
    } finally {
      this.claiming = false;
    }
    // Membership may have changed meanwhile.
    if (!this.leader && !this.standby) this.clock.after(CLAIM_RETRY_MS, () => this.reconsider());
  }

  /** How many jobs the journals say are running (undefined: no longer elected); HyDFS errors are retried. */
  private async runningJobs(): Promise<number | undefined> {
    while (this.stillElected()) {
      try {
        return (await readJournals(this.opts.files, this.opts.log)).filter((j) => j.status === "running").length;
      } catch (err) {
        this.opts.log.warn(`reading the RainStorm job journals failed (${(err as Error).message}); retrying in ${CLAIM_RETRY_MS} ms`);
        await this.clock.sleep(CLAIM_RETRY_MS);
      }
    }
    return undefined;
  }

  private stepDown(why: string): void {
    const leader = this.leader;
    if (!leader) return;
    this.leader = undefined;
    leader.stop();
    this.opts.log.warn(`stepping down as RainStorm leader of term ${leader.term}: ${why}`);
  }

  /** A leader whose successor claimed the next term is stale, even if no worker told it yet. */
  private async checkTerm(): Promise<void> {
    const leader = this.leader;
    if (!leader) return;
    try {
      if (await this.opts.files.exists(termFileName(leader.term + 1))) {
        this.highestKnown = Math.max(this.highestKnown, leader.term + 1);
        this.stepDown(`term ${leader.term + 1} has been claimed`);
      }
    } catch {
      // HyDFS unreachable: the workers' fences still hold.
    }
  }
}
