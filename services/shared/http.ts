/**
 * HTTP helpers shared by daemons and ctl: fetch with a deadline, Elysia's validation errors
 * turned into a 400 that names the field and what was expected, the one signing client and the
 * deny-by-default authentication hook.
 */
import { BodyTooLarge, declaredLength, readLimited } from "./body.ts";
import type { MetricsText } from "./metrics.ts";
import { bodyDigest, RequestSigner, RequestVerifier, requestTarget, SIGNED_BODY_MAX_BYTES, targetPath, UNSIGNED_BODY } from "./auth.ts";

/** A failed call: `why` is the short reason (timeout, refused, ...), the message names the URL too. */
export class HttpCallError extends Error {
  constructor(
    readonly url: string,
    readonly why: string,
    /** The system error code when there is one ("ECONNREFUSED": nothing listened, the request went nowhere). */
    readonly code?: string,
  ) {
    super(`${url}: ${why}`);
  }
}

/** The short reason of a failed call (without the URL the caller names in its own words). */
export function whyFailed(err: unknown): string {
  return err instanceof HttpCallError ? err.why : (err as Error).message;
}

/** A deadline for the call: a timeout, or the caller's own signal (which must carry one). */
export type Deadline = { timeoutMs: number; signal?: undefined } | { signal: AbortSignal; timeoutMs?: undefined };

/**
 * The one HTTP client of the cluster: ctl, the daemons, the tests and the benchmarks make every
 * call through it. With a cluster secret it signs each request (see auth.ts; the secret is never
 * sent); every call has a deadline; a network error names the URL.
 */
export class ClusterHttp {
  private readonly signer?: RequestSigner;

  constructor(secret: string, nowMs: () => number = Date.now) {
    if (secret) this.signer = new RequestSigner(secret, nowMs);
  }

  /** The credential headers of one request (none for an open cluster). A stream body is sent unsigned. */
  authHeaders(method: string, url: string, body?: RequestInit["body"]): Record<string, string> {
    if (!this.signer) return {};
    const signable = typeof body === "string" || (body instanceof Uint8Array && body.length <= SIGNED_BODY_MAX_BYTES);
    const digestOf = body === undefined || body === null ? "" : signable ? (body as string | Uint8Array) : UNSIGNED_BODY;
    return { authorization: this.signer.authorization(method, url, digestOf) };
  }

  async fetch(url: string, init: Omit<RequestInit, "signal"> & Deadline): Promise<Response> {
    const { timeoutMs, signal, ...rest } = init;
    const method = (rest.method ?? "GET").toUpperCase();
    const headers = new Headers(rest.headers);
    for (const [k, v] of Object.entries(this.authHeaders(method, url, rest.body))) headers.set(k, v);
    try {
      return await fetch(url, { ...rest, method, headers, signal: signal ?? AbortSignal.timeout(timeoutMs!) });
    } catch (err) {
      const e = err as Error;
      const why =
        e.name === "TimeoutError"
          ? `no answer within ${timeoutMs ?? "the caller's deadline"} ms`
          : e.name === "AbortError"
            ? "aborted (deadline passed)"
            : e.message;
      const code = (err as { code?: unknown }).code;
      throw new HttpCallError(url, why, typeof code === "string" ? code : undefined);
    }
  }
}

/** Shape of the JSON error body every daemon returns. */
export interface ErrorBody {
  error: string;
}

/**
 * A daemon's error answer: its status, the message (the JSON body's `error`, else the text, else
 * `HTTP <status>`) and the parsed body (JSON when it parses, else the text). Every client reads
 * error answers through this, so a daemon's words reach the user unchanged.
 */
export async function readError(res: Response): Promise<{ status: number; message: string; body: unknown }> {
  const text = await res.text().catch(() => "");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  const error = (body as { error?: unknown } | null)?.error;
  const message = typeof error === "string" ? error : text.trim() || `HTTP ${res.status}`;
  return { status: res.status, message, body };
}

/** Whether an HTTP status is worth another attempt (at this or another node): any 5xx. 4xx are the caller's. */
export function retryableStatus(status: number): boolean {
  return status >= 500 && status <= 599;
}

/**
 * Elysia validation error -> one readable line: `field: expected X, got Y`.
 * Works on the error object Elysia passes to onError for code "VALIDATION".
 */
