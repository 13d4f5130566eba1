/**
 * One call to a node's rainstormd in ctl's words: its address, the signed client, and how its
 * failures read (unreachable names the daemon, a refusal the host, the body kept so a 421 can be
 * followed). Separate from rainstorm.ts because finding the leader (leader.ts), following a job
 * (follow.ts) and every RainStorm command call through it.
 */
import { ClusterHttp, type Deadline, HttpCallError } from "../shared/http.ts";
import { RainstormClient, RainstormHttpError } from "../rainstorm/client.ts";
import type { Ctx } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";

/** The client of rainstormd for this command (signed with the cluster secret). */
export function client(ctx: Ctx): RainstormClient {
  return new RainstormClient(ctx.http);
}

/**
 * A ClusterHttp whose streams can be dropped: `drop()` aborts every call made through it, body
 * included. A leader paused (SIGSTOP) holds its stream open without a word; ctl then follows the
 * job elsewhere and must close that connection, or the process could not exit.
 */
class DroppableHttp extends ClusterHttp {
  private readonly dropped = new AbortController();

  override fetch(url: string, init: Omit<RequestInit, "signal"> & Deadline): Promise<Response> {
    if (init.signal === undefined) return super.fetch(url, init);
    return super.fetch(url, { ...init, signal: AbortSignal.any([init.signal, this.dropped.signal]) });
  }

  drop(): void {
    this.dropped.abort();
  }
}

/** A client for one stream of job events (submit or watch), and how to drop that stream. */
export function streamClient(ctx: Ctx): { rs: RainstormClient; drop: () => void } {
  const http = new DroppableHttp(ctx.cfg.cluster_secret);
  return { rs: new RainstormClient(http), drop: () => http.drop() };
}

/** `host`'s rainstormd, "host:port". */
export function rainstormd(ctx: Ctx, host: string): string {
  return `${host}:${ctx.cfg.ports.rainstorm}`;
}

/** A refusal in ctl's words: the daemon's message and status, its body kept (atLeader follows a 421 with it). */
export function refused(err: RainstormHttpError, prefix: string): CtlHttpError {
  return new CtlHttpError(`${prefix}${err.error} (HTTP ${err.status})`, err.status, err.body);
}

/**
 * One call to `host`'s rainstormd in ctl's words: unreachable is a CtlError naming the daemon, a
 * refusal a CtlHttpError naming the host (as every ctl command says them).
 */
export async function leaderQuery<T>(ctx: Ctx, host: string, call: (addr: string) => Promise<T>): Promise<T> {
  try {
    return await call(rainstormd(ctx, host));
  } catch (err) {
    if (err instanceof HttpCallError) throw new CtlError(`rainstormd at ${rainstormd(ctx, host)} unreachable: ${err.why}`);
    if (err instanceof RainstormHttpError) throw refused(err, `${host}: `);
    throw err;
  }
}
