/**
 * How ctl calls hydfsd: the node a call goes to, the retry rules (a 503 retried under CTL_RETRY
 * within --timeout, saying `retrying: <error>` on stderr each time) and how a failed call is told.
 * Separate from hydfs.ts (the commands) and hydfs_transfer.ts (streamed uploads and downloads),
 * which both go through ctlCall. Every call goes through hydfs/client.ts.
 */
import { type CallOptions, HydfsCallError, HydfsClient, type RetryRules } from "../hydfs/client.ts";
import { CTL_RETRY } from "../shared/retry.ts";
import type { Ctx } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";

// ---- transport ---------------------------------------------------------------------------------

/** The hydfsd of `host` (ctl talks to one node: --node, or the node a command names). */
function hydfsBase(ctx: Ctx, host: string): string {
  return `http://${host}:${ctx.cfg.ports.hydfs}`;
}

/** ctl's HyDFS client: every call names its node (`at`), and its rules are ctlRules. */
function hydfsClient(ctx: Ctx): HydfsClient {
  return new HydfsClient({ http: ctx.http, bases: () => [hydfsBase(ctx, ctx.host)], rules: ctlRules(ctx, { retry503: true, retryTransport: false }) });
}

/** The node could not be reached or stalled: no answer at all. */
class CtlTransportError extends CtlError {}

/**
 * A failed call as ctl says it: hydfsd's message and status (`<message> (HTTP <status>)`, or
 * `<what>: HTTP <status>` for an empty answer), or `<prefix>: <why>` when no answer came. When the
 * retries gave up, the last attempt's failure is the one told. The daemons' messages already name
 * the operation and the file.
 */
function ctlError(err: unknown, what: string, transportPrefix: string): Error {
  if (!(err instanceof HydfsCallError)) return err as Error;
  const e = err.last ?? err;
  if (e.cause instanceof CtlError) return e.cause;
  if (e.status === undefined) return new CtlTransportError(`${transportPrefix}: ${e.reason}`);
  return new CtlHttpError(e.body === "" ? `${what}: HTTP ${e.status}` : `${e.reason} (HTTP ${e.status})`, e.status);
}

// ---- retries -----------------------------------------------------------------------------------

/**
 * How ctl insists: a 503 (the node cannot serve right now: its membership view is not current
 * yet after a restart, or too few replicas answered) is retried under CTL_RETRY within --timeout
 * (when `retry503`); a transport error is retried once, at once (when `retryTransport`: only
 * calls that are safe to repeat, such as an upload under its fixed (client, seq)). Other answers
 * are final: ctl is one person's one node, not a daemon that can wait for another coordinator.
 */
function ctlRules(ctx: Ctx, opts: { retry503: boolean; retryTransport: boolean }): RetryRules {
  return {
    policy: { ...CTL_RETRY, deadlineMs: ctx.timeoutMs },
    retryStatus: (status) => opts.retry503 && status === 503,
    transport: opts.retryTransport ? "once" : "never",
  };
}

/**
 * Run one call of `client` at `host` under ctlRules, saying `retrying: <error>` on stderr before
 * each retry, and turn its failure into ctl's error (ctlError).
 */
export async function ctlCall<T>(
  ctx: Ctx,
  where: { what: string; host: string; transportPrefix: string },
  opts: { retry503: boolean; retryTransport: boolean },
  call: (client: HydfsClient, opts: CallOptions) => Promise<T>,
): Promise<T> {
  const toCtl = (err: unknown) => ctlError(err, where.what, where.transportPrefix);
  const callOpts: CallOptions = {
    at: hydfsBase(ctx, where.host),
    rules: ctlRules(ctx, opts),
    deadline: () => ({ timeoutMs: ctx.timeoutMs }),
    onRetry: (failure) => process.stderr.write(`retrying: ${toCtl(failure).message}\n`),
  };
  try {
    return await call(hydfsClient(ctx), callOpts);
  } catch (err) {
    throw toCtl(err);
  }
}

// ---- calls -------------------------------------------------------------------------------------

/** Where a JSON call to hydfsd at `host` goes, in ctl's words. */
function jsonCall(ctx: Ctx, path: string, host: string) {
  return { what: `${path.split("?")[0]!.slice(1)} at ${host}`, host, transportPrefix: `hydfsd at ${host}:${ctx.cfg.ports.hydfs}` };
}

/**
 * One JSON call to hydfsd at `host`. A 503 is retried (see ctlRules) unless `retry503` is
 * false: a call the node does under a fresh sequence number each time (multiappend_local) could
 * apply twice if a 503 came after some replicas stored it.
 */
export function callJson(ctx: Ctx, method: string, path: string, host = ctx.host, retry503 = true): Promise<any> {
  const where = jsonCall(ctx, path, host);
  return ctlCall(ctx, where, { retry503, retryTransport: false }, (client, opts) => client.json(where.what, method, path, opts));
}

/** One typed call of the client to hydfsd at `host` (`route` names it in errors), retried as callJson. */
export function hydfsCall<T>(
  ctx: Ctx,
  route: string,
  call: (client: HydfsClient, opts: CallOptions) => Promise<T>,
  host = ctx.host,
  retry503 = true,
): Promise<T> {
  return ctlCall(ctx, jsonCall(ctx, route, host), { retry503, retryTransport: false }, call);
}
