/**
 * hydfsd against hostile or broken input, in-process (hydfsApp.handle and PeerClient against
 * tiny Bun.serve fakes): every body is bounded while it streams (a 300 MB body is cancelled after
 * about its limit, never buffered), every timestamp from the wire is bounded by the node's clock,
 * adopt fetches only from ring members and never connects to an address its caller names, a
 * reused (client, seq) with other bytes is refused, and peers' answers (chunks, manifests, JSON)
 * are read with a bound and checked.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { countedStream } from "../testing/streams.ts";
import { encode } from "@msgpack/msgpack";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { ClusterHttp } from "../shared/http.ts";
import { makeLogger } from "../shared/log.ts";
import { hydfsApp } from "./http.ts";
import { CHUNK_BYTES, MANIFEST_MAX_BYTES, MAX_CLOCK_SKEW_MS, OP_BODY_MAX_BYTES } from "./limits.ts";
import type { AppendOp } from "./manifest.ts";
import { HydfsError, HydfsNode } from "./node.ts";
import { PeerClient } from "./peers.ts";
import { chunkIdOf, FileStore } from "./store.ts";
import { testNet } from "../testing/net.ts";

const HOST = `${testNet(48)}.250`;
const MiB = 1024 * 1024;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A one-node ring (this node is every file's only replica), no background passes. */
function oneNode(): { node: HydfsNode; app: ReturnType<typeof hydfsApp>; store: FileStore } {
  const root = mkdtempSync(join(tmpdir(), "hydfs-wire-test-"));
  dirs.push(root);
  const cfg = buildNodeConfig({ host: HOST, data_dir: root, hydfs: { replica_count: 1 } });
  const store = new FileStore(join(root, "hydfs"));
  const node = new HydfsNode(cfg, store, makeLogger("wire-test", "error"));
  node.setMembers([{ id: `${HOST}:5000@1`, state: "alive", ports: { ...cfg.ports } } as never]);
  node.setViewReady(true);
  node.stop();
  return { node, app: hydfsApp(node), store };
}

async function call(
  app: ReturnType<typeof hydfsApp>,
  method: string,
  path: string,
  body?: Bun.BodyInit,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const res = await app.handle(new Request(`http://${HOST}:10010${path}`, { method, body, headers, duplex: "half" } as RequestInit));
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed };
}

function op(p: Partial<AppendOp> & { data?: Uint8Array }): AppendOp {
  const data = p.data ?? new Uint8Array(0);
  const chunks = data.length > 0 ? [{ id: chunkIdOf(data), size: data.length }] : [];
  return {
    opId: p.opId ?? crypto.randomUUID(),
    clientId: p.clientId ?? "c",
    seq: p.seq ?? 1,
    tsMs: p.tsMs ?? Date.now(),
    chunks: p.chunks ?? chunks,
    size: p.size ?? data.length,
    kind: p.kind ?? "append",
  };
}

const text = (s: string) => new TextEncoder().encode(s);

