/**
 * hydfsd's HTTP API (one Elysia instance): client endpoints that any node coordinates, and the
 * /internal/* endpoints replicas call on each other. Uploads and downloads stream; nothing here
 * holds a whole file in memory.
 */
import { Elysia, t } from "elysia";
import { authHook, jsonErrorHook, PUBLIC_ROUTES, requestVerifier } from "../shared/http.ts";
import { MetricsText } from "../shared/metrics.ts";
import { decode } from "@msgpack/msgpack";
import { type AppendOp, validateAppendOp } from "./manifest.ts";
import { NameError, validateRemoteName } from "./names.ts";
import { HydfsError, type HydfsNode } from "./node.ts";
import { formatToken, tokenOf } from "./ring.ts";
import { CHUNK_BYTES } from "./store.ts";

const chunkRef = t.Object({ id: t.String({ pattern: "^[0-9a-f]{64}$" }), size: t.Integer({ minimum: 0 }) });
const appendOp = t.Object({
  opId: t.String({ minLength: 1, maxLength: 100 }),
  clientId: t.String({ minLength: 1, maxLength: 200 }),
  seq: t.Integer({ minimum: 0 }),
  tsMs: t.Integer({ minimum: 0 }),
  chunks: t.Array(chunkRef),
  size: t.Integer({ minimum: 0 }),
  kind: t.Union([t.Literal("create"), t.Literal("append")]),
});
const nameQuery = t.Object({ name: t.String() });
const writeQuery = t.Object({ name: t.String(), client: t.String(), seq: t.Numeric() });

function fileResponse(r: { name: string; size: number; ops: AppendOp[]; body: ReadableStream<Uint8Array> }): Response {
  return new Response(r.body, {
    headers: { "content-type": "application/octet-stream", "x-hydfs-size": String(r.size), "x-hydfs-ops": String(r.ops.length) },
  });
}

