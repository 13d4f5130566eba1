/**
 * HyDFS for tests and benchmarks: hydfs/client.ts (the one client of hydfsd's API) against node k
 * of a LocalCluster, one attempt per call (a test looks at every answer), returning bytes and
 * JSON. An error answer throws an Error with `status` and the parsed `body`; no answer at all
 * throws one without a status.
 */
import { answerError, HydfsCallError, HydfsClient, ONE_ATTEMPT, writePath } from "../hydfs/client.ts";
import type { ListMemIdsAnswer, LsAnswer, MergeAnswer, WriteAnswer } from "../hydfs/model.ts";
import { tokenOf } from "../hydfs/ring.ts";
import { type LocalCluster, waitFor } from "./cluster.ts";

export class HydfsTestClient {
  private readonly client: HydfsClient;

  constructor(
    private readonly c: LocalCluster,
    readonly clientId = `test-${crypto.randomUUID()}`,
    timeoutMs = 30_000,
  ) {
    this.client = new HydfsClient({ http: c.http, bases: () => [], clientId, rules: ONE_ATTEMPT, callTimeoutMs: timeoutMs });
  }

  /** Reserve this client's next sequence number (to send one append twice, as a retry would). */
  nextSeq(): number {
    return this.client.nextSeq();
  }

  /** One request to node k, as is: no status check. */
  request(k: number, method: string, path: string, body?: Bun.BodyInit): Promise<Response> {
    return this.client.request(this.c.hydfsUrl(k), method, path, { body });
  }

  /** One JSON call to node k (a body, if any, is sent as is). */
  async json(k: number, method: string, path: string, body?: Bun.BodyInit): Promise<any> {
    const what = `${method} ${path} at node ${k}`;
    try {
      const res = await this.request(k, method, path, body);
      if (!res.ok) throw await answerError(what, res);
      return await res.json();
    } catch (err) {
      throw this.failed(err, what);
    }
  }

  /** create or append through coordinator k; `seq` defaults to this client's next number. */
  write(k: number, kind: "create" | "append", name: string, body: Bun.BodyInit, seq = this.nextSeq(), clientId = this.clientId): Promise<WriteAnswer> {
    return this.json(k, "POST", writePath(kind, name, clientId, seq), body);
  }

  async get(k: number, name: string): Promise<Uint8Array> {
    try {
      const res = await this.client.open(name, { at: this.c.hydfsUrl(k) });
      if (!res) throw new HydfsCallError(`get ${name} at node ${k}: 404 no such file`, { status: 404, reason: "no such file" });
      return new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw this.failed(err, `get ${name} at node ${k}`);
    }
  }

  async getText(k: number, name: string): Promise<string> {
    return new TextDecoder().decode(await this.get(k, name));
  }

  /**
   * A quorum read through node k once it serves one: 503s (a view not current yet, too few
   * replicas answering) are waited out until `timeoutMs`; any other error fails at once.
   */
  async getTextWhenServed(k: number, name: string, timeoutMs = 20_000): Promise<string> {
    const text = await waitFor(
      async () => {
        try {
          return await this.getText(k, name);
        } catch (err) {
          if ((err as { status?: number }).status === 503) return undefined;
          throw err;
        }
      },
      timeoutMs,
      `a quorum read of ${name} through node ${k}`,
    );
    return text!;
  }

  async fromReplica(k: number, name: string): Promise<Uint8Array | undefined> {
    try {
      const res = await this.client.openFromReplica(name, { at: this.c.hydfsUrl(k) });
      return res && new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw this.failed(err, `getfromreplica ${name} at node ${k}`);
    }
  }

  ls(k: number, name: string): Promise<LsAnswer> {
    return this.json(k, "GET", `/ls?name=${encodeURIComponent(name)}`);
  }

  async liststore(k: number): Promise<string[]> {
    return (await this.json(k, "GET", "/liststore")).files.map((f: { name: string }) => f.name);
  }

  listMemIds(k: number): Promise<ListMemIdsAnswer> {
    return this.json(k, "GET", "/list_mem_ids");
  }

  merge(k: number, name: string): Promise<MergeAnswer> {
    return this.json(k, "POST", `/merge?name=${encodeURIComponent(name)}`);
  }

  /** A failed call as tests read it: `<what>: <status> <hydfsd's message>` with `status`. */
  private failed(err: unknown, what: string): Error {
    if (!(err instanceof HydfsCallError)) return err as Error;
    return Object.assign(new Error(`${what}: ${err.status !== undefined ? `${err.status} ` : ""}${err.reason}`), { status: err.status, body: err.body });
  }
}

/**
 * The hosts that should hold `name`, in ring order: the first `n` members clockwise from its
 * token, computed here from the tokens hydfsd lists (list_mem_ids), as an oracle independent of
 * hydfs/ring.ts's Ring.
 */
export function ringOwners(members: readonly { host: string; token: string }[], name: string, n = 3): string[] {
  const ring = members.map((m) => ({ host: m.host, token: BigInt(`0x${m.token}`) })).sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
  const t = tokenOf(name);
  const start = Math.max(
    0,
    ring.findIndex((m) => m.token >= t),
  );
  return Array.from({ length: Math.min(n, ring.length) }, (_, i) => ring[(start + i) % ring.length]!.host);
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}