describe("bodies are bounded while they stream", () => {
  test("PUT /internal/chunk: a 300 MB body is refused with 413 and cancelled after about CHUNK_BYTES", async () => {
    const { app, store } = oneNode();
    const { stream, state } = countedStream(300, MiB);
    const r = await call(app, "PUT", `/internal/chunk/${"a".repeat(64)}`, stream);
    expect(r.status).toBe(413);
    expect(r.body.error).toBe(`chunk aaaaaaaaaaaa: more than ${CHUNK_BYTES} bytes sent; expected at most ${CHUNK_BYTES} bytes`);
    expect(state.pulled).toBeLessThanOrEqual(CHUNK_BYTES + 2 * MiB);
    expect(state.cancelled).toBe(true);
    expect(store.chunkBytes()).toBe(0);
  });

  test("PUT /internal/chunk: a declared content-length over CHUNK_BYTES is refused before reading", async () => {
    const { app } = oneNode();
    const { stream, state } = countedStream(300, MiB);
    const r = await call(app, "PUT", `/internal/chunk/${"a".repeat(64)}`, stream, { "content-length": String(CHUNK_BYTES + 1) });
    expect(r.status).toBe(413);
    expect(r.body.error).toBe(`chunk aaaaaaaaaaaa: content-length ${CHUNK_BYTES + 1}; expected at most ${CHUNK_BYTES} bytes`);
    expect(state.pulled).toBeLessThanOrEqual(MiB);
  });

  test("PUT /internal/chunk: exactly CHUNK_BYTES is stored; bytes that do not hash to the id are 400", async () => {
    const { app, store } = oneNode();
    const bytes = new Uint8Array(CHUNK_BYTES).fill(9);
    const id = chunkIdOf(bytes);
    expect((await call(app, "PUT", `/internal/chunk/${id}`, bytes)).status).toBe(200);
    expect(store.hasChunk(id)).toBe(true);
    const wrong = await call(app, "PUT", `/internal/chunk/${"b".repeat(64)}`, text("hello"));
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toContain("does not match its id");
  });

  test("POST /internal/append and /internal/create: a 300 MB body is refused with 413 after about OP_BODY_MAX_BYTES", async () => {
    const { app } = oneNode();
    for (const path of ["/internal/append?name=f", "/internal/create?name=f&inline=1"]) {
      const { stream, state } = countedStream(300, MiB, 0x7b);
      const r = await call(app, "POST", path, stream);
      expect(r.status).toBe(413);
      expect(r.body.error).toContain(`expected at most ${OP_BODY_MAX_BYTES} bytes`);
      expect(state.pulled).toBeLessThanOrEqual(OP_BODY_MAX_BYTES + 2 * MiB);
    }
  });

  test("POST /internal/adopt: a declared body over ADOPT_BODY_MAX_BYTES is refused before reading", async () => {
    const { app } = oneNode();
    const { stream, state } = countedStream(300, MiB, 0x7b);
    const res = await app.handle(
      new Request(`http://${HOST}:10010/internal/adopt?name=f`, {
        method: "POST",
        body: stream,
        headers: { "content-length": String(MANIFEST_MAX_BYTES * 2) },
        duplex: "half",
      } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect(state.pulled).toBeLessThanOrEqual(MiB);
  });

  test("routes without a body never read one: a 300 MB body is left unread", async () => {
    const { app, node } = oneNode();
    await node.write("create", "f", new Blob(["x"]).stream(), "c", 1);
    for (const [path, want] of [
      ["/internal/abort?name=f&op=none", 200],
      [`/internal/delete?name=g&at=${Date.now()}`, 200],
      ["/merge?name=f", 200],
    ] as const) {
      const { stream, state } = countedStream(300, MiB, 0x7b);
      const r = await call(app, "POST", path, stream, { "content-type": "application/json" });
      expect([path, r.status]).toEqual([path, want]);
      expect(state.pulled).toBeLessThanOrEqual(2 * MiB);
    }
  });
});

describe("GET /internal/digest", () => {
  test("answers the copy's digest, its create and tombstone; null without a copy", async () => {
    const { app, store } = oneNode();
    expect((await call(app, "GET", "/internal/digest?name=f")).body).toEqual({ digest: null, hasCreate: false, deletedAtMs: null });
    const create = op({ kind: "create", seq: 0 });
    expect(store.create("f", create)).toBe("created");
    expect((await call(app, "GET", "/internal/digest?name=f")).body).toEqual({ digest: store.digest("f")!.digest, hasCreate: true, deletedAtMs: null });
  });
});

describe("timestamps from the wire are bounded by this node's clock", () => {
  test("/internal/delete?at=9007199254740991 is refused (400) and leaves no tombstone; the name stays usable", async () => {
    const { app, node, store } = oneNode();
    for (const at of [Number.MAX_SAFE_INTEGER, Date.now() + MAX_CLOCK_SKEW_MS + 60_000]) {
      const r = await call(app, "POST", `/internal/delete?name=f&at=${at}`);
      expect(r.status).toBe(400);
      expect(r.body.error).toContain(`delete f: at ${at}: is`);
      expect(r.body.error).toContain(`expected at most ${MAX_CLOCK_SKEW_MS} ms ahead`);
    }
    expect(store.deletedAt("f")).toBeUndefined();
    expect((await node.write("create", "f", new Blob(["hello"]).stream(), "c", 1)).size).toBe(5);
    // A delete stamped within the allowance is a delete.
    expect((await call(app, "POST", `/internal/delete?name=f&at=${Date.now() + 1000}`)).status).toBe(200);
    expect(store.exists("f")).toBe(false);
  });

  test("/internal/create and /internal/append refuse an op stamped after now + MAX_CLOCK_SKEW_MS; nothing stored", async () => {
    const { app, store } = oneNode();
    const future = Date.now() + MAX_CLOCK_SKEW_MS + 5_000;
    const data = text("created");
    const bad = op({ kind: "create", tsMs: future, data });
    let r = await call(app, "POST", "/internal/create?name=f&inline=1", encode({ op: bad, data }));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain(`create f: op tsMs ${future}: is`);
    r = await call(app, "POST", "/internal/create?name=f", JSON.stringify({ ...bad, chunks: [], size: 0 }));
    expect(r.status).toBe(400);
    expect(store.exists("f")).toBe(false);
    r = await call(app, "POST", "/internal/create?name=f", JSON.stringify(op({ kind: "create" })));
    expect([r.status, r.body.result]).toEqual([200, "ok"]);
    r = await call(app, "POST", "/internal/append?name=f", JSON.stringify(op({ seq: 2, tsMs: Number.MAX_SAFE_INTEGER })));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain("append f: op tsMs 9007199254740991");
    expect(store.ops("f")).toHaveLength(1);
  });

  test("an op whose kind is not the route's is refused", async () => {
    const { app, store } = oneNode();
    const r = await call(app, "POST", "/internal/create?name=f", JSON.stringify(op({ kind: "append" })));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain('op kind "append": expected "create"');
    expect(store.exists("f")).toBe(false);
  });

  test("inline data must be the op's size", async () => {
    const { app, store } = oneNode();
    const data = text("abc");
    const o = op({ kind: "create", data });
    const r = await call(app, "POST", "/internal/create?name=f&inline=1", encode({ op: o, data: text("abcd") }));
    expect(r.status).toBe(400);
    expect(store.exists("f")).toBe(false);
  });

  test("/internal/adopt refuses a future op or tombstone before storing anything", async () => {
    const { app, store } = oneNode();
    const future = Date.now() + MAX_CLOCK_SKEW_MS + 5_000;
    let r = await call(app, "POST", "/internal/adopt?name=f", JSON.stringify({ ops: [op({ kind: "create" })], sources: [], deletedAtMs: future }));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain(`adopt f: deletedAtMs ${future}: is`);
    r = await call(app, "POST", "/internal/adopt?name=f", JSON.stringify({ ops: [op({ kind: "create" }), op({ seq: 2, tsMs: future })], sources: [] }));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain(`adopt f: ops[1].tsMs ${future}: is`);
    expect(store.exists("f")).toBe(false);
    expect(store.deletedAt("f")).toBeUndefined();
  });
});

describe("adopt fetches chunks from ring members only", () => {
  const hits: string[] = [];
  const decoy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      hits.push(new URL(req.url).pathname);
      return new Response(new Uint8Array(16));
    },
  });
  afterAll(() => decoy.stop(true));

  test("a source that is not a ring member's hydfsd is refused (400) and never contacted", async () => {
    const { app, store } = oneNode();
    const data = new Uint8Array(1000).fill(3);
    const ops = [op({ kind: "create", data })];
    for (const source of [
      { host: "127.0.0.1", hydfsPort: decoy.port! },
      // The node's own host with another port is not its hydfsd either.
      { host: HOST, hydfsPort: decoy.port! },
    ]) {
      const r = await call(app, "POST", "/internal/adopt?name=f", JSON.stringify({ ops, sources: [source] }));
      expect(r.status).toBe(400);
      expect(r.body.error).toBe(
        `adopt f: source ${source.host}:${source.hydfsPort}: expected hydfsd of current ring members only (chunks are fetched from nowhere else)`,
      );
    }
    await Bun.sleep(50);
    expect(hits).toEqual([]);
    expect(store.exists("f")).toBe(false);
  });
});