export function describeValidationError(error: unknown): string {
  const e = error as { all?: { path?: string; summary?: string; message?: string; value?: unknown }[]; message?: string };
  const first = e.all?.[0];
  if (first) {
    const field = (first.path ?? "").replace(/^\//, "").replace(/\//g, ".") || "body";
    return `${field}: ${first.summary ?? first.message ?? "invalid"} (got ${JSON.stringify(first.value)})`;
  }
  return e.message ?? "invalid request";
}

/**
 * The onError hook every daemon's Elysia instance uses: validation and parse failures become 400
 * with one readable line (500 for an answer that fails its route's response schema), unknown
 * paths 404, and the caller's own errors keep their status.
 */
export function jsonErrorHook({ code, error, set }: { code: unknown; error: unknown; set: { status?: number | string } }): ErrorBody | undefined {
  if (code === "VALIDATION") {
    // An answer that does not fit its route's declared shape is the daemon's bug, not the caller's.
    if ((error as { type?: unknown })?.type === "response") {
      set.status = 500;
      return { error: `answer does not fit its declared shape: ${describeValidationError(error)}` };
    }
    set.status = 400;
    return { error: describeValidationError(error) };
  }
  if (code === "PARSE") {
    set.status = 400;
    return { error: "body: expected a JSON object" };
  }
  if (code === "NOT_FOUND") {
    set.status = 404;
    return { error: "no such endpoint; see /help" };
  }
  const status = (error as { status?: unknown })?.status;
  if (typeof status === "number" && status >= 400 && status < 600) {
    set.status = status;
    return { error: (error as Error).message };
  }
  return undefined;
}

/**
 * The Elysia onRequest hook of every daemon: with a cluster secret, **every** request needs a valid
 * credential, except the routes listed in `publicRoutes` ("GET /health"). Deny by default: the
 * hook never guesses which handler a URL reaches. A request is public only when its method and raw
 * path (undecoded, unnormalized: what the router itself is given) equal a listed route exactly, so
 * a variant (`/health/`, `//health`, `/%68ealth`) is simply not public and needs the credential.
 * It runs before routing, body parsing and validation, so an unauthenticated caller learns nothing
 * about a request's shape (401, never 400) and no body is read for it. A signed body digest is
 * checked here too, on a copy of the body read within SIGNED_BODY_MAX_BYTES while it streams.
 */
export function authHook(verifier: RequestVerifier | undefined, publicRoutes: readonly string[]) {
  const open = new Set(publicRoutes);
  return async ({ request, set }: { request: Request; set: { status?: number | string } }): Promise<ErrorBody | undefined> => {
    if (!verifier) return undefined;
    const target = requestTarget(request.url);
    if (open.has(`${request.method} ${targetPath(target)}`)) return undefined;
    const result = verifier.verify(request.method, target, request.headers.get("authorization"));
    if (!result.ok) {
      set.status = result.status;
      return { error: result.reason };
    }
    if (result.body === UNSIGNED_BODY) return undefined;
    let bytes: Uint8Array;
    try {
      // A copy of the body (the handler reads the original), never more than the signed limit.
      bytes = await readLimited(request.body ? request.clone().body : null, SIGNED_BODY_MAX_BYTES, "signed body", declaredLength(request.headers));
    } catch (err) {
      if (!(err instanceof BodyTooLarge)) throw err;
      set.status = 413;
      return { error: err.message };
    }
    if (bodyDigest(bytes) !== result.body) {
      set.status = 401;
      return { error: "body does not match the credential's digest" };
    }
    return undefined;
  };
}

/** The one public route of every daemon: a liveness probe that says nothing about the cluster. */
export const PUBLIC_ROUTES = ["GET /health"] as const;

/** `<prefix>_http_refused_total{reason}`: requests the auth hook refused, so an operator sees probing or clock trouble. */
export function authMetrics(m: MetricsText, prefix: string, verifier: RequestVerifier | undefined): void {
  const r = verifier?.refused;
  m.series(
    `${prefix}_http_refused_total`,
    "counter",
    "HTTP requests refused by authentication, by reason (missing, bad MAC, stale timestamp, replayed nonce, replay cache full).",
    [
      ['{reason="missing"}', r?.missing ?? 0],
      ['{reason="mac"}', r?.mac ?? 0],
      ['{reason="stale"}', r?.stale ?? 0],
      ['{reason="replay"}', r?.replay ?? 0],
      ['{reason="full"}', r?.full ?? 0],
    ],
  );
}

/** The verifier of a daemon on `host` (undefined for an open cluster). */
export function requestVerifier(secret: string, host: string): RequestVerifier | undefined {
  return secret ? new RequestVerifier(secret, host) : undefined;
}
