/**
 * The files a job touches, as the leader uses them: src (does it exist, its lines), dest
 * (created, then appended idempotently) and the exactly-once task logs (removed after the job).
 * HydfsJobFiles reaches them through this node's hydfsd (the calls leader.ts always made); the
 * simulator supplies an in-memory store with the same semantics.
 */
import { HydfsWriter } from "../hydfs/writer.ts";
import { type ClusterHttp, whyFailed } from "../shared/http.ts";
import { readLines } from "../shared/lines.ts";

/** Appends to one file: create (fails if it exists) or append, each applied once however often retried. */
export interface FileWriter {
  write(kind: "create" | "append", text: string): Promise<void>;
}

export interface JobFiles {
  /** Whether `name` exists; a store that cannot answer throws a JobFilesError. */
  exists(name: string): Promise<boolean>;
  /** The lines of `name` (without "\n"), streamed. */
  lines(name: string): Promise<AsyncIterable<string>>;
  /** A writer of `name` as client `clientId` (its sequence numbers make retries idempotent). */
  writer(name: string, clientId: string): FileWriter;
  /** Remove `name`; one that does not exist is fine. */
  remove(name: string): Promise<void>;
}

/** The store could not answer (503 to the submitter). */
export class JobFilesError extends Error {}

export class HydfsJobFiles implements JobFiles {
  constructor(
    /** This node's hydfsd, "http://host:port". */
    private readonly base: string,
    private readonly http: ClusterHttp,
    private readonly timeoutMs: number,
  ) {}

  async exists(name: string): Promise<boolean> {
    let res: Response;
    try {
      res = await this.http.fetch(`${this.base}/stat?name=${encodeURIComponent(name)}`, { timeoutMs: this.timeoutMs });
    } catch (err) {
      throw new JobFilesError(`HyDFS unreachable on this node: ${whyFailed(err)}`);
    }
    if (res.status === 404) return false;
    if (!res.ok) throw new JobFilesError(`HyDFS stat of ${name}: ${res.status} ${await res.text()}`);
    return true;
  }

  async lines(name: string): Promise<AsyncIterable<string>> {
    // The answer must start within the HyDFS timeout; the body then streams as long as the job reads it.
    const headersDue = new AbortController();
    const timer = setTimeout(() => headersDue.abort(new Error(`no answer from HyDFS within ${this.timeoutMs} ms`)), this.timeoutMs);
    const res = await this.http.fetch(`${this.base}/get?name=${encodeURIComponent(name)}`, { signal: headersDue.signal }).finally(() => clearTimeout(timer));
    if (!res.ok) throw new Error(`reading ${name}: ${res.status} ${await res.text()}`);
    return readLines(res.body!);
  }

  writer(name: string, clientId: string): FileWriter {
    return new HydfsWriter(() => [this.base], this.http, name, clientId);
  }

  async remove(name: string): Promise<void> {
    const res = await this.http.fetch(`${this.base}/delete?name=${encodeURIComponent(name)}`, { method: "POST", timeoutMs: this.timeoutMs });
    // 404: the task never wrote a log (it took no input), or it is already gone.
    if (!res.ok && res.status !== 404) throw new Error(`${name}: ${res.status} ${await res.text()}`);
  }
}
