/**
 * hydfsd's HTTP API (one Elysia instance): client endpoints that any node coordinates, and the
 * /internal/* endpoints replicas call on each other. Uploads and downloads stream; nothing here
 * holds a whole file in memory.
 *
 * Every body is bounded while it streams, never after it was read whole: uploads by
 * hydfs.max_body_bytes (chunkStream), a chunk by CHUNK_BYTES, a replica write by
 * OP_BODY_MAX_BYTES, an adopt by ADOPT_BODY_MAX_BYTES (readLimited, limits.ts). Routes that take
 * no body are declared `parse: "none"`, so Elysia never reads one for them.
 */
import { Elysia } from "elysia";
import type { RequestVerifier } from "../shared/auth.ts";
import { authHook, authMetrics, jsonErrorHook, PUBLIC_ROUTES, requestVerifier } from "../shared/http.ts";
import { MetricsText } from "../shared/metrics.ts";
import { buildInfoMetric } from "../shared/version.ts";
import { decode } from "@msgpack/msgpack";
import { declaredLength, readLimited } from "../shared/body.ts";
import { ADOPT_BODY_MAX_BYTES, CHUNK_BYTES, OP_BODY_MAX_BYTES, SMALL_JSON_MAX_BYTES } from "./limits.ts";
import { type Ballot, parseBallot } from "./create_decree.ts";
import { type AppendOp, validateAppendOp } from "./manifest.ts";
import { describeValue, NameError, validateRemoteName } from "./names.ts";
import { HydfsError, type HydfsNode } from "./node.ts";
import { formatToken, tokenOf } from "./ring.ts";
import * as M from "./model.ts";
import { digestOf } from "./transport.ts";

const NO_BODY = { parse: "none" } as const;
/** A streamed upload: the body is the file's bytes, never parsed. */
const WRITE_ROUTE = { parse: "none", query: M.WriteQuery, response: { 200: M.WriteAnswer } } as const;

function fileResponse(r: { name: string; size: number; ops: AppendOp[]; body: ReadableStream<Uint8Array> }): Response {
  return new Response(r.body, {
    headers: { "content-type": "application/octet-stream", [M.SIZE_HEADER]: String(r.size), [M.OPS_HEADER]: String(r.ops.length) },
  });
}

/** Every client route, for GET /help. */
const CLIENT_ROUTES = [
  "/create",
  "/append",
  "/delete",
  "/get",
  "/stat",
  "/getfromreplica",
  "/merge",
  "/ls",
  "/liststore",
  "/list_mem_ids",
  "/multiappend_local",
  "/metrics",
];

export function hydfsApp(node: HydfsNode) {
  const verifier = requestVerifier(node.cfg.cluster_secret, node.cfg.host);
  const app = baseApp(node, verifier);
  // Routes are added to this one instance after its hooks, so the hooks cover every route.
  clientRoutes(app, node);
  replicaRoutes(app, node);
  return app;
}

/** The hooks (authentication first, then errors) and the routes about the daemon itself. */
function baseApp(node: HydfsNode, verifier: RequestVerifier | undefined) {
  return (
    new Elysia()
      // Deny by default: with a secret, reads, writes and replica calls all need the credential;
      // only the routes in PUBLIC_ROUTES (declared right after) do not.
      .onRequest(authHook(verifier, PUBLIC_ROUTES))
      .onError((ctx) => {
        if (ctx.error instanceof NameError) {
          ctx.set.status = 400;
          return { error: ctx.error.message };
        }
        return jsonErrorHook(ctx);
      })
      .get("/health", () => ({ ok: true, service: "hydfsd" }), { response: { 200: M.HealthAnswer } })
      .get("/help", () => ({ client: CLIENT_ROUTES }), { response: { 200: M.HelpAnswer } })
      .get("/metrics", ({ set }) => {
        set.headers["content-type"] = "text/plain; version=0.0.4";
        return metricsText(node, verifier);
      })
  );
}

type HydfsApp = ReturnType<typeof baseApp>;

