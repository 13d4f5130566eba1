/**
 * ctl's streamed HyDFS transfers: upload a local file as create or append, and download a file to
 * a local path, with a progress line for big transfers and an idle guard that aborts a stalled
 * one. Separate from hydfs.ts (the commands) because streaming bodies, progress and temp files
 * are their own concern; the calls themselves go through ctlCall (hydfs_call.ts).
 *
 * An answer with `duplicate: true` means the servers already had that (client, seq) with these
 * very bytes and wrote nothing new; ctl says so instead of reporting a write. The same (client,
 * seq) with other bytes is refused by the servers (409) and ctl prints their message.
 */
import { existsSync, renameSync, statSync } from "node:fs";
import { answerError, HydfsCallError, type HydfsClient, writePath } from "../hydfs/client.ts";
import { OPS_HEADER, SIZE_HEADER, type WriteAnswer } from "../hydfs/model.ts";
import { whyFailed } from "../shared/http.ts";
import { nextClientSeq } from "./client_state.ts";
import type { Ctx } from "./context.ts";
import { CtlError } from "./errors.ts";
import { ctlCall } from "./hydfs_call.ts";

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
