/**
 * ctl HyDFS commands. The "client" of per-client order and read-my-writes is the user of ctl on
 * this machine: a stable client id and a sequence counter live in the user's state directory
 * (RAINSTORM_CTL_STATE, default ~/.rainstorm/ctl-client.json), so `ctl append` twice in a row is
 * one client appending twice, and a retried append reuses its sequence number (applied once).
 * An answer with `duplicate: true` means the servers already had that (client, seq) with these
 * very bytes and wrote nothing new; ctl says so instead of reporting a write. The same (client,
 * seq) with other bytes is refused by the servers (409) and ctl prints their message.
 *
 * A 503 (the node cannot serve right now: its membership view is not current yet, or too few
 * replicas answered) is retried a few times with backoff within --timeout, saying
 * `retrying: <error>` on stderr each time (see ctlRules). Every call goes through hydfs/client.ts.
 */
import { defineCommand } from "citty";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { answerError, type CallOptions, HydfsCallError, HydfsClient, type RetryRules, writePath } from "../hydfs/client.ts";
import { OPS_HEADER, SIZE_HEADER, type WriteAnswer } from "../hydfs/model.ts";
import { whyFailed } from "../shared/http.ts";
import { CTL_RETRY, nextPauseMs } from "../shared/retry.ts";
import { commonArgs, type Ctx, makeCtx, nodeHost, print, table } from "./context.ts";
import { CtlError, CtlHttpError } from "./errors.ts";

// ---- client identity -----------------------------------------------------------------------------

export function clientStatePath(): string {
  return process.env.RAINSTORM_CTL_STATE ?? join(homedir(), ".rainstorm", "ctl-client.json");
}

/** Take the next sequence number under a lock directory, so concurrent ctl runs never share one. */
export async function nextClientSeq(path = clientStatePath()): Promise<{ clientId: string; seq: number }> {
  mkdirSync(dirname(path), { recursive: true });
  const lock = `${path}.lock`;
  const deadline = performance.now() + 5000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than 10 s belongs to a ctl that died holding it.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) rmdirSync(lock);
      } catch {}
      if (performance.now() > deadline) throw new CtlError(`client state ${path} is locked by another ctl (remove ${lock} if none runs)`);
      await Bun.sleep(20);
    }
  }
  try {
    const state = existsSync(path)
      ? (JSON.parse(readFileSync(path, "utf8")) as { clientId: string; seq: number })
      : { clientId: `ctl-${randomUUID()}`, seq: 0 };
    state.seq++;
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
    return state;
  } finally {
    rmdirSync(lock);
  }
}

// ---- transport ---------------------------------------------------------------------------------

/** The hydfsd of `host` (ctl talks to one node: --node, or the node a command names). */
function hydfsBase(ctx: Ctx, host: string): string {
  return `http://${host}:${ctx.cfg.ports.hydfs}`;
}

/** ctl's HyDFS client: every call names its node (`at`), and its rules are ctlRules. */
function hydfsClient(ctx: Ctx): HydfsClient {
  return new HydfsClient({ http: ctx.http, bases: () => [hydfsBase(ctx, ctx.host)], rules: ctlRules(ctx, { retry503: true, retryTransport: false }) });
}

/** A progress line on stderr for transfers over PROGRESS_MIN_BYTES. */
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

function progress(label: string, total: number | undefined) {
  const t0 = performance.now();
  let done = 0;
  let last = 0;
  const show = total === undefined || total >= PROGRESS_MIN_BYTES;
  const render = (final: boolean) => {
    if (!show) return;
    const mb = (n: number) => (n / 1048576).toFixed(1);
    const secs = (performance.now() - t0) / 1000;
    const pct = total ? ` ${Math.floor((100 * done) / Math.max(1, total))}%` : "";
    process.stderr.write(
      `\r${label}${pct} ${mb(done)}${total ? `/${mb(total)}` : ""} MB ${(done / 1048576 / Math.max(secs, 0.001)).toFixed(0)} MB/s${final ? "\n" : ""}`,
    );
  };
  return {
    add(n: number) {
      done += n;
      if (performance.now() - last > 250) {
        last = performance.now();
        if (done >= PROGRESS_MIN_BYTES || total !== undefined) render(false);
      }
    },
    end() {
      if (done >= PROGRESS_MIN_BYTES) render(true);
    },
  };
}

