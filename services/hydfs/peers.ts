/**
 * Node-to-node calls of hydfsd. Every call has a timeout and is signed when the cluster has a
 * secret; errors name the peer and the call. Every answer is read with a running bound
 * (limits.ts) and checked like any input: a chunk must hash to its id, a manifest's ops and
 * tombstone must be well-formed and not stamped after this node's clock plus MAX_CLOCK_SKEW_MS.
 */
import { encode } from "@msgpack/msgpack";
import { BodyTooLarge, declaredLength, readLimited } from "../shared/body.ts";
import { CHUNK_BYTES, checkWireTime, MANIFEST_MAX_BYTES, SMALL_JSON_MAX_BYTES } from "./limits.ts";
import { type AppendOp, validateAppendOp } from "./manifest.ts";
import type { NodeAddress } from "./ring.ts";
import { type AcceptReply, type Ballot, parseAcceptReply, parsePrepareReply, type PrepareReply } from "./create_decree.ts";
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
  /** The wall clock that bounds peers' timestamps (the node's; Date.now by default). */
  nowMs?: () => number;
}

export function baseUrl(node: NodeAddress): string {
  return `http://${node.host}:${node.hydfsPort}`;
}

export class PeerClient {
  constructor(private readonly opts: PeerClientOptions) {}

  private now(): number {
    return this.opts.nowMs ? this.opts.nowMs() : Date.now();
  }

