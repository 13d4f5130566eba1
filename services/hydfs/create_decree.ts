/**
 * Who creates a name: one decision per (name, generation) that every replica agrees on, by
 * single-decree Paxos among the file's replicas. Pure: messages in, messages and an outcome out;
 * the driver (create_path.ts) owns the transport, disks, timers and the random backoff between
 * rounds.
 *
 * Why: create is exclusive. Replicas that each accepted "the first create they saw" split when
 * clients race through different coordinators (5 creates over 3 replicas: no create on a
 * majority), every create was rolled back and every client was told the name existed when it did
 * not. With a decree, exactly one create is chosen, everyone who asks learns that one, and the
 * losers are told the truth: the name exists (and whose bytes it holds).
 *
 * The protocol (Lamport's "Paxos Made Simple", one instance per name and generation):
 * - A ballot is (round, proposer id); ballots are totally ordered and no two proposers share one.
 * - Prepare(b): an acceptor that has promised nothing higher promises b (durably) and reports the
 *   value it accepted last, if any; otherwise it refuses, naming its promise.
 * - With promises from a majority of the replicas, the proposer proposes the value of the
 *   highest-ballot acceptance among them, or its own create when there is none: Accept(b, v).
 * - An acceptor accepts (durably) unless it has promised a higher ballot.
 * - Accepted by a majority: v is chosen. Any later ballot's majority intersects this one, so
 *   every later proposal carries v (the classic invariant); no other create can be chosen.
 * - Learning: the driver then stores v as the file's first operation on the replicas (the
 *   existing exclusive replica create). A replica whose copy exists answers "decided" to every
 *   prepare and accept: its manifest holds the chosen create, which is stronger than any promise.
 * Generations: a delete leaves a tombstone; a value stamped at or before the newest tombstone a
 * majority reports belongs to a dead generation and is ignored, so a re-create starts fresh.
 * Safety needs durable acceptor state (store.ts writes it before answering); liveness needs the
 * random backoff between rounds, as dueling proposers otherwise preempt each other forever.
 */
import type { AppendOp } from "./manifest.ts";

export interface Ballot {
  round: number;
  /** Unique per proposal attempt (coordinator address and a random suffix). */
  by: string;
}

export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round - b.round;
  return a.by < b.by ? -1 : a.by > b.by ? 1 : 0;
}

/** An acceptor's durable state for one name (both fields only ever move up). */
export interface AcceptorState {
  promised?: Ballot;
  accepted?: { ballot: Ballot; op: AppendOp };
}

export type PrepareReply =
  | { kind: "promise"; ballot: Ballot; accepted?: { ballot: Ballot; op: AppendOp }; deletedAtMs?: number }
  | { kind: "nack"; ballot: Ballot; promised: Ballot }
  /** The replica already holds the file: its create is the chosen one. */
  | { kind: "decided"; ballot: Ballot; op: AppendOp; deletedAtMs?: number };

export type AcceptReply =
  { kind: "accepted"; ballot: Ballot } | { kind: "nack"; ballot: Ballot; promised: Ballot } | { kind: "decided"; ballot: Ballot; op: AppendOp };

/** Acceptor, phase 1. `decided` is the create of the replica's live copy, if it has one. */
export function onPrepare(state: AcceptorState, ballot: Ballot, decided?: AppendOp, deletedAtMs?: number): { state: AcceptorState; reply: PrepareReply } {
  if (decided) return { state, reply: { kind: "decided", ballot, op: decided, ...(deletedAtMs === undefined ? {} : { deletedAtMs }) } };
  if (state.promised && compareBallots(ballot, state.promised) < 0) return { state, reply: { kind: "nack", ballot, promised: state.promised } };
  const next: AcceptorState = { ...state, promised: ballot };
  return {
    state: next,
    reply: { kind: "promise", ballot, ...(state.accepted ? { accepted: state.accepted } : {}), ...(deletedAtMs === undefined ? {} : { deletedAtMs }) },
  };
}

/** Acceptor, phase 2. */
export function onAccept(state: AcceptorState, ballot: Ballot, op: AppendOp, decided?: AppendOp): { state: AcceptorState; reply: AcceptReply } {
  if (decided) return { state, reply: { kind: "decided", ballot, op: decided } };
  if (state.promised && compareBallots(ballot, state.promised) < 0) return { state, reply: { kind: "nack", ballot, promised: state.promised } };
  return { state: { promised: ballot, accepted: { ballot, op } }, reply: { kind: "accepted", ballot } };
}

export type ProposerSend = { to: string; msg: { type: "prepare"; ballot: Ballot } | { type: "accept"; ballot: Ballot; op: AppendOp } };

export type ProposerOutcome =
  /** `op` is the chosen create (this proposer's own, or the one it found). */
  | { kind: "chosen"; op: AppendOp }
  /** The name was deleted at or after this create's timestamp (coordinator clocks disagree). */
  | { kind: "deleted_later"; floor: number }
  /** A round could not gather a majority; the driver backs off and calls nextRound (or gives up). */
  | { kind: "round_failed"; reason: string };