/** Abort when no byte moved for `idleMs`: big transfers may take long, stalled ones may not. */
function idleGuard(idleMs: number) {
  const ctrl = new AbortController();
  let timer = setTimeout(() => ctrl.abort(), idleMs);
  return {
    signal: ctrl.signal,
    touch() {
      clearTimeout(timer);
      timer = setTimeout(() => ctrl.abort(), idleMs);
    },
    done() {
      clearTimeout(timer);
    },
  };
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

/** CTL_RETRY (shared/retry.ts) in the words ctl's tests use: attempts of one call whose node answers 503. */
export const CTL_RETRY_ATTEMPTS = CTL_RETRY.maxAttempts;
/** Pause before the first retry; doubles before each further one, up to CTL_RETRY_MAX_PAUSE_MS. */
export const CTL_RETRY_FIRST_PAUSE_MS = CTL_RETRY.firstBackoffMs;
export const CTL_RETRY_MAX_PAUSE_MS = CTL_RETRY.maxBackoffMs;

/**
 * The pause before the next attempt after `failed` failed ones (1 = only the first), or
 * undefined to give up: out of attempts, or the retry would start after `budgetMs` (--timeout)
 * since the first attempt.
 */
export function retryPauseMs(failed: number, elapsedMs: number, budgetMs: number): number | undefined {
  return nextPauseMs({ ...CTL_RETRY, deadlineMs: budgetMs }, failed, elapsedMs);
}

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
async function ctlCall<T>(
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
function hydfsCall<T>(ctx: Ctx, route: string, call: (client: HydfsClient, opts: CallOptions) => Promise<T>, host = ctx.host, retry503 = true): Promise<T> {
  return ctlCall(ctx, jsonCall(ctx, route, host), { retry503, retryTransport: false }, call);
}

/** What a create or append answered, with the (client, seq) it was sent under. */
export interface Uploaded {
  /** The server's JSON answer, as --json prints it. */
  answer: WriteAnswer;
  clientId: string;
  seq: number;
}

/** The human line for a create or append: a duplicate is named as such, never as a write. */
export function describeUpload(kind: "create" | "append", up: Uploaded): string {
  const r = up.answer;
  if (r.duplicate === true) return `already applied: ${kind} seq ${up.seq} of ${r.name} was a duplicate (nothing new written)`;
  return kind === "create"
    ? `created ${r.name} (${r.size} bytes) on ${r.replicas.join(", ")}`
    : `appended ${r.size} bytes to ${r.name} (acknowledged by ${r.acked.join(", ")})`;
}

/**
 * Upload a local file as create or append. Every attempt sends the same (client, seq) with the
 * file read again from its start, so the servers apply it at most once however often it is
 * retried: after a 503 and once after a transport error (ctlRules).
 */
export async function upload(ctx: Ctx, kind: "create" | "append", local: string, remote: string): Promise<Uploaded> {
  if (!existsSync(local) || !statSync(local).isFile()) throw new CtlError(`local file ${JSON.stringify(local)} not found`);
  const size = statSync(local).size;
  const { clientId, seq } = await nextClientSeq();
  const what = `${kind} ${remote}`;
  const where = { what, host: ctx.host, transportPrefix: `${what} via ${ctx.host}` };
  const answer = await ctlCall(ctx, where, { retry503: true, retryTransport: true }, (client, opts) =>
    client.insist(
      what,
      async (base) => {
        const bar = progress(what, size);
        const guard = idleGuard(ctx.timeoutMs);
        const body = Bun.file(local)
          .stream()
          .pipeThrough(
            new TransformStream<Uint8Array, Uint8Array>({
              transform(chunk, out) {
                bar.add(chunk.length);
                guard.touch();
                out.enqueue(chunk);
              },
            }),
          );
        try {
          const res = await client.request(base, "POST", writePath(kind, remote, clientId, seq), {
            headers: { "content-length": String(size) },
            body,
            deadline: { signal: guard.signal },
          });
          if (!res.ok) throw await answerError(what, res);
          bar.end();
          return (await res.json()) as WriteAnswer;
        } catch (err) {
          throw stalledOr(err, guard, ctx);
        } finally {
          guard.done();
        }
      },
      opts,
    ),
  );
  return { answer, clientId, seq };
}

/** A transport failure of a streaming call: `stalled for <ms>` when its idle guard fired. */
function stalledOr(err: unknown, guard: { signal: AbortSignal }, ctx: Ctx): unknown {
  if (err instanceof HydfsCallError || err instanceof CtlError) return err;
  const reason = guard.signal.aborted ? `stalled for ${ctx.timeoutMs} ms` : whyFailed(err);
  return new HydfsCallError(reason, { reason, cause: err });
}

/**
 * Download to `local` through a temp file and a rename, so a failed get leaves nothing
 * half-written. A 503 before any byte is retried (ctlRules); a transfer cut short is not.
 */
export function download(ctx: Ctx, path: string, local: string, label: string, host = ctx.host): Promise<{ size: number; ops: number }> {
  const where = { what: label, host, transportPrefix: `${label} via ${host}` };
  return ctlCall(ctx, where, { retry503: true, retryTransport: false }, (client, opts) =>
    client.insist(label, (base) => downloadOnce(ctx, client, base, path, local, label), opts),
  );
}

async function downloadOnce(ctx: Ctx, client: HydfsClient, base: string, path: string, local: string, label: string): Promise<{ size: number; ops: number }> {
  const guard = idleGuard(ctx.timeoutMs);
  const tmp = `${local}.part-${process.pid}`;
  try {
    const res = await client.request(base, "GET", path, { deadline: { signal: guard.signal } });
    if (!res.ok) throw await answerError(label, res);
    const total = Number(res.headers.get(SIZE_HEADER) ?? NaN);
    const bar = progress(label, Number.isFinite(total) ? total : undefined);
    const writer = Bun.file(tmp).writer();
    let size = 0;
    for await (const chunk of res.body!) {
      guard.touch();
      writer.write(chunk);
      size += chunk.length;
      bar.add(chunk.length);
    }
    await writer.end();
    if (Number.isFinite(total) && size !== total) throw new CtlError(`${label}: got ${size} bytes, expected ${total}`);
    renameSync(tmp, local);
    bar.end();
    return { size, ops: Number(res.headers.get(OPS_HEADER) ?? 0) };
  } catch (err) {
    try {
      if (existsSync(tmp)) Bun.spawnSync(["rm", "-f", tmp]);
    } catch {}
    throw stalledOr(err, guard, ctx);
  } finally {
    guard.done();
  }
}

// ---- commands ----------------------------------------------------------------------------------

const pos = (description: string) => ({ type: "positional" as const, description, required: true as const });

export const createCmd = defineCommand({
  meta: { name: "create", description: "create <local> <remote>: store a local file as a new HyDFS file (fails if the name exists)" },
  args: { ...commonArgs, local: pos("local file"), remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const up = await upload(ctx, "create", args.local, args.remote);
    print(ctx, up.answer, () => describeUpload("create", up));
  },
});

export const appendCmd = defineCommand({
  meta: { name: "append", description: "append <local> <remote>: append a local file to an existing HyDFS file" },
  args: { ...commonArgs, local: pos("local file"), remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const up = await upload(ctx, "append", args.local, args.remote);
    print(ctx, up.answer, () => describeUpload("append", up));
  },
});

export const deleteCmd = defineCommand({
  meta: { name: "delete", description: "delete <remote>: remove a HyDFS file from all its replicas (it cannot come back; a later create starts a new file)" },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/delete", (c, o) => c.delete(args.remote, o));
    print(ctx, r, () => `deleted ${r.name} on ${r.replicas.join(", ")}`);
  },
});

export const getCmd = defineCommand({
  meta: { name: "get", description: "get <remote> <local>: fetch a HyDFS file (every append acknowledged before the get is in it)" },
  args: { ...commonArgs, remote: pos("HyDFS file name"), local: pos("local file to write") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await download(ctx, `/get?name=${encodeURIComponent(args.remote)}`, args.local, `get ${args.remote}`);
    print(ctx, r, () => `wrote ${r.size} bytes (${r.ops} operations) to ${args.local}`);
  },
});

export const getFromReplicaCmd = defineCommand({
  meta: { name: "getfromreplica", description: "getfromreplica <node> <remote> <local>: the raw copy one replica holds" },
  args: { ...commonArgs, replica: pos("the replica node: alias, name or address"), remote: pos("HyDFS file name"), local: pos("local file to write") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const host = await nodeHost(ctx, args.replica, "getfromreplica node");
    const r = await download(ctx, `/getfromreplica?name=${encodeURIComponent(args.remote)}`, args.local, `getfromreplica ${args.remote}`, host);
    print(ctx, r, () => `wrote ${r.size} bytes (${r.ops} operations) from ${host} to ${args.local}`);
  },
});

export const mergeCmd = defineCommand({
  meta: { name: "merge", description: "merge <remote>: make all replicas identical (same operations, same order)" },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/merge", (c, o) => c.merge(args.remote, o));
    print(ctx, r, () => (r.updated.length ? `merged ${r.name}: updated ${r.updated.join(", ")}` : `merged ${r.name}: replicas already identical`));
  },
});