describe("a reused (client, seq) with other bytes", () => {
  test("is refused with 409 through the coordinator, and the file stays as the first use made it", async () => {
    const { node, app } = oneNode();
    const body = (s: string) => new Blob([s]).stream();
    await node.write("create", "f", body("head\n"), "c", 1);
    const first = await node.write("append", "f", body("one\n"), "c", 2);
    expect(first.duplicate).toBe(false);
    expect((await node.write("append", "f", body("one\n"), "c", 2)).duplicate).toBe(true);
    expect((await node.write("create", "f", body("head\n"), "c", 1)).duplicate).toBe(true);
    for (const [kind, seq, other] of [
      ["append", 2, "two\n"],
      ["append", 2, ""],
      ["append", 2, "one\nand more\n"],
      ["append", 1, "head\n"],
      ["create", 1, "HEAD\n"],
    ] as const) {
      const err = await node.write(kind, "f", body(other), "c", seq).catch((e) => e);
      expect(err).toBeInstanceOf(HydfsError);
      expect([kind, seq, other, err.status]).toEqual([kind, seq, other, 409]);
      expect(err.message).toStartWith(`client c seq ${seq} of f was already used for different bytes (this ${kind} of ${other.length} bytes, content `);
    }
    // An append's pair reused by a create meets the existing file first.
    await expect(node.write("create", "f", body("one\n"), "c", 2)).rejects.toThrow("create f: a file with that name already exists");
    const r = await call(app, "POST", "/append?name=f&client=c&seq=2", "TWO\n");
    expect(r.status).toBe(409);
    expect(r.body.error).toContain("client c seq 2 of f was already used for different bytes");
    const got = await node.read("f");
    expect(await new Response(got.body).text()).toBe("head\none\n");
  });

  test("abortLocal takes back one refused append by op id; a create with appends stays", () => {
    const { node, store } = oneNode();
    const a = op({ kind: "create", seq: 1 });
    const b = op({ seq: 2 });
    const c = op({ seq: 3 });
    expect(store.create("f", a)).toBe("created");
    expect(store.append("f", b)).toBe("applied");
    expect(store.append("f", c)).toBe("applied");
    expect(node.abortLocal("f", b.opId)).toBe(true);
    expect(store.ops("f")!.map((o) => o.seq)).toEqual([1, 3]);
    expect(node.abortLocal("f", b.opId)).toBe(false);
    expect(node.abortLocal("f", a.opId)).toBe(false);
    expect(node.abortLocal("f", "unknown")).toBe(false);
    expect(node.abortLocal("g", a.opId)).toBe(false);
    // The same seq may now be used again (the refused op left no trace).
    expect(store.append("f", op({ seq: 2 }))).toBe("applied");
  });
});

