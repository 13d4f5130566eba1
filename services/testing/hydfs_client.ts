/**
 * A minimal HyDFS client for tests and benchmarks: the same HTTP calls ctl makes, against node k
 * of a LocalCluster, returning bytes and JSON instead of printing.
 */
import { type LocalCluster, waitFor } from "./cluster.ts";

export class HydfsTestClient {
  private seq = 0;
  constructor(
    private readonly c: LocalCluster,
    readonly clientId = `test-${crypto.randomUUID()}`,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Reserve this client's next sequence number (to send one append twice, as a retry would). */
  nextSeq(): number {
    return ++this.seq;
  }

  async request(k: number, method: string, path: string, body?: Bun.BodyInit): Promise<Response> {
    return this.c.http.fetch(this.c.hydfsUrl(k, path), { method, body, timeoutMs: this.timeoutMs });
  }

  async json(k: number, method: string, path: string, body?: Bun.BodyInit): Promise<any> {
    const res = await this.request(k, method, path, body);
    const data = (await res.json()) as any;
    if (!res.ok) throw Object.assign(new Error(`${method} ${path} at node ${k}: ${res.status} ${data.error}`), { status: res.status, body: data });
    return data;
  }

  /** create or append through coordinator k; `seq` defaults to this client's next number. */
  write(k: number, kind: "create" | "append", name: string, body: Bun.BodyInit, seq = ++this.seq, clientId = this.clientId): Promise<any> {
    return this.json(k, "POST", `/${kind}?name=${encodeURIComponent(name)}&client=${encodeURIComponent(clientId)}&seq=${seq}`, body);
  }

  async get(k: number, name: string): Promise<Uint8Array> {
    const res = await this.request(k, "GET", `/get?name=${encodeURIComponent(name)}`);
    if (!res.ok) throw Object.assign(new Error(`get ${name} at node ${k}: ${res.status} ${await res.text()}`), { status: res.status });
    return new Uint8Array(await res.arrayBuffer());
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
    const res = await this.request(k, "GET", `/getfromreplica?name=${encodeURIComponent(name)}`);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`getfromreplica ${name} at node ${k}: ${res.status} ${await res.text()}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  ls(k: number, name: string): Promise<{ name: string; token: string; replicas: { id: string; host: string; token: string }[] }> {
    return this.json(k, "GET", `/ls?name=${encodeURIComponent(name)}`);
  }

  async liststore(k: number): Promise<string[]> {
    return (await this.json(k, "GET", "/liststore")).files.map((f: { name: string }) => f.name);
  }

  listMemIds(k: number): Promise<{ members: { id: string; host: string; token: string }[] }> {
    return this.json(k, "GET", "/list_mem_ids");
  }

  merge(k: number, name: string): Promise<{ updated: string[]; replicas: string[]; digest: string }> {
    return this.json(k, "POST", `/merge?name=${encodeURIComponent(name)}`);
  }
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}