export const lsCmd = defineCommand({
  meta: { name: "ls", description: "ls <remote>: the file's token and its replicas" },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/ls", (c, o) => c.ls(args.remote, o));
    print(ctx, r, () => `${r.name} token ${r.token}\n${table([["REPLICA", "TOKEN"], ...r.replicas.map((x: any) => [x.id, x.token])])}`);
  },
});

export const listStoreCmd = defineCommand({
  meta: { name: "liststore", description: "files stored on a node (--node), with the node's token" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/liststore", (c, o) => c.liststore(o));
    print(
      ctx,
      r,
      () =>
        `${r.node ?? r.host} token ${r.token}\n${r.files.length ? table([["FILE", "TOKEN", "BYTES"], ...r.files.map((f: any) => [f.name, f.token, String(f.size)])]) : "(no files)"}`,
    );
  },
});

export const listMemIdsCmd = defineCommand({
  meta: { name: "list_mem_ids", description: "ring members with their tokens, sorted by token" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/list_mem_ids", (c, o) => c.listMemIds(o));
    print(ctx, r, () => table([["TOKEN", "ID"], ...r.members.map((m: any) => [m.token, m.id])]));
  },
});

export const multiAppendCmd = defineCommand({
  meta: {
    name: "multiappend",
    description: "multiappend <remote> <node...> <local...>: each node appends its own local file (from its local-files directory), all at once",
  },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const rest = (args._ as string[]).slice(1);
    if (rest.length === 0 || rest.length % 2 !== 0)
      throw new CtlError(`multiappend: expected <remote> then N nodes and N local names, got ${rest.length} arguments after the file name`);
    const half = rest.length / 2;
    const jobs: { host: string; local: string }[] = [];
    for (const [i, n] of rest.slice(0, half).entries()) jobs.push({ host: await nodeHost(ctx, n, "multiappend node"), local: rest[half + i]! });
    const results = await Promise.allSettled(
      // Not retried on 503: the node appends under a fresh sequence number each time, so a retry
      // after a 503 that some replicas had stored could append twice.
      jobs.map((j) => hydfsCall(ctx, "/multiappend_local", (c, o) => c.multiappendLocal(args.remote, j.local, o), j.host, false)),
    );
    const rows = results.map((r, i) => ({
      host: jobs[i]!.host,
      local: jobs[i]!.local,
      ok: r.status === "fulfilled",
      detail: r.status === "fulfilled" ? `${r.value.size} bytes` : (r.reason as Error).message,
    }));
    print(ctx, rows, () => table([["NODE", "LOCAL", "RESULT"], ...rows.map((r) => [r.host, r.local, r.ok ? `ok, ${r.detail}` : `FAILED: ${r.detail}`])]));
    if (rows.some((r) => !r.ok)) throw new CtlError(`multiappend: ${rows.filter((r) => !r.ok).length} of ${rows.length} appends failed`);
  },
});