describe("PeerClient reads peers' answers with a bound and checks them", () => {
  let body: () => Response = () => new Response("");
  const fake = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => body() });
  afterAll(() => fake.stop(true));
  const peer = { host: "127.0.0.1", hydfsPort: fake.port!, id: "p", token: 0n };
  const peers = new PeerClient({ http: new ClusterHttp(""), timeoutMs: 10_000 });

  test("getChunk: a peer streaming 300 MB is cut off after about CHUNK_BYTES", async () => {
    const { stream, state } = countedStream(300, MiB);
    body = () => new Response(stream);
    const err = await peers.getChunk(peer, "c".repeat(64)).catch((e) => e);
    expect(err.message).toContain(`more than ${CHUNK_BYTES} bytes sent; expected at most ${CHUNK_BYTES} bytes`);
    await Bun.sleep(100);
    // Socket buffers hold some more, but nowhere near the 300 MB offered.
    expect(state.pulled).toBeLessThan(CHUNK_BYTES + 32 * MiB);
  });

  test("getChunk: a declared length over CHUNK_BYTES is refused at once", async () => {
    body = () => new Response(new Uint8Array(CHUNK_BYTES + 1));
    await expect(peers.getChunk(peer, "c".repeat(64))).rejects.toThrow(`content-length ${CHUNK_BYTES + 1}; expected at most ${CHUNK_BYTES} bytes`);
  });

  test("getChunk: bytes that do not hash to the id are refused", async () => {
    const bytes = text("not what you asked for");
    body = () => new Response(bytes);
    await expect(peers.getChunk(peer, "c".repeat(64))).rejects.toThrow(`content hashes to ${chunkIdOf(bytes).slice(0, 12)}, expected the chunk's id`);
    expect(await peers.getChunk(peer, chunkIdOf(bytes))).toEqual(bytes);
  });

  test("manifest: an op or a tombstone from the future is refused", async () => {
    const future = Date.now() + MAX_CLOCK_SKEW_MS + 5_000;
    body = () => Response.json({ ops: [op({ kind: "create", tsMs: future })] });
    await expect(peers.manifest(peer, "f")).rejects.toThrow(`manifest of f: op 0 tsMs ${future}: is`);
    body = () => Response.json({ ops: [op({ kind: "create" })], deletedAtMs: Number.MAX_SAFE_INTEGER });
    await expect(peers.manifest(peer, "f")).rejects.toThrow("manifest of f: deletedAtMs 9007199254740991: is");
    body = () => Response.json({ error: "no copy", deletedAtMs: future }, { status: 404 });
    await expect(peers.manifest(peer, "f")).rejects.toThrow(`deletedAtMs ${future}: is`);
    body = () => Response.json({ error: "no copy", deletedAtMs: 5 }, { status: 404 });
    expect(await peers.manifest(peer, "f")).toEqual({ ops: undefined, deletedAtMs: 5 });
  });

  test("digest: the copy in brief; a malformed digest or a future tombstone is refused", async () => {
    const d = "ab".repeat(32);
    body = () => Response.json({ digest: d, hasCreate: true, deletedAtMs: 5 });
    expect(await peers.digest(peer, "f")).toEqual({ digest: d, hasCreate: true, deletedAtMs: 5 });
    body = () => Response.json({ digest: null, hasCreate: false, deletedAtMs: null });
    expect(await peers.digest(peer, "f")).toEqual({ digest: undefined, hasCreate: false, deletedAtMs: undefined });
    body = () => Response.json({ digest: "xyz", hasCreate: true });
    await expect(peers.digest(peer, "f")).rejects.toThrow("digest of f: expected {digest: 64 hex digits or null, hasCreate: boolean}");
    body = () => Response.json({ digest: d, hasCreate: true, deletedAtMs: Number.MAX_SAFE_INTEGER });
    await expect(peers.digest(peer, "f")).rejects.toThrow("deletedAtMs 9007199254740991: is");
  });

  test("json: a small answer over SMALL_JSON_MAX_BYTES is refused", async () => {
    body = () => new Response(`{"result":"${"x".repeat(100_000)}"}`);
    await expect(peers.json(peer, "/internal/append?name=f", { method: "POST", json: {} })).rejects.toThrow("expected at most 65536 bytes");
  });
});
