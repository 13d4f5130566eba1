/**
 * One writer of one HyDFS file, for daemons that write to HyDFS (RainStorm's sink and task
 * logs): a client id with its own sequence numbers, so a create or append retried after a
 * timeout reuses its number and HyDFS applies it once, and a list of coordinators to try in
 * order (the node's own hydfsd first; any other node can coordinate the same call).
 */
import type { ClusterHttp } from "../shared/http.ts";

/** One read or write call; a task log append or a sink batch is small, so this bounds a stuck coordinator. */
const WRITER_TIMEOUT_MS = 30_000;

export class HydfsWriteError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export class HydfsWriter {
  private seq = 0;

  constructor(
    /** Coordinator base URLs, tried in order when one is unreachable. */
    private readonly bases: () => string[],
    private readonly http: ClusterHttp,
    readonly name: string,
    private readonly clientId: string,
  ) {}

  /** The first answer from the coordinators in order; only unreachable ones are skipped. */
  private async anyBase(call: (base: string) => Promise<Response>): Promise<Response> {
    let last: Error | undefined;
    for (const base of this.bases()) {
      try {
        return await call(base);
      } catch (err) {
        last = err as Error;
      }
    }
    throw last ?? new Error("no HyDFS coordinator known");
  }

  /** The file's bytes as text, or undefined when it does not exist. */
  async read(): Promise<string | undefined> {
    const res = await this.anyBase((base) => this.http.fetch(`${base}/get?name=${encodeURIComponent(this.name)}`, { timeoutMs: WRITER_TIMEOUT_MS }));
    if (res.ok) return res.text();
    if (res.status === 404) return undefined;
    throw new HydfsWriteError(`reading ${this.name}: ${res.status} ${await res.text()}`, res.status);
  }

  /** create (409 when the name exists) or append, retried with the same sequence number. */
  async write(kind: "create" | "append", body: string): Promise<void> {
    const seq = ++this.seq;
    const path = `/${kind}?name=${encodeURIComponent(this.name)}&client=${encodeURIComponent(this.clientId)}&seq=${seq}`;
    let last = "";
    let status: number | undefined;
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const res = await this.anyBase((base) => this.http.fetch(`${base}${path}`, { method: "POST", body, timeoutMs: WRITER_TIMEOUT_MS }));
        if (res.ok) return;
        status = res.status;
        last = `${res.status} ${await res.text()}`;
        if (res.status < 500) break;
      } catch (err) {
        last = (err as Error).message;
      }
      await Bun.sleep(100 * attempt);
    }
    throw new HydfsWriteError(`${kind} of ${this.name}: ${last}`, status);
  }
}