/** What clients call; any node coordinates. */
function clientRoutes(app: HydfsApp, node: HydfsNode): void {
  const ring = () => ({ count: node.ring.size, members: node.ring.nodes.map((n) => ({ id: n.id, host: n.host, token: formatToken(n.token) })) });
  app
    .get("/get", async ({ query }) => fileResponse(await node.read(query.name)), { query: M.NameQuery })
    .get("/stat", ({ query }) => node.stat(query.name), { query: M.NameQuery, response: { 200: M.StatAnswer } })
    .get("/getfromreplica", ({ query }) => fileResponse(node.readLocal(query.name)), { query: M.NameQuery })
    .get("/ls", ({ query }) => lsAnswer(node, query.name), { query: M.NameQuery, response: { 200: M.LsAnswer } })
    .get("/liststore", () => listStoreAnswer(node), { response: { 200: M.ListStoreAnswer } })
    .get("/list_mem_ids", ring, { response: { 200: M.ListMemIdsAnswer } })
    .post("/create", ({ query, request }) => node.write("create", query.name, request.body, query.client, query.seq), WRITE_ROUTE)
    .post("/append", ({ query, request }) => node.write("append", query.name, request.body, query.client, query.seq), WRITE_ROUTE)
    .post("/merge", ({ query }) => node.merge(query.name), { ...NO_BODY, query: M.NameQuery, response: { 200: M.MergeAnswer } })
    .post("/delete", ({ query }) => node.delete(query.name), { ...NO_BODY, query: M.NameQuery, response: { 200: M.DeleteAnswer } })
    .post("/multiappend_local", ({ query }) => node.appendLocalFile(query.name, query.local), {
      ...NO_BODY,
      query: M.MultiappendLocalQuery,
      response: { 200: M.WriteAnswer },
    });
}

/** What replicas call on each other (/internal/*). */
function replicaRoutes(app: HydfsApp, node: HydfsNode): void {
  app
    .put("/internal/chunk/:id", ({ params, request }) => putChunk(node, params.id, request), { parse: "none", params: M.ChunkParams })
    .get("/internal/chunk/:id", ({ params }) => getChunk(node, params.id), { params: M.ChunkParams })
    .get("/internal/manifest", ({ query, set }) => manifestAnswer(node, query.name, set), { query: M.NameQuery })
    // null, not undefined, for "no copy": JSON drops undefined fields.
    .get("/internal/digest", ({ query }) => {
      const d = digestOf(node.store, validateRemoteName(query.name));
      return { digest: d.digest ?? null, hasCreate: d.hasCreate, deletedAtMs: d.deletedAtMs ?? null };
    }, { query: M.NameQuery })
    .post(
      "/internal/create",
      async ({ query, request, set }) => replicaWrite(node, "create", query.name, await readOpBody(node, request, query.inline === "1"), false, set),
      {
        parse: "none",
        query: M.ReplicaCreateQuery,
      },
    )
    .post(
      "/internal/append",
      async ({ query, request, set }) =>
        replicaWrite(node, "append", query.name, await readOpBody(node, request, query.inline === "1"), query.store_if_missing === "true", set),
      { parse: "none", query: M.ReplicaAppendQuery },
    )
    // The create decree (create_decree.ts): phase 1 and phase 2 at this replica.
    .post("/internal/prepare", ({ query, request }) => prepare(node, query.name, request), { parse: "none", query: M.NameQuery })
    .post("/internal/accept", ({ query, request }) => accept(node, query.name, request), { parse: "none", query: M.NameQuery })
    .post("/internal/delete", ({ query }) => node.deleteLocal(validateRemoteName(query.name), query.at), { ...NO_BODY, query: M.ReplicaDeleteQuery })
    .post("/internal/abort", ({ query }) => ({ aborted: node.abortLocal(validateRemoteName(query.name), query.op) }), {
      ...NO_BODY,
      query: M.ReplicaAbortQuery,
    })
    .post("/internal/adopt", ({ query, request }) => adopt(node, query.name, request), { ...NO_BODY, query: M.NameQuery });
}

// ---- handlers ----------------------------------------------------------------------------------

async function lsAnswer(node: HydfsNode, nameIn: string) {
  // A missing or deleted file is a 404 here too, as for get and stat.
  const { name } = await node.stat(nameIn, "ls");
  return {
    name,
    token: formatToken(tokenOf(name)),
    replicas: node.replicas(name).map((r) => ({ id: r.id, host: r.host, token: formatToken(r.token) })),
  };
}

function listStoreAnswer(node: HydfsNode) {
  const self = node.ring.nodes.find((n) => node.isSelf(n));
  return {
    node: node.selfId ?? null,
    host: node.cfg.host,
    token: self ? formatToken(self.token) : null,
    files: node.store.list().map((name) => {
      const ops = node.store.view(name) ?? [];
      return { name, token: formatToken(tokenOf(name)), size: ops.reduce((n, o) => n + o.size, 0), ops: ops.length };
    }),
  };
}

async function putChunk(node: HydfsNode, id: string, request: Request) {
  const bytes = await readChunkBody(request, `chunk ${id.slice(0, 12)}`);
  try {
    return await node.store.putChunkAsync(bytes, id);
  } catch (err) {
    throw new HydfsError((err as Error).message, 400);
  }
}

/**
 * A chunk's body, at most CHUNK_BYTES. With a content-length (what fetch sends for bytes) within
 * the limit, the server reads exactly that many bytes into one fresh buffer natively (no JS per
 * piece, no concatenation copy, and page-aligned, so putChunkAsync can write it with O_DIRECT);
 * without one, it is counted while it streams and cut off past the limit (readLimited).
 */