export function hydfsApp(node: HydfsNode) {
  return new Elysia()
    // Deny by default: with a secret, reads, writes and replica calls all need the credential;
    // only the routes in PUBLIC_ROUTES (declared right after) do not.
    .onRequest(authHook(requestVerifier(node.cfg.cluster_secret), PUBLIC_ROUTES))
    .onError((ctx) => {
      if (ctx.error instanceof NameError) {
        ctx.set.status = 400;
        return { error: ctx.error.message };
      }
      return jsonErrorHook(ctx);
    })
    .get("/health", () => ({ ok: true, service: "hydfsd" }))
    .get("/help", () => ({
      client: ["/create", "/append", "/delete", "/get", "/stat", "/getfromreplica", "/merge", "/ls", "/liststore", "/list_mem_ids", "/multiappend_local", "/metrics"],
    }))
    .get("/get", async ({ query }) => fileResponse(await node.read(query.name)), { query: nameQuery })
    .get("/stat", ({ query }) => node.stat(query.name), { query: nameQuery })
    .get("/getfromreplica", ({ query }) => fileResponse(node.readLocal(query.name)), { query: nameQuery })
    .get("/ls", async ({ query }) => {
      // A missing or deleted file is a 404 here too, as for get and stat.
      const { name } = await node.stat(query.name, "ls");
      return {
        name,
        token: formatToken(tokenOf(name)),
        replicas: node.replicas(name).map((r) => ({ id: r.id, host: r.host, token: formatToken(r.token) })),
      };
    }, { query: nameQuery })
    .get("/liststore", () => {
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
    })
    .get("/list_mem_ids", () => ({ count: node.ring.size, members: node.ring.nodes.map((n) => ({ id: n.id, host: n.host, token: formatToken(n.token) })) }))
    .get("/metrics", ({ set }) => {
      set.headers["content-type"] = "text/plain; version=0.0.4";
      return metricsText(node);
    })
    .post("/create", ({ query, request }) => node.write("create", query.name, request.body, query.client, query.seq), { parse: "none", query: writeQuery })
    .post("/append", ({ query, request }) => node.write("append", query.name, request.body, query.client, query.seq), { parse: "none", query: writeQuery })
    .post("/merge", ({ query }) => node.merge(query.name), { query: nameQuery })
    .post("/delete", ({ query }) => node.delete(query.name), { query: nameQuery })
    .post("/multiappend_local", ({ query }) => node.appendLocalFile(query.name, query.local), { query: t.Object({ name: t.String(), local: t.String() }) })
    // ---- replica-to-replica ----
    .put(
      "/internal/chunk/:id",
      async ({ params, request }) => {
        const bytes = new Uint8Array(await request.arrayBuffer());
        if (bytes.length > CHUNK_BYTES) throw new HydfsError(`chunk over ${CHUNK_BYTES} bytes`, 413);
        try {
          return node.store.putChunk(bytes, params.id);
        } catch (err) {
          throw new HydfsError((err as Error).message, 400);
        }
      },
      { parse: "none", params: t.Object({ id: t.String({ pattern: "^[0-9a-f]{64}$" }) }) },
    )
    .get(
      "/internal/chunk/:id",
      ({ params }) => {
        if (!node.store.hasChunk(params.id)) throw new HydfsError(`no chunk ${params.id}`, 404);
        return new Response(node.store.chunkFile(params.id));
      },
      { params: t.Object({ id: t.String({ pattern: "^[0-9a-f]{64}$" }) }) },
    )
    .get("/internal/manifest", ({ query, set }) => {
      const name = validateRemoteName(query.name);
      const ops = node.store.ops(name);
      // The tombstone travels with the answer (also with a 404), so readers and merges see deletes.
      const deletedAtMs = node.store.deletedAt(name);
      if (ops) return { ops, deletedAtMs };
      set.status = 404;
      return { error: `no replica of ${name} here`, deletedAtMs };
    }, { query: nameQuery })
    .post("/internal/create", async ({ query, request, set }) => replicaWrite(node, "create", query.name, await readOpBody(node, request, query.inline === "1"), false, set), {
      parse: "none",
      query: t.Object({ name: t.String(), inline: t.Optional(t.String()) }),
    })
    .post(
      "/internal/append",
      async ({ query, request, set }) => replicaWrite(node, "append", query.name, await readOpBody(node, request, query.inline === "1"), query.store_if_missing === "true", set),
      { parse: "none", query: t.Object({ name: t.String(), store_if_missing: t.Optional(t.String()), inline: t.Optional(t.String()) }) },
    )
    .post("/internal/delete", ({ query }) => node.deleteLocal(validateRemoteName(query.name), query.at), {
      query: t.Object({ name: t.String(), at: t.Numeric({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, multipleOf: 1 }) }),
    })
    .post("/internal/abort_create", ({ query }) => ({ aborted: node.abortLocal(validateRemoteName(query.name), query.op) }), { query: t.Object({ name: t.String(), op: t.String() }) })
    .post(
      "/internal/adopt",
      async ({ query, body }) => ({ digest: await node.adopt(validateRemoteName(query.name), body.ops as AppendOp[], body.sources, body.deletedAtMs) }),
      {
        query: nameQuery,
        body: t.Object({ ops: t.Array(appendOp), sources: t.Array(t.Object({ host: t.String(), hydfsPort: t.Integer() })), deletedAtMs: t.Optional(t.Integer({ minimum: 0 })) }),
      },
    );
}

/**
 * The operation of a replica write: JSON, or msgpack `{op, data}` when the (small) body travels
 * inline; inline data is stored as the op's chunk first. Both are validated like any input.
 */
async function readOpBody(node: HydfsNode, request: Request, inline: boolean): Promise<AppendOp> {
  const raw = new Uint8Array(await request.arrayBuffer());
  let op: AppendOp;
  try {
    if (!inline) return validateAppendOp(JSON.parse(new TextDecoder().decode(raw)), "op");
    const body = decode(raw) as { op: unknown; data: unknown };
    op = validateAppendOp(body?.op, "op");
    if (!(body.data instanceof Uint8Array)) throw new Error("data: expected bytes");
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
  const result = node.applyLocal(kind, validateRemoteName(nameIn), op, storeIfMissing);
  if (result === "exists" || result === "deleted_later") set.status = 409;
  else if (result === "no_such_file") set.status = 404;
  else if (result === "error") set.status = 409;
  return { result };
}

function metricsText(node: HydfsNode): string {
  const m = node.metrics;
  return new MetricsText()
    .series("hydfs_ops_total", "counter", "Client operations coordinated by this node, by type.", Object.entries(m.ops).map(([k, v]) => [`{op="${k}"}`, v]))
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
    .text();
}
