/**
 * Node-to-node calls of hydfsd. Every call has a timeout and is signed when the cluster has a
 * secret; errors name the peer and the call.
 */
import { encode } from "@msgpack/msgpack";
import { type AppendOp, validateAppendOp } from "./manifest.ts";
import type { RingNode } from "./ring.ts";
import { type ClusterHttp, whyFailed } from "../shared/http.ts";

export class PeerError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: any,
  ) {
    super(message);
  }
}

export interface PeerClientOptions {
  http: ClusterHttp;
  timeoutMs: number;
}

export function baseUrl(node: Pick<RingNode, "host" | "hydfsPort">): string {
  return `http://${node.host}:${node.hydfsPort}`;
}

export class PeerClient {
  constructor(private readonly opts: PeerClientOptions) {}

  async call(node: Pick<RingNode, "host" | "hydfsPort">, path: string, init: { method?: string; json?: unknown; bytes?: Uint8Array; msgpack?: unknown } = {}): Promise<Response> {
    const url = `${baseUrl(node)}${path}`;
    if (init.msgpack !== undefined) init = { ...init, bytes: encode(init.msgpack) };
    const headers: Record<string, string> =
      init.json !== undefined ? { "content-type": "application/json" } : init.msgpack !== undefined ? { "content-type": "application/msgpack" } : init.bytes ? { "content-type": "application/octet-stream" } : {};
    let res: Response;
    try {
      res = await this.opts.http.fetch(url, {
        method: init.method ?? "GET",
        headers,
        body: init.json !== undefined ? JSON.stringify(init.json) : init.bytes,
        timeoutMs: this.opts.timeoutMs,
      });
    } catch (err) {
      throw new PeerError(`${node.host}:${node.hydfsPort} ${path.split("?")[0]}: ${whyFailed(err)}`);
    }
    return res;
  }

  async json<T>(node: Pick<RingNode, "host" | "hydfsPort">, path: string, init: { method?: string; json?: unknown; msgpack?: unknown } = {}): Promise<T> {
    const res = await this.call(node, path, init);
    const text = await res.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: text };
    }
    if (!res.ok) throw new PeerError(`${node.host}:${node.hydfsPort} ${path.split("?")[0]}: ${res.status} ${body?.error ?? text}`, res.status, body);
    return body as T;
  }

  async putChunk(node: Pick<RingNode, "host" | "hydfsPort">, id: string, bytes: Uint8Array): Promise<void> {
    const res = await this.call(node, `/internal/chunk/${id}`, { method: "PUT", bytes });
    if (!res.ok) throw new PeerError(`${node.host}:${node.hydfsPort} put chunk ${id.slice(0, 12)}: ${res.status} ${await res.text()}`, res.status);
  }

  async getChunk(node: Pick<RingNode, "host" | "hydfsPort">, id: string): Promise<Uint8Array> {
    const res = await this.call(node, `/internal/chunk/${id}`);
    if (!res.ok) throw new PeerError(`${node.host}:${node.hydfsPort} chunk ${id.slice(0, 12)}: ${res.status}`, res.status);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** A replica's ops for a file (undefined when it has no copy) and its tombstone of the name, if any. */
  async manifest(node: RingNode, name: string): Promise<{ ops: AppendOp[] | undefined; deletedAtMs: number | undefined }> {
    try {
      const body = await this.json<{ ops: unknown; deletedAtMs?: unknown }>(node, `/internal/manifest?name=${encodeURIComponent(name)}`);
      if (!Array.isArray(body.ops)) throw new PeerError(`${node.host}:${node.hydfsPort} manifest of ${name}: expected a list of ops`);
      // A peer's answer is checked like any input before it reaches a digest or a disk.
      return { ops: body.ops.map((op, i) => validateAppendOp(op, `${node.host} manifest op ${i}`)), deletedAtMs: this.floorOf(node, name, body.deletedAtMs) };
    } catch (err) {
      if (err instanceof PeerError && err.status === 404) return { ops: undefined, deletedAtMs: this.floorOf(node, name, err.body?.deletedAtMs) };
      throw err;
    }
  }

  private floorOf(node: RingNode, name: string, value: unknown): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new PeerError(`${node.host}:${node.hydfsPort} manifest of ${name}: deletedAtMs ${JSON.stringify(value)}: expected a non-negative integer`);
    return value;
  }
}
