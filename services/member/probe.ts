/**
 * The inflight tracker of pingack: probes this node sent and is waiting on, and pings it sends
 * on behalf of others (ping-req relays). Sequence numbers come from one counter, so an ack's
 * sequence identifies exactly one of the two. The counter wraps from MAX_SEQ back to 1, so no
 * sequence number sent is ever one a peer's decoder refuses.
 */
import { type Rng, randomInt } from "../shared/rng.ts";
import { MAX_SEQ } from "./limits.ts";

export interface Probe {
  seq: number;
  target: string;
  sentMs: number;
  /** No direct ack by then: ask others (ping-req). */
  directDeadlineMs: number;
  /** No ack at all by then: the probe is missed. */
  finalDeadlineMs: number;
  indirectSent: boolean;
}

export interface Relay {
  origin: string;
  originSeq: number;
  target: string;
  expiresMs: number;
}

/** The sequence number after `seq`: +1, wrapping from MAX_SEQ back to 1. */
export function nextSeq(seq: number): number {
  return seq >= MAX_SEQ ? 1 : seq + 1;
}

/**
 * Put a newly listed member into the current probe pass (`order`, whose next target is at
 * `nextIndex`) at a uniformly random place among the targets still to come, as memberlist does.
 * Left for the next reshuffle, it would go unprobed for up to a whole pass (one period per
 * member: ~10 s at 20 nodes), so a node that crashed soon after joining was noticed that late.
 * Returns the index of the next target (unchanged: the insertion is never before it).
 */
export function insertIntoPass(order: string[], nextIndex: number, id: string, rng: Rng): number {
  const start = Math.min(nextIndex, order.length);
  order.splice(start + randomInt(rng, order.length - start + 1), 0, id);
  return start;
}

/** A join announcement (a ping) waiting for its ack: `attempt` counts the sends so far. */
export interface Announce {
  target: string;
  deadlineMs: number;
  attempt: number;
}

export class ProbeTracker {
  /** Last sequence number handed out; a test may start it anywhere. */
  constructor(private seq = 0) {}
  private readonly probes = new Map<number, Probe>();
  private readonly relays = new Map<number, Relay>();
  private readonly announces = new Map<number, Announce>();

  /** Track a join announcement to `target` (its `attempt`-th send), answered by an ack by `deadlineMs`. */
  announce(target: string, deadlineMs: number, attempt: number): number {
    const seq = (this.seq = nextSeq(this.seq));
    this.announces.set(seq, { target, deadlineMs, attempt });
    return seq;
  }

  /** An ack for a join announcement: forget it (true when it was one). */
  ackAnnounce(seq: number, about: string): boolean {
    const a = this.announces.get(seq);
    if (!a || a.target !== about) return false;
    this.announces.delete(seq);
    return true;
  }

  /** Announcements unanswered at `nowMs` (removed from the tracker). */
  unansweredAnnounces(nowMs: number): Announce[] {
    const late: Announce[] = [];
    for (const [seq, a] of this.announces) {
      if (nowMs < a.deadlineMs) continue;
      late.push(a);
      this.announces.delete(seq);
    }
    return late;
  }

  start(target: string, nowMs: number, directDeadlineMs: number, finalDeadlineMs: number): number {
    const seq = (this.seq = nextSeq(this.seq));
    this.probes.set(seq, { seq, target, sentMs: nowMs, directDeadlineMs, finalDeadlineMs, indirectSent: false });
    return seq;
  }

  isProbing(target: string): boolean {
    for (const p of this.probes.values()) if (p.target === target) return true;
    return false;
  }

  /** An ack for one of our probes (direct or relayed); returns the probe once. */
  resolve(seq: number, about: string): Probe | undefined {
    const probe = this.probes.get(seq);
    if (!probe || probe.target !== about) return undefined;
    this.probes.delete(seq);
    return probe;
  }

  relay(origin: string, originSeq: number, target: string, expiresMs: number): number {
    const seq = (this.seq = nextSeq(this.seq));
    this.relays.set(seq, { origin, originSeq, target, expiresMs });
    return seq;
  }

  takeRelay(seq: number, about: string): Relay | undefined {
    const relay = this.relays.get(seq);
    if (!relay || relay.target !== about) return undefined;
    this.relays.delete(seq);
    return relay;
  }

  /** Probes due for indirect checks and probes missed at `nowMs` (removed from the tracker). */
  due(nowMs: number, indirectEnabled: boolean): { needIndirect: Probe[]; missed: Probe[] } {
    const needIndirect: Probe[] = [];
    const missed: Probe[] = [];
    for (const p of this.probes.values()) {
      if (nowMs >= p.finalDeadlineMs) {
        missed.push(p);
        this.probes.delete(p.seq);
      } else if (indirectEnabled && !p.indirectSent && nowMs >= p.directDeadlineMs) {
        p.indirectSent = true;
        needIndirect.push(p);
      }
    }
    for (const [seq, r] of this.relays) if (nowMs >= r.expiresMs) this.relays.delete(seq);
    return { needIndirect, missed };
  }

  clear(): void {
    this.probes.clear();
    this.relays.clear();
    this.announces.clear();
  }
}
