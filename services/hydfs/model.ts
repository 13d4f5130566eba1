/**
 * The wire shapes of hydfsd's HTTP API, declared once: the elysia `t` schemas that http.ts puts
 * on its routes (queries validated on the way in, client answers on the way out) and their
 * static types, which client.ts (the one client of the public API) returns. A field added here
 * is added for the server and every client at once; tsc checks that what HydfsNode returns fits.
 *
 * Node-to-node routes (/internal/*) declare their queries here too. Their bodies stay checked by
 * hand (manifest.ts validateAppendOp, create_decree.ts parse*Reply, http.ts parseAdoptBody):
 * those checks name the failing field and bound timestamps by the clock, which a schema cannot.
 */
import { t } from "elysia";

// ---- queries -------------------------------------------------------------------------------

/** `?name=`: every client call about one file. */
export const NameQuery = t.Object({ name: t.String() });
export type NameQuery = typeof NameQuery.static;

/**
 * `POST /create` and `/append`: the (client, seq) pair makes a write idempotent: the servers apply
 * it once however often (and through whichever coordinators) it is retried.
 */
export const WriteQuery = t.Object({ name: t.String(), client: t.String(), seq: t.Numeric() });
export type WriteQuery = typeof WriteQuery.static;

/** `POST /multiappend_local`: the node appends a file of its own local-files directory. */
export const MultiappendLocalQuery = t.Object({ name: t.String(), local: t.String() });
export type MultiappendLocalQuery = typeof MultiappendLocalQuery.static;

/** The client calls that upload a body. */
export type WriteKind = "create" | "append";

// ---- answers of the public API ---------------------------------------------------------------

/** `GET /health`, the one public route. */
export const HealthAnswer = t.Object({ ok: t.Boolean(), service: t.String() });
export type HealthAnswer = typeof HealthAnswer.static;

/** `GET /help`: the client endpoints. */
export const HelpAnswer = t.Object({ client: t.Array(t.String()) });
export type HelpAnswer = typeof HelpAnswer.static;

/**
 * `POST /create`, `/append`, `/multiappend_local`. `duplicate`: the servers already had this
 * (client, seq) with these very bytes and wrote nothing new.
 */
export const WriteAnswer = t.Object({
  name: t.String(),
  size: t.Number(),
  /** The file's replicas (host:port). */
  replicas: t.Array(t.String()),
  /** The replicas that acknowledged this write. */
  acked: t.Array(t.String()),
  duplicate: t.Boolean(),
});
export type WriteAnswer = typeof WriteAnswer.static;

/** `GET /stat`: a live file's size and number of operations (404 when missing or deleted). */
export const StatAnswer = t.Object({ name: t.String(), size: t.Number(), ops: t.Number() });
export type StatAnswer = typeof StatAnswer.static;

/** A ring member as the public API shows it: its token as hex. */
export const MemberEntry = t.Object({ id: t.String(), host: t.String(), token: t.String() });
export type MemberEntry = typeof MemberEntry.static;

/** `GET /ls`: the file's token and its replicas. */
export const LsAnswer = t.Object({ name: t.String(), token: t.String(), replicas: t.Array(MemberEntry) });
export type LsAnswer = typeof LsAnswer.static;

/** `GET /liststore`: the files one node stores (node and token are null before it joined). */
export const ListStoreAnswer = t.Object({
  node: t.Union([t.String(), t.Null()]),
  host: t.String(),
  token: t.Union([t.String(), t.Null()]),
  files: t.Array(t.Object({ name: t.String(), token: t.String(), size: t.Number(), ops: t.Number() })),
});
export type ListStoreAnswer = typeof ListStoreAnswer.static;

/** `GET /list_mem_ids`: the ring, sorted by token. */
export const ListMemIdsAnswer = t.Object({ count: t.Number(), members: t.Array(MemberEntry) });
export type ListMemIdsAnswer = typeof ListMemIdsAnswer.static;

/** `POST /merge`: `updated` names the replicas that changed; `confirmed` that all now hold `digest`. */
export const MergeAnswer = t.Object({
  name: t.String(),
  digest: t.String(),
  updated: t.Array(t.String()),
  replicas: t.Array(t.String()),
  confirmed: t.Boolean(),
});
export type MergeAnswer = typeof MergeAnswer.static;

/** `POST /delete`: the replicas (host:port) that recorded the tombstone. */
export const DeleteAnswer = t.Object({ name: t.String(), deleted: t.Literal(true), replicas: t.Array(t.String()) });
export type DeleteAnswer = typeof DeleteAnswer.static;

/** Every error answer: one readable line. */
export const ErrorAnswer = t.Object({ error: t.String() });
export type ErrorAnswer = typeof ErrorAnswer.static;

/** Headers of a `GET /get` or `/getfromreplica` answer (the body streams the file's bytes). */
export const SIZE_HEADER = "x-hydfs-size";
export const OPS_HEADER = "x-hydfs-ops";

// ---- node to node ----------------------------------------------------------------------------

/** `/internal/chunk/:id`: a chunk by its SHA-256. */
export const ChunkParams = t.Object({ id: t.String({ pattern: "^[0-9a-f]{64}$" }) });
/** `POST /internal/create`: `inline=1` when the op's bytes travel with it (msgpack). */
export const ReplicaCreateQuery = t.Object({ name: t.String(), inline: t.Optional(t.String()) });
/** `POST /internal/append`: `store_if_missing=true` lets a replica without the file take it (a hand-over). */
export const ReplicaAppendQuery = t.Object({ name: t.String(), store_if_missing: t.Optional(t.String()), inline: t.Optional(t.String()) });
/** `POST /internal/delete`: the tombstone's time (ms), chosen by the coordinator. */
export const ReplicaDeleteQuery = t.Object({ name: t.String(), at: t.Numeric({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, multipleOf: 1 }) });
/** `POST /internal/abort`: drop a pending op that never completed. */
export const ReplicaAbortQuery = t.Object({ name: t.String(), op: t.String() });
