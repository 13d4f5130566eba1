/**
 * How ctl finds the RainStorm leader. Any node may be the leader (the cluster elects one, with a
 * term that only grows), so ctl asks: every rainstormd answers GET /leader with the leader its
 * membership view elects. In order:
 *
 * 1. the node given with --node (an explicit choice; a rainstormd that is not the leader answers
 *    421 naming it);
 * 2. the config's `rainstorm.leader` (an explicit choice too);
 * 3. else GET /leader of every node ctl knows (knownNodes: its target, its config's nodes, the
 *    members the cluster lists), all at once, each under LEADER_ASK_TIMEOUT_MS; the first answer
 *    naming a leader wins. While none does (a failover in progress), ask again every
 *    LEADER_ASK_PAUSE_MS until the deadline, then fail naming every node asked and its answer.
 *
 * A 421 from the node ctl took for the leader is handled in one place, atLeader, which every
 * leader command calls through: go to the node the 421 names, else ask again.
 */
import { leaderHost } from "../rainstorm/config.ts";
import { type Ctx, memberCall } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";
import { IPV4_DOTTED_QUAD, isHostname, memberHost, namesFromMembers } from "./node_names.ts";
import { client, leaderQuery } from "./rainstormd.ts";

/** One GET /leader call: a live rainstormd answers at once; a dead node must not hold up the others long. */
export const LEADER_ASK_TIMEOUT_MS = 1000;

/** Between two rounds of GET /leader while no node names a leader: a failover takes seconds, so this is often enough. */
export const LEADER_ASK_PAUSE_MS = 500;

/** Calls one leader command makes in all while nodes answer 421 (a leader changing meanwhile): then the last 421 is the answer. */
export const MAX_LEADER_CALLS = 3;

/** The leader ctl found: its host and, when a node was asked (GET /leader), the term that node knows. */
export interface FoundLeader {
  host: string;
  term?: number;
}

/**
 * What one node said to GET /leader: the leader it names, or why it names none, in words that
 * name the node; `old`: a rainstormd from before leader election (it has no GET /leader, 404),
 * `down`: no answer at all.
 */
type Said = { leader: FoundLeader } | { none: string; old?: boolean; down?: boolean };

/**
 * The leader in `host`'s GET /leader answer `{"leader": "host:port" | null, "term": n, "self":
 * bool}`, or why there is none. Only the leader's host is kept: ctl reaches every node's
 * rainstormd on its config's ports.rainstorm, as for every other command.
 */
export function leaderOfAnswer(host: string, body: unknown): Said {
  const b = body as { leader?: unknown; term?: unknown } | null;
  const term = Number.isSafeInteger(b?.term) ? (b!.term as number) : undefined;
  if (b?.leader === null) return { none: `${host}: no leader${term === undefined ? "" : ` (term ${term})`}` };
  const leader = typeof b?.leader === "string" ? memberHost(b.leader) : "";
  if (!(IPV4_DOTTED_QUAD.test(leader) || isHostname(leader))) return { none: `${host}: an answer that names no leader: ${JSON.stringify(body)}` };
  return { leader: term === undefined ? { host: leader } : { host: leader, term } };
}

/**
 * The nodes ctl knows, to ask for the leader: its target, its config's nodes, and the members
 * the cluster lists (memberd /list_mem of the first of those that answers, asked once per
 * command and kept in ctx.learned, so a follower that learned them before the leader died still
 * knows the others after).
 */
export async function knownNodes(ctx: Ctx): Promise<string[]> {
  const mine = [ctx.host, ...(ctx.client?.seeds ?? [])].filter((h) => h !== "");
  if (ctx.learned === undefined) {
    for (const host of new Set(mine)) {
      try {
        const list = await memberCall(ctx, "/list_mem", { host, timeoutMs: Math.min(ctx.timeoutMs, LEADER_ASK_TIMEOUT_MS) });
        ctx.learned = namesFromMembers(list?.members ?? []);
        break;
      } catch {
        // That node is down or has no memberd: try the next one; the nodes already known remain.
      }
    }
  }
  return [...new Set([...mine, ...Object.values(ctx.learned ?? {})])];
}

/** What `host` says to GET /leader; a 404 means a rainstormd from before leader election (`old`). */
async function askOne(ctx: Ctx, host: string): Promise<Said> {
  try {
    const timeoutMs = Math.min(ctx.timeoutMs, LEADER_ASK_TIMEOUT_MS);
    return leaderOfAnswer(host, await leaderQuery(ctx, host, (addr) => client(ctx).leader(addr, { timeoutMs })));
  } catch (err) {
    // leaderQuery's errors name the node: "<host>: <its words> (HTTP n)", "rainstormd at <host:port> unreachable: ...".
    if (err instanceof CtlHttpError) return { none: err.message, old: err.status === 404 };
    if (err instanceof CtlError) return { none: err.message, down: true };
    throw err;
  }
}

/** No node named a leader before the deadline: the message names every node asked and what it said last. */
export class NoLeaderFound extends CtlError {}

