/**
 * The files a job touches, as the leader uses them: src (does it exist, its lines), dest
 * (created, then appended idempotently) and the exactly-once task logs (removed after the job).
 * HydfsJobFiles reaches them through this node's hydfsd (the calls leader.ts always made); the
 * simulator supplies an in-memory store with the same semantics.
 */
import { type HydfsCallError, HydfsClient, ONE_ATTEMPT } from "../hydfs/client.ts";
import type { ClusterHttp } from "../shared/http.ts";
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
  /** The whole text of `name`, or undefined when it does not exist (journals, the job index). */
  text(name: string): Promise<string | undefined>;
  /** A writer of `name` as client `clientId` (its sequence numbers make retries idempotent). */
  writer(name: string, clientId: string): FileWriter;
  /** Remove `name`; one that does not exist is fine. */
  remove(name: string): Promise<void>;
}

/** The store could not answer (503 to the submitter). */
export class JobFilesError extends Error {}

export class HydfsJobFiles implements JobFiles {
  /** One attempt per call: the leader's own callers retry (the writers retry under DAEMON_RULES). */
  private readonly client: HydfsClient;

  constructor(
    /** This node's hydfsd, "http://host:port". */
    private readonly base: string,
    private readonly http: ClusterHttp,
    private readonly timeoutMs: number,
  ) {
    this.client = new HydfsClient({ http, bases: () => [base], rules: ONE_ATTEMPT, callTimeoutMs: timeoutMs });
  }

  async exists(name: string): Promise<boolean> {
    try {
      return (await this.client.stat(name)) !== undefined;
    } catch (err) {
      const e = err as HydfsCallError;
      throw new JobFilesError(e.status === undefined ? `HyDFS unreachable on this node: ${e.reason}` : `HyDFS ${e.message}`);
    }
  }

  async lines(name: string): Promise<AsyncIterable<string>> {
    // The answer must start within the HyDFS timeout; the body then streams as long as the job reads it.
    const headersDue = new AbortController();
    const timer = setTimeout(() => headersDue.abort(new Error(`no answer from HyDFS within ${this.timeoutMs} ms`)), this.timeoutMs);
    const res = await this.client.open(name, { deadline: () => ({ signal: headersDue.signal }) }).finally(() => clearTimeout(timer));
    if (!res) throw new Error(`reading ${name}: 404 no such file`);
    return readLines(res.body!);
  }

  text(name: string): Promise<string | undefined> {
    return this.client.readText(name);
  }

  writer(name: string, clientId: string): FileWriter {
    return new HydfsClient({ http: this.http, bases: () => [this.base], clientId }).file(name);
  }

  async remove(name: string): Promise<void> {
    // 404: the task never wrote a log (it took no input), or it is already gone.
    await this.client.delete(name).catch((err: HydfsCallError) => {
      if (err.status !== 404) throw err;
    });
  }
}
