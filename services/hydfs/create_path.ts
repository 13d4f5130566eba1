/**
 * A create, decided once per name with the replicas (single-decree Paxos, create_decree.ts):
 * this driver runs the proposer's rounds through the transport, with a random backoff between
 * them, then stores the chosen create on the replicas ("learn") and answers (quorum.ts
 * judgeCreate): this client's create won (or is its own retry), or the name exists and holds
 * another client's bytes (409, truthfully: the winner is stored at a majority before the loser is
 * told). Chunks of a large body are already on the replicas.
 */
import { type AcceptReply, CreateProposer, type PrepareReply, type ProposerSend, roundBackoffMs } from "./create_decree.ts";
import { type AppendOp, describeContent } from "./manifest.ts";
import type { HydfsNode } from "./node.ts";
import { HydfsError, type WriteResult } from "./node_types.ts";
import { isAck, judgeCreate } from "./quorum.ts";
import { fetchChunk } from "./read_path.ts";
import type { RingNode } from "./ring.ts";
import { applyAt, INLINE_MAX_BYTES, settleQuorum } from "./write_path.ts";

/**
 * Rounds one create's proposer tries before it answers 503 (create_decree.ts). Rounds fail only
 * while other creates of the same name compete or replicas are unreachable; with the random
 * backoff between rounds (roundBackoffMs, 10 ms doubling to 500 ms) this is a few seconds.
 */
const CREATE_MAX_ROUNDS = 12;

export async function decideCreate(
  node: HydfsNode,
  name: string,
  op: AppendOp,
  inline: Uint8Array | undefined,
  replicas: RingNode[],
  targets: RingNode[],
  need: number,
): Promise<WriteResult> {
  const byKey = new Map(targets.map((r) => [`${r.host}:${r.hydfsPort}`, r]));
  const proposer = new CreateProposer(op, [...byKey.keys()], need, `${node.cfg.host}:${node.cfg.ports.hydfs}/${node.env.newId().slice(0, 8)}`);
  let last = "";
  for (let round = 1; round <= CREATE_MAX_ROUNDS; round++) {
    await runDecreeRound(node, name, proposer, proposer.nextRound(), byKey, op, inline);
    const outcome = proposer.outcome;
    if (outcome?.kind === "deleted_later") {
      throw new HydfsError(
        `create ${name}: the name was deleted at ${outcome.floor}, not before this create's timestamp ${op.tsMs} (coordinator clocks disagree); retry the create`,
        409,
      );
    }
    if (outcome?.kind === "chosen") return learnCreate(node, name, op, outcome.op, inline, replicas, targets, need);
    last = outcome?.reason ?? "no answer";
    await node.env.sleep(roundBackoffMs(round, node.env.random()));
  }
  throw new HydfsError(
    `create ${name}: no decision after ${CREATE_MAX_ROUNDS} rounds (${last}); other creates of the name compete or replicas are unreachable: retry`,
    503,
  );
}

/** Send one round's messages to the replicas and feed every answer to the proposer until the round ends. */
function runDecreeRound(
  node: HydfsNode,
  name: string,
  proposer: CreateProposer,
  first: ProposerSend[],
  byKey: Map<string, RingNode>,
  own: AppendOp,
  inline: Uint8Array | undefined,
): Promise<void> {
  return new Promise((resolve) => {
    let pending = 0;
    const dispatch = (sends: ProposerSend[]) => {
      for (const s of sends) {
        pending++;
        const r = byKey.get(s.to)!;
        // An accept of this coordinator's own small create carries its bytes, so acceptors hold them.
        const data = s.msg.type === "accept" && s.msg.op.opId === own.opId ? inline : undefined;
        const replica = node.at(r);
        const call: Promise<PrepareReply | AcceptReply> =
          s.msg.type === "prepare" ? replica.prepare(name, s.msg.ballot) : replica.accept(name, s.msg.ballot, s.msg.op, data);
        call
          .then(
            (reply) =>
              dispatch(s.msg.type === "accept" ? proposer.onAcceptReply(s.to, reply as AcceptReply) : proposer.onPrepareReply(s.to, reply as PrepareReply)),
            (err) => {
              node.log.warn(`create ${name}: ${s.msg.type} at ${r.host}: ${(err as Error).message}`);
              dispatch(proposer.unreachable(s.to, s.msg.ballot));
            },
          )
          .finally(() => {
            pending--;
            if (proposer.outcome || pending === 0) resolve();
          });
      }
    };
    dispatch(first);
  });
}

/** Store the chosen create on the replicas (a majority before anyone is answered), then answer. */
async function learnCreate(
  node: HydfsNode,
  name: string,
  own: AppendOp,
  chosen: AppendOp,
  inline: Uint8Array | undefined,
  replicas: RingNode[],
  targets: RingNode[],
  need: number,
): Promise<WriteResult> {
  let data = chosen.opId === own.opId ? inline : undefined;
  if (!data && chosen.chunks.length === 1 && chosen.size <= INLINE_MAX_BYTES) {
    // Another coordinator's small create: its bytes went to the acceptors with its accept.
    data = await fetchChunk(node, chosen.chunks[0]!.id, targets).catch(() => undefined);
  }
  const pending = targets.map((r) => applyAt(node, r, "create", name, chosen, false, data));
  const answers = await settleQuorum(pending, need, isAck);
  const learned = targets.filter((_, i) => isAck(answers[i]));
  if (learned.length < need) {
    throw new HydfsError(
      `create ${name}: decided, but stored on only ${learned.length} of ${replicas.length} replicas, need ${need}; retry with the same client and seq`,
      503,
    );
  }
  node.failpointBeforeAck();
  node.dirty.add(name);
  const result = { name, size: chosen.size, replicas: replicas.map((r) => r.host), acked: learned.map((r) => r.host) };
  switch (judgeCreate(own, chosen)) {
    case "won":
      node.metrics.bytesWritten += chosen.size;
      return { ...result, duplicate: false };
    case "retry_of_own":
      return { ...result, duplicate: true };
    case "reused_seq":
      throw new HydfsError(
        `client ${own.clientId} seq ${own.seq} of ${name} was already used for different bytes (this ${describeContent(own)}; the stored create is a ${describeContent(chosen)}); nothing was written: send new bytes with a new seq`,
        409,
      );
    case "exists":
      throw new HydfsError(`create ${name}: a file with that name already exists (created by client ${chosen.clientId})`, 409);
  }
}
