/**
 * How ctl finds the RainStorm leader: the node given with --node, the config's
 * `rainstorm.leader`, or the leader rule applied to what the cluster says; and once more at the
 * node a 421 names. Separate from context.ts because only the leader commands (rainstorm.ts,
 * jobs.ts) need it.
 */
import { leaderHost } from "../rainstorm/config.ts";
import { type Ctx, memberCall } from "./context.ts";
import { CtlHttpError } from "./errors.ts";
import { IPV4_DOTTED_QUAD, isHostname } from "./node_names.ts";

/**
 * Where leader commands go first: the node given with --node; else the config's
 * `rainstorm.leader`; else what the cluster says: the leader rule (services/rainstorm/config.ts
 * leaderHost) applied to the introducers of the node ctl reaches (memberd /get).
 */
export async function leaderTarget(ctx: Ctx): Promise<string> {
  if (ctx.nodeGiven || !ctx.client) return ctx.host;
  if (ctx.client.leader) return ctx.client.leader;
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
 * Run `call` against the RainStorm leader (leaderTarget); when that rainstormd answers 421
 * naming another node, once more against that one. Resolves with the host that answered.
 */
export async function atLeader<T>(ctx: Ctx, call: (host: string) => Promise<T>): Promise<{ host: string; value: T }> {
  const first = await leaderTarget(ctx);
  try {
    return { host: first, value: await call(first) };
  } catch (err) {
    const next = redirectedLeader(err, first);
    if (next === undefined) throw err;
    return { host: next, value: await call(next) };
  }
}