/**
 * One create's proposer. Feed it the acceptors' replies (or `unreachable`) for the current ballot;
 * replies to older ballots are ignored. `outcome` is set once the round ends.
 */
export class CreateProposer {
  private round = 0;
  private phase: "prepare" | "accept" | "done" = "prepare";
  private ballot!: Ballot;
  private readonly yes = new Set<string>();
  private readonly no = new Set<string>();
  private readonly promises: Extract<PrepareReply, { kind: "promise" }>[] = [];
  /** Phase 1 answers from replicas that hold a copy: its create, judged once a majority answered. */
  private readonly decided = new Map<string, AppendOp>();
  /** Highest promise any acceptor named in a refusal: the next round starts above it. */
  private highestSeen = 0;
  private floor: number | undefined;
  outcome: ProposerOutcome | undefined;

  constructor(
    private readonly own: AppendOp,
    private readonly acceptors: readonly string[],
    private readonly quorum: number,
    private readonly id: string,
  ) {
    if (quorum > acceptors.length) throw new Error(`quorum ${quorum} is more than the ${acceptors.length} acceptors`);
  }

  get currentBallot(): Ballot {
    return this.ballot;
  }

  get rounds(): number {
    return this.round;
  }

  /** Start the next round (the first one too): prepare messages to every acceptor. */
  nextRound(): ProposerSend[] {
    this.round = Math.max(this.round, this.highestSeen) + 1;
    this.ballot = { round: this.round, by: this.id };
    this.phase = "prepare";
    this.yes.clear();
    this.no.clear();
    this.promises.length = 0;
    this.decided.clear();
    this.outcome = undefined;
    return this.acceptors.map((to) => ({ to, msg: { type: "prepare", ballot: this.ballot } }));
  }

  private current(ballot: Ballot): boolean {
    return this.phase !== "done" && this.outcome === undefined && compareBallots(ballot, this.ballot) === 0;
  }

  private raiseFloor(deletedAtMs: number | undefined): void {
    if (deletedAtMs !== undefined && (this.floor === undefined || deletedAtMs > this.floor)) this.floor = deletedAtMs;
  }

  /** A value of a dead generation (stamped at or before the newest tombstone) is no value. */
  private live(op: AppendOp | undefined): op is AppendOp {
    return op !== undefined && (this.floor === undefined || op.tsMs > this.floor);
  }

  onPrepareReply(from: string, reply: PrepareReply): ProposerSend[] {
    if (this.phase !== "prepare" || !this.current(reply.ballot) || this.yes.has(from) || this.no.has(from) || this.decided.has(from)) return [];
    if (reply.kind === "nack") {
      this.highestSeen = Math.max(this.highestSeen, reply.promised.round);
      this.no.add(from);
    } else {
      this.raiseFloor(reply.deletedAtMs);
      if (reply.kind === "decided") this.decided.set(from, reply.op);
      else {
        this.yes.add(from);
        this.promises.push(reply);
      }
    }
    return this.afterPrepare();
  }

  private afterPrepare(): ProposerSend[] {
    // A replica's copy is judged only once a majority has answered: only then is the newest
    // tombstone known (a delete reached a majority, which intersects this one), and a copy the
    // replica kept by missing the delete must not pass for the chosen create.
    if (this.decided.size > 0 && this.yes.size + this.decided.size >= this.quorum) {
      for (const op of this.decided.values()) if (this.live(op)) return this.finish({ kind: "chosen", op });
      // Copies of a dead generation: those replicas promise nothing.
      for (const from of this.decided.keys()) this.no.add(from);
      this.decided.clear();
    }
    if (this.yes.size >= this.quorum) {
      if (this.floor !== undefined && this.own.tsMs <= this.floor) return this.finish({ kind: "deleted_later", floor: this.floor });
      let best: { ballot: Ballot; op: AppendOp } | undefined;
      for (const p of this.promises) {
        if (p.accepted && this.live(p.accepted.op) && (!best || compareBallots(p.accepted.ballot, best.ballot) > 0)) best = p.accepted;
      }
      const op = best?.op ?? this.own;
      this.phase = "accept";
      this.yes.clear();
      this.no.clear();
      this.proposed = op;
      return this.acceptors.map((to) => ({ to, msg: { type: "accept", ballot: this.ballot, op } }));
    }
    // Only refusals end the round: a copy not judged yet may still be the chosen create, once
    // enough other replicas have answered to judge it.
    if (this.no.size > this.acceptors.length - this.quorum) {
      return this.finish({ kind: "round_failed", reason: `only ${this.yes.size} of ${this.acceptors.length} replicas promised ballot ${this.ballot.round}` });
    }
    return [];
  }

  /** The value this round's accept phase carries (defined once phase 1 succeeded). */
  proposed: AppendOp | undefined;