export async function readChunkBody(request: Request, what: string): Promise<Uint8Array> {
  const declared = declaredLength(request.headers);
  if (declared !== undefined && declared <= CHUNK_BYTES && request.headers.get("transfer-encoding") === null) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.length !== declared) throw new HydfsError(`${what}: ${bytes.length} bytes received, content-length said ${declared}`, 400);
    return bytes;
  }
  return readLimited(request.body, CHUNK_BYTES, what, declared);
}

function getChunk(node: HydfsNode, id: string): Response {
  if (!node.store.hasChunk(id)) throw new HydfsError(`no chunk ${id}`, 404);
  return new Response(node.store.chunkFile(id));
}

function manifestAnswer(node: HydfsNode, nameIn: string, set: { status?: number | string }) {
  const name = validateRemoteName(nameIn);
  const ops = node.store.ops(name);
  // The tombstone travels with the answer (also with a 404), so readers and merges see deletes.
  const deletedAtMs = node.store.deletedAt(name);
  if (ops) return { ops, deletedAtMs };
  set.status = 404;
  return { error: `no replica of ${name} here`, deletedAtMs };
}

/** Phase 1 of the create decree (create_decree.ts) at this replica. */
async function prepare(node: HydfsNode, nameIn: string, request: Request) {
  const raw = await readLimited(request.body, SMALL_JSON_MAX_BYTES, "prepare", declaredLength(request.headers));
  let ballot: Ballot;
  try {
    ballot = parseBallot((JSON.parse(new TextDecoder().decode(raw)) as { ballot?: unknown })?.ballot);
  } catch (err) {
    throw new HydfsError(`prepare: ${(err as Error).message}`, 400);
  }
  return node.prepareLocal(validateRemoteName(nameIn), ballot);
}

/** Phase 2 of the create decree at this replica: msgpack `{ballot, op, data}`. */
async function accept(node: HydfsNode, nameIn: string, request: Request) {
  const raw = await readLimited(request.body, OP_BODY_MAX_BYTES, "accept", declaredLength(request.headers));
  let ballot: Ballot;
  let op: AppendOp;
  let data: Uint8Array;
  try {
    const body = decode(raw) as { ballot?: unknown; op?: unknown; data?: unknown };
    ballot = parseBallot(body?.ballot);
    op = validateAppendOp(body?.op, "op");
    if (!(body.data instanceof Uint8Array)) throw new Error("data: expected bytes");
    data = body.data;
  } catch (err) {
    throw new HydfsError(`accept: ${(err as Error).message}`, 400);
  }
  return node.acceptLocal(validateRemoteName(nameIn), ballot, op, data.length > 0 ? data : undefined);
}

async function adopt(node: HydfsNode, nameIn: string, request: Request) {
  const name = validateRemoteName(nameIn);
  const raw = await readLimited(request.body, ADOPT_BODY_MAX_BYTES, `adopt ${name}`, declaredLength(request.headers));
  const body = parseAdoptBody(raw);
  return { digest: await node.adopt(name, body.ops, body.sources, body.deletedAtMs) };
}

export interface AdoptBody {
  ops: AppendOp[];
  sources: { host: string; hydfsPort: number }[];
  deletedAtMs: number | undefined;
}

/** Most chunk sources an adopt may name: the participants of one merge (replicas and a departing copy). */
export const MAX_ADOPT_SOURCES = 16;

/**
 * The body of `/internal/adopt`, checked field by field (HydfsError 400 naming the field):
 * `{ops: AppendOp[], sources: [{host, hydfsPort}], deletedAtMs?}`. Timestamps are bounded by
 * the node's clock in HydfsNode.adopt, and sources are checked against the ring there.
 */