/** What one node said when it named no leader. */
type NoneSaid = Exclude<Said, { leader: FoundLeader }>;

/** One round: every known node asked GET /leader at once; the first leader named, else what each said. */
async function askRound(ctx: Ctx): Promise<{ found: FoundLeader } | { nodes: string[]; said: NoneSaid[] }> {
  const nodes = await knownNodes(ctx);
  const asks = nodes.map((host) => askOne(ctx, host));
  const naming = asks.map(async (ask) => {
    const said = await ask;
    if ("leader" in said) return said.leader;
    throw new CtlError(said.none);
  });
  const found = await Promise.any(naming).catch(() => undefined);
  if (found !== undefined) return { found };
  return { nodes, said: (await Promise.all(asks)) as NoneSaid[] };
}

/** The leader the first node to answer names now, if one does (one round; nothing for nodes from before leader election). */
export async function leaderNamedNow(ctx: Ctx): Promise<FoundLeader | undefined> {
  const round = await askRound(ctx);
  return "found" in round ? round.found : undefined;
}

/**
 * Ask every known node GET /leader, all at once; the first that names a leader wins. Rounds
 * repeat every LEADER_ASK_PAUSE_MS until `deadlineMs` (performance.now() time), then
 * NoLeaderFound (the last round asked at the deadline). Nodes from before leader election (every
 * answer a 404) have no GET /leader: for them the old rule holds, the first introducer's host
 * (rainstorm/config.ts leaderHost).
 */
export async function askLeader(ctx: Ctx, deadlineMs: number): Promise<FoundLeader> {
  for (;;) {
    const round = await askRound(ctx);
    if ("found" in round) return round.found;
    const { nodes, said } = round;
    if (said.some((s) => s.old) && said.every((s) => s.old || s.down)) return { host: await leaderByRule(ctx) };
    // The last round is asked at the deadline: a leader elected just before it is still found.
    const leftMs = deadlineMs - performance.now();
    if (leftMs <= 0) throw new NoLeaderFound(`no RainStorm leader found: asked GET /leader of ${nodes.join(", ")}; ${said.map((s) => s.none).join("; ")}`);
    await Bun.sleep(Math.min(LEADER_ASK_PAUSE_MS, leftMs));
  }
}

/** The leader rule of nodes from before leader election: the first introducer of the node ctl reaches (memberd /get). */
async function leaderByRule(ctx: Ctx): Promise<string> {
  const got = await memberCall(ctx, "/get");
  const node = got?.node ?? {};
  return leaderHost({
    ...ctx.cfg,
    host: typeof node.host === "string" ? node.host : ctx.host,
    introducers: Array.isArray(node.introducers) ? node.introducers : [],
    rainstorm: { ...ctx.cfg.rainstorm, leader: "" },
  });
}

/**
 * Where leader commands go first: the node given with --node; else the config's
 * `rainstorm.leader`; else the leader the cluster names (askLeader), within --timeout.
 */
export async function leaderTarget(ctx: Ctx): Promise<FoundLeader> {
  if (ctx.nodeGiven || !ctx.client) return { host: ctx.host };
  if (ctx.client.leader) return { host: ctx.client.leader };
  return askLeader(ctx, performance.now() + ctx.timeoutMs);
}

/**
 * The leader named by a rainstormd that is not it: its 421 answer ("this node is not the
 * RainStorm leader; send jobs to X", or a `leader` field), or undefined for any other error.
 */
export function redirectedLeader(err: unknown, from: string): string | undefined {
  if (!(err instanceof CtlHttpError) || err.status !== 421) return undefined;
  const body = err.body as { leader?: unknown; error?: unknown } | undefined;
  const named = typeof body?.leader === "string" ? body.leader : typeof body?.error === "string" ? /send jobs to (\S+?)\.?$/.exec(body.error)?.[1] : undefined;
  if (named === undefined || named === from || !(IPV4_DOTTED_QUAD.test(named) || isHostname(named))) return undefined;
  return named;
}

/**
 * Run `call` against the RainStorm leader (leaderTarget). A 421 means the node is not (or no
 * longer) the leader: call the node it names, else the one the cluster names now (askLeader),
 * at most MAX_LEADER_CALLS calls in all, the search within --timeout. Resolves with the leader
 * that answered (its term when a node named it) and the answer.
 */
export async function atLeader<T>(ctx: Ctx, call: (host: string) => Promise<T>): Promise<FoundLeader & { value: T }> {
  const deadlineMs = performance.now() + ctx.timeoutMs;
  let leader = await leaderTarget(ctx);
  for (let calls = 1; ; calls++) {
    try {
      return { ...leader, value: await call(leader.host) };
    } catch (err) {
      if (!(err instanceof CtlHttpError) || err.status !== 421 || calls >= MAX_LEADER_CALLS) throw err;
      const named = redirectedLeader(err, leader.host);
      leader = named !== undefined ? { host: named } : await askLeader(ctx, deadlineMs);
    }
  }
}
