/**
 * Reading request and response bodies within a limit, while they stream: nothing is buffered
 * past the limit, whoever sends it.
 */

/** A body over its limit (maps to HTTP 413). */
export class BodyTooLarge extends Error {
  readonly status = 413;
}

/** The declared content-length of a request or response, or undefined when it has none (chunked). */
export function declaredLength(headers: Headers): number | undefined {
  const raw = headers.get("content-length");
  if (raw === null) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Read a whole body, but never more than `maxBytes` of it: a declared content-length above the
 * limit is refused before a byte is read, and a body that passes the limit while streaming is
 * cancelled at once (the rest is never read). Throws BodyTooLarge naming `what` and the limit.
 */
export async function readLimited(body: ReadableStream<Uint8Array> | null, maxBytes: number, what: string, declared?: number): Promise<Uint8Array> {
  const tooLarge = (got: string) => new BodyTooLarge(`${what}: ${got}; expected at most ${maxBytes} bytes`);
  if (declared !== undefined && declared > maxBytes) {
    // Not read at all: cancelling tells the sender to stop. Not awaited: the cancel of one branch
    // of a tee (a cloned request) settles only once the other branch is cancelled too.
    void body?.cancel().catch(() => {});
    throw tooLarge(`content-length ${declared}`);
  }
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      void reader.cancel().catch(() => {});
      throw tooLarge(`more than ${maxBytes} bytes sent`);
    }
    parts.push(value);
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