export function parseAdoptBody(raw: Uint8Array): AdoptBody {
  const bad = (what: string) => new HydfsError(`adopt: ${what}`, 400);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(raw));
  } catch {
    throw bad("body: expected a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(`body ${describeValue(value)}: expected a JSON object`);
  const { ops, sources, deletedAtMs } = value as Record<string, unknown>;
  if (!Array.isArray(ops)) throw bad(`ops ${describeValue(ops)}: expected an array of ops`);
  if (!Array.isArray(sources) || sources.length > MAX_ADOPT_SOURCES)
    throw bad(`sources ${describeValue(sources)}: expected an array of at most ${MAX_ADOPT_SOURCES} {host, hydfsPort}`);
  const checkedSources = sources.map((s, i) => {
    const { host, hydfsPort } = (s ?? {}) as Record<string, unknown>;
    if (typeof host !== "string" || host.length === 0 || host.length > 253)
      throw bad(`sources[${i}].host ${describeValue(host)}: expected a host name of 1..253 characters`);
    if (typeof hydfsPort !== "number" || !Number.isInteger(hydfsPort) || hydfsPort < 1 || hydfsPort > 65535)
      throw bad(`sources[${i}].hydfsPort ${describeValue(hydfsPort)}: expected an integer in 1..65535`);
    return { host, hydfsPort };
  });
  if (deletedAtMs !== undefined && (typeof deletedAtMs !== "number" || !Number.isSafeInteger(deletedAtMs) || deletedAtMs < 0)) {
    throw bad(`deletedAtMs ${describeValue(deletedAtMs)}: expected a non-negative integer of milliseconds`);
  }
  const checkedOps = ops.map((op, i) => {
    try {
      return validateAppendOp(op, `ops[${i}]`);
    } catch (err) {
      throw bad((err as Error).message);
    }
  });
  return { ops: checkedOps, sources: checkedSources, deletedAtMs: deletedAtMs as number | undefined };
}

/**
 * The operation of a replica write: JSON, or msgpack `{op, data}` when the (small) body travels
 * inline; inline data is stored as the op's chunk first. Both are validated like any input.
 */
async function readOpBody(node: HydfsNode, request: Request, inline: boolean): Promise<AppendOp> {
  const raw = await readLimited(request.body, OP_BODY_MAX_BYTES, "replica write", declaredLength(request.headers));
  let op: AppendOp;
  try {
    if (!inline) return validateAppendOp(JSON.parse(new TextDecoder().decode(raw)), "op");
    const body = decode(raw) as { op: unknown; data: unknown };
    op = validateAppendOp(body?.op, "op");
    if (!(body.data instanceof Uint8Array)) throw new Error("data: expected bytes");
    if (body.data.length !== op.size) throw new Error(`data: ${body.data.length} bytes: expected the op's size, ${op.size}`);
    if (body.data.length > 0) {
      if (op.chunks.length !== 1) throw new Error("inline data needs exactly one chunk in the op");
      node.store.putChunk(body.data, op.chunks[0]!.id);
    }
  } catch (err) {
    throw new HydfsError(`replica write: ${(err as Error).message}`, 400);
  }
  return op;
}

function replicaWrite(node: HydfsNode, kind: "create" | "append", nameIn: string, op: AppendOp, storeIfMissing: boolean, set: { status?: number | string }) {
  const name = validateRemoteName(nameIn);
  const result = node.applyLocal(kind, name, op, storeIfMissing);
  if (result === "conflict") {
    set.status = 409;
    return { result, error: `client ${op.clientId} seq ${op.seq} of ${name} was already used for different bytes (stored here with other content)` };
  }
  if (result === "full") {
    set.status = 413;
    return { result, error: `${kind} ${name}: the file's manifest is at its limit` };
  }
  if (result === "exists" || result === "deleted_later") set.status = 409;
  else if (result === "no_such_file") set.status = 404;
  else if (result === "error") set.status = 409;
  return { result };
}

function metricsText(node: HydfsNode, verifier: RequestVerifier | undefined): string {
  const m = node.metrics;
  const text = new MetricsText();
  authMetrics(text, "hydfsd", verifier);
  return (
    text
      .series(
        "hydfs_ops_total",
        "counter",
        "Client operations coordinated by this node, by type.",
        Object.entries(m.ops).map(([k, v]) => [`{op="${k}"}`, v]),
      )
      .single("hydfs_bytes_stored", "gauge", "Bytes of chunks stored on this node.", node.store.chunkBytes())
      .single("hydfs_files_stored", "gauge", "Files with a replica on this node.", node.store.list().length)
      .single("hydfs_bytes_written_total", "counter", "Bytes acknowledged to clients by this coordinator.", m.bytesWritten)
      .single("hydfs_bytes_read_total", "counter", "Bytes served to clients by this coordinator.", m.bytesRead)
      .single("hydfs_rereplicated_bytes_total", "counter", "Chunk bytes fetched from other replicas by merges and hand-overs.", m.rereplicatedBytes)
      .single("hydfs_rereplication_seconds_total", "counter", "Time spent adopting merged manifests.", (m.rereplicationMs / 1000).toFixed(3))
      .single("hydfs_merges_total", "counter", "Merges run (client, read repair, background).", m.merges)
      .single("hydfs_gc_deleted_total", "counter", "Local copies dropped after hand-over to their owners.", m.gcDeleted)
      .single("hydfs_chunks_deleted_total", "counter", "Unreferenced chunk files removed by chunk GC.", m.chunksDeleted)
      .single("hydfs_chunk_bytes_freed_total", "counter", "Bytes of the chunk files chunk GC removed.", m.chunkBytesFreed)
      .text() + buildInfoMetric("hydfsd")
  );
}