  onAcceptReply(from: string, reply: AcceptReply): ProposerSend[] {
    if (this.phase !== "accept" || !this.current(reply.ballot) || this.yes.has(from) || this.no.has(from)) return [];
    if (reply.kind === "decided") {
      if (this.live(reply.op)) return this.finish({ kind: "chosen", op: reply.op });
      this.no.add(from);
    } else if (reply.kind === "nack") {
      this.highestSeen = Math.max(this.highestSeen, reply.promised.round);
      this.no.add(from);
    } else {
      this.yes.add(from);
    }
    if (this.yes.size >= this.quorum) return this.finish({ kind: "chosen", op: this.proposed! });
    if (this.no.size > this.acceptors.length - this.quorum)
      return this.finish({ kind: "round_failed", reason: `only ${this.yes.size} of ${this.acceptors.length} replicas accepted ballot ${this.ballot.round}` });
    return [];
  }

  /** No answer from `from` for this round's current phase (timeout, connection refused). */
  unreachable(from: string, ballot: Ballot): ProposerSend[] {
    if (!this.current(ballot) || this.yes.has(from) || this.no.has(from) || this.decided.has(from)) return [];
    this.no.add(from);
    if (this.phase === "prepare") return this.afterPrepare();
    if (this.no.size > this.acceptors.length - this.quorum)
      return this.finish({ kind: "round_failed", reason: `only ${this.yes.size} of ${this.acceptors.length} replicas answered ballot ${this.ballot.round}` });
    return [];
  }

  private finish(outcome: ProposerOutcome): ProposerSend[] {
    this.outcome = outcome;
    if (outcome.kind !== "round_failed") this.phase = "done";
    return [];
  }
}

/** The backoff before round `round` + 1 after a failed round: random, growing, capped (ms). */
export function roundBackoffMs(round: number, random01: number, baseMs = 10, capMs = 500): number {
  return Math.round(Math.min(capMs, baseMs * 2 ** Math.min(round, 10)) * (0.5 + random01));
}

// ---- wire shapes (checked like any input: a peer may be broken or hostile) --------------------

/** Longest proposer id accepted (an address, a slash and a random suffix). */
export const MAX_BALLOT_BY_CHARS = 300;

function fail(where: string, what: string, value: unknown): never {
  throw new Error(`${where}: expected ${what}, got ${JSON.stringify(value)?.slice(0, 80)}`);
}

export function parseBallot(v: unknown, where = "ballot"): Ballot {
  const b = v as Ballot;
  if (typeof b !== "object" || b === null) fail(where, "an object {round, by}", v);
  if (!Number.isSafeInteger(b.round) || b.round < 1) fail(`${where}.round`, "a positive safe integer", b.round);
  if (typeof b.by !== "string" || b.by.length === 0 || b.by.length > MAX_BALLOT_BY_CHARS)
    fail(`${where}.by`, `a string of 1..${MAX_BALLOT_BY_CHARS} characters`, b.by);
  return { round: b.round, by: b.by };
}

function optionalFloor(v: unknown, where: string): { deletedAtMs?: number } {
  if (v === undefined || v === null) return {};
  if (!Number.isSafeInteger(v) || (v as number) < 0) fail(where, "a non-negative integer", v);
  return { deletedAtMs: v as number };
}

/** A prepare answer from the wire; `parseOp` validates an op (manifest.ts validateAppendOp). */
export function parsePrepareReply(v: unknown, parseOp: (op: unknown, where: string) => AppendOp): PrepareReply {
  const r = v as Record<string, unknown>;
  if (typeof r !== "object" || r === null) fail("prepare reply", "an object", v);
  const ballot = parseBallot(r.ballot, "prepare reply ballot");
  if (r.kind === "nack") return { kind: "nack", ballot, promised: parseBallot(r.promised, "prepare reply promised") };
  if (r.kind === "decided")
    return { kind: "decided", ballot, op: parseOp(r.op, "prepare reply op"), ...optionalFloor(r.deletedAtMs, "prepare reply deletedAtMs") };
  if (r.kind !== "promise") fail("prepare reply kind", '"promise", "nack" or "decided"', r.kind);
  const acc = r.accepted as { ballot?: unknown; op?: unknown } | undefined;
  const accepted =
    acc === undefined || acc === null
      ? {}
      : { accepted: { ballot: parseBallot(acc.ballot, "prepare reply accepted.ballot"), op: parseOp(acc.op, "prepare reply accepted.op") } };
  return { kind: "promise", ballot, ...accepted, ...optionalFloor(r.deletedAtMs, "prepare reply deletedAtMs") };
}

export function parseAcceptReply(v: unknown, parseOp: (op: unknown, where: string) => AppendOp): AcceptReply {
  const r = v as Record<string, unknown>;
  if (typeof r !== "object" || r === null) fail("accept reply", "an object", v);
  const ballot = parseBallot(r.ballot, "accept reply ballot");
  if (r.kind === "accepted") return { kind: "accepted", ballot };
  if (r.kind === "nack") return { kind: "nack", ballot, promised: parseBallot(r.promised, "accept reply promised") };
  if (r.kind === "decided") return { kind: "decided", ballot, op: parseOp(r.op, "accept reply op") };
  return fail("accept reply kind", '"accepted", "nack" or "decided"', r.kind);
}