  async call(node: NodeAddress, path: string, init: { method?: string; json?: unknown; bytes?: Uint8Array; msgpack?: unknown } = {}): Promise<Response> {
    const url = `${baseUrl(node)}${path}`;
    if (init.msgpack !== undefined) init = { ...init, bytes: encode(init.msgpack) };
    const headers: Record<string, string> =
      init.json !== undefined
        ? { "content-type": "application/json" }
        : init.msgpack !== undefined
          ? { "content-type": "application/msgpack" }
          : init.bytes
            ? { "content-type": "application/octet-stream" }
            : {};
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

  /** A JSON answer of at most `maxBytes` (SMALL_JSON_MAX_BYTES by default); errors carry the status and body. */
  async json<T>(
    node: NodeAddress,
    path: string,
    init: { method?: string; json?: unknown; msgpack?: unknown } = {},
    maxBytes = SMALL_JSON_MAX_BYTES,
  ): Promise<T> {
    const res = await this.call(node, path, init);
    const text = new TextDecoder().decode(await this.readBody(node, path, res, maxBytes));
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: text };
    }
    if (!res.ok) throw new PeerError(`${node.host}:${node.hydfsPort} ${path.split("?")[0]}: ${res.status} ${body?.error ?? text}`, res.status, body);
    return body as T;
  }

  /** Create decree, phase 1 at a replica (create_decree.ts); the answer is checked like any input. */
  async prepare(node: NodeAddress, name: string, ballot: Ballot): Promise<PrepareReply> {
    const body = await this.json<unknown>(node, `/internal/prepare?name=${encodeURIComponent(name)}`, { method: "POST", json: { ballot } });
    return this.checked(node, name, () => parsePrepareReply(body, validateAppendOp));
  }

  /** Create decree, phase 2; a small create's bytes travel along (msgpack). */
  async accept(node: NodeAddress, name: string, ballot: Ballot, op: AppendOp, data: Uint8Array | undefined): Promise<AcceptReply> {
    const body = await this.json<unknown>(node, `/internal/accept?name=${encodeURIComponent(name)}`, {
      method: "POST",
      msgpack: { ballot, op, data: data ?? new Uint8Array(0) },
    });
    return this.checked(node, name, () => parseAcceptReply(body, validateAppendOp));
  }

  private checked<T>(node: NodeAddress, name: string, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      throw new PeerError(`${node.host}:${node.hydfsPort} decree of ${name}: ${(err as Error).message}`);
    }
  }

  async putChunk(node: NodeAddress, id: string, bytes: Uint8Array): Promise<void> {
    const res = await this.call(node, `/internal/chunk/${id}`, { method: "PUT", bytes });
    if (!res.ok) throw new PeerError(`${node.host}:${node.hydfsPort} put chunk ${id.slice(0, 12)}: ${res.status} ${await res.text()}`, res.status);
  }

  /**
   * A chunk from a peer: at most CHUNK_BYTES are read (a longer answer is cut off there), and
   * the bytes must hash to `id`, so a broken or hostile peer can neither exhaust memory nor
   * hand over other content.
   */
  async getChunk(node: NodeAddress, id: string): Promise<Uint8Array> {
    const res = await this.call(node, `/internal/chunk/${id}`);
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new PeerError(`${node.host}:${node.hydfsPort} chunk ${id.slice(0, 12)}: ${res.status}`, res.status);
    }
    const bytes = await this.readBody(node, `chunk ${id.slice(0, 12)}`, res, CHUNK_BYTES);
    const got = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    if (got !== id)
      throw new PeerError(`${node.host}:${node.hydfsPort} chunk ${id.slice(0, 12)}: content hashes to ${got.slice(0, 12)}, expected the chunk's id`);
    return bytes;
  }

  /** The body of an answer, read with a running bound (BodyTooLarge becomes a PeerError naming the peer). */
  private async readBody(node: NodeAddress, what: string, res: Response, maxBytes: number): Promise<Uint8Array> {
    const declared = declaredLength(res.headers);
    try {
      // A declared length within the bound is all the client reads: one native read into one
      // buffer (a chunk of a get, 4 MiB, without a JS step per piece or a concatenating copy).
      if (declared !== undefined && declared <= maxBytes && res.headers.get("transfer-encoding") === null) {
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length !== declared) throw new Error(`${bytes.length} bytes received, content-length said ${declared}`);
        return bytes;
      }
      return await readLimited(res.body, maxBytes, `${node.host}:${node.hydfsPort} ${what.split("?")[0]} answer`, declared);
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new PeerError(err.message);
      throw new PeerError(`${node.host}:${node.hydfsPort} ${what.split("?")[0]}: reading the answer: ${(err as Error).message}`);
    }
  }

  /** A replica's copy in brief (transport.ts DigestReply), checked like any input. */
  async digest(node: NodeAddress, name: string): Promise<{ digest: string | undefined; hasCreate: boolean; deletedAtMs: number | undefined }> {
    const body = await this.json<{ digest?: unknown; hasCreate?: unknown; deletedAtMs?: unknown }>(node, `/internal/digest?name=${encodeURIComponent(name)}`);
    const digest = body?.digest;
    if (!(digest === null || (typeof digest === "string" && /^[0-9a-f]{64}$/.test(digest))) || typeof body.hasCreate !== "boolean")
      throw new PeerError(`${node.host}:${node.hydfsPort} digest of ${name}: expected {digest: 64 hex digits or null, hasCreate: boolean}, got ${JSON.stringify(body).slice(0, 200)}`);
    return { digest: digest ?? undefined, hasCreate: body.hasCreate, deletedAtMs: this.floorOf(node, name, body.deletedAtMs) };
  }

  /** A replica's ops for a file (undefined when it has no copy) and its tombstone of the name, if any. */
  async manifest(node: NodeAddress, name: string): Promise<{ ops: AppendOp[] | undefined; deletedAtMs: number | undefined }> {
    try {
      const body = await this.json<{ ops: unknown; deletedAtMs?: unknown }>(
        node,
        `/internal/manifest?name=${encodeURIComponent(name)}`,
        {},
        MANIFEST_MAX_BYTES,
      );
      if (!Array.isArray(body.ops)) throw new PeerError(`${node.host}:${node.hydfsPort} manifest of ${name}: expected a list of ops`);
      // A peer's answer is checked like any input before it reaches a digest or a disk.
      const now = this.now();
      const ops = body.ops.map((op, i) => {
        try {
          const valid = validateAppendOp(op, `${node.host}:${node.hydfsPort} manifest of ${name}: op ${i}`);
          checkWireTime(valid.tsMs, now, `${node.host}:${node.hydfsPort} manifest of ${name}: op ${i} tsMs`);
          return valid;
        } catch (err) {
          throw new PeerError((err as Error).message);
        }
      });
      return { ops, deletedAtMs: this.floorOf(node, name, body.deletedAtMs) };
    } catch (err) {
      if (err instanceof PeerError && err.status === 404) return { ops: undefined, deletedAtMs: this.floorOf(node, name, err.body?.deletedAtMs) };
      throw err;
    }
  }

  private floorOf(node: NodeAddress, name: string, value: unknown): number | undefined {
    if (value === undefined || value === null) return undefined;
    try {
      return checkWireTime(value, this.now(), `${node.host}:${node.hydfsPort} manifest of ${name}: deletedAtMs`);
    } catch (err) {
      throw new PeerError((err as Error).message);
    }
  }
}
