/**
 * HTTP helpers shared by daemons and ctl: fetch with a deadline, Elysia's validation errors
 * turned into a 400 that names the field and what was expected, and the bearer-token hook.
 */
import { bearerOk } from "./auth.ts";

/** fetch that gives up after `timeoutMs` with an error naming the URL. */
export async function fetchWithTimeout(url: string, init: RequestInit = {}, timeoutMs = 3000): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    if (e.name === "TimeoutError" || e.name === "AbortError") throw new Error(`${url}: no answer within ${timeoutMs} ms`);
    throw new Error(`${url}: ${e.message}`);
  }
}

/** Shape of the JSON error body every daemon returns. */
export interface ErrorBody {
  error: string;
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
 * with one readable line, unknown paths 404, and the caller's own errors keep their status.
 */
export function jsonErrorHook({ code, error, set }: { code: unknown; error: unknown; set: { status?: number | string } }): ErrorBody | undefined {
  if (code === "VALIDATION") {
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
 * An Elysia onRequest hook that demands the cluster's bearer token on the requests `protects`
 * selects. It runs before body parsing and validation, so an unauthenticated caller learns
 * nothing about the request's shape (401, never 400).
 */
export function bearerHook(secret: string, protects: (path: string, method: string) => boolean) {
  return ({ request, set }: { request: Request; set: { status?: number | string } }): ErrorBody | undefined => {
    if (!secret) return undefined;
    const path = new URL(request.url).pathname;
    if (!protects(path, request.method)) return undefined;
    if (bearerOk(secret, request.headers.get("authorization"))) return undefined;
    set.status = 401;
    return { error: "missing or wrong bearer token (Authorization: Bearer <cluster_secret>)" };
  };
}