export const multiCreateCmd = defineCommand({
  meta: { name: "multicreate", description: "multicreate <n> <local>: create n files <local>_1 .. <local>_n from one local file" },
  args: { ...commonArgs, n: pos("how many files"), local: pos("local file") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const n = Number(args.n);
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new CtlError(`multicreate: n ${JSON.stringify(args.n)}: expected an integer 1..10000`);
    const base = args.local.split("/").pop()!;
    const created: string[] = [];
    for (let i = 1; i <= n; i++) {
      const up = await upload(ctx, "create", args.local, `${base}_${i}`);
      created.push(up.answer.name);
      if (!ctx.json) console.log(up.answer.duplicate === true ? describeUpload("create", up) : `created ${up.answer.name} on ${up.answer.replicas.join(", ")}`);
    }
    if (ctx.json) console.log(JSON.stringify({ created }, null, 2));
  },
});

export const hydfsCommands = {
  create: createCmd,
  append: appendCmd,
  delete: deleteCmd,
  get: getCmd,
  getfromreplica: getFromReplicaCmd,
  merge: mergeCmd,
  ls: lsCmd,
  liststore: listStoreCmd,
  list_mem_ids: listMemIdsCmd,
  multiappend: multiAppendCmd,
  multicreate: multiCreateCmd,
};
