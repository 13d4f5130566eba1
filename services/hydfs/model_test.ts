/**
 * The client against the real hydfsd app, in-process (a one-node ring, its Elysia app served on
 * 127.0.0.1, port 0): every typed call of client.ts gets the shape model.ts declares, hydfsd's
 * error words come through readError, and an answer that breaks its route's declared shape is
 * the daemon's 500, never the caller's 400.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClusterHttp, jsonErrorHook } from "../shared/http.ts";
import { makeLogger } from "../shared/log.ts";
import { buildNodeConfig } from "../node_config.ts";
import { HydfsCallError, HydfsClient, ONE_ATTEMPT } from "./client.ts";
import { hydfsApp } from "./http.ts";
import { StatAnswer } from "./model.ts";
import { HydfsNode } from "./node.ts";
import { FileStore } from "./store.ts";

const HOST = "127.0.48.251";

describe("HydfsClient against hydfsd's app", () => {
  const root = mkdtempSync(join(tmpdir(), "hydfs-model-test-"));
  let server: ReturnType<typeof Bun.serve>;
  let client: HydfsClient;
  let node: HydfsNode;

  beforeAll(() => {
    const cfg = buildNodeConfig({ host: HOST, data_dir: root, hydfs: { replica_count: 1 } });
    node = new HydfsNode(cfg, new FileStore(join(root, "hydfs")), makeLogger("model-test", "error"));
    node.setMembers([{ id: `${HOST}:5000@1`, state: "alive", ports: { ...cfg.ports } } as never]);
    node.setViewReady(true);
    node.stop();
    const app = hydfsApp(node);
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => app.handle(req) });
    client = new HydfsClient({ http: new ClusterHttp(""), bases: () => [`http://127.0.0.1:${server.port}`], clientId: "model-test", rules: ONE_ATTEMPT });
  });
  afterAll(() => {
    server.stop(true);
    rmSync(root, { recursive: true, force: true });
  });

  /** Writes and merges name a replica by its host; a delete by host:port. */
  const replica = HOST;
  const token = expect.stringMatching(/^[0-9a-f]+$/);

  test("writes: a create, an append, the same append again (a duplicate), a create of an existing name (409)", async () => {
    expect(await client.write("create", "f.txt", "one\n")).toEqual({ name: "f.txt", size: 4, replicas: [replica], acked: [replica], duplicate: false });
    const seq = client.nextSeq();
    expect(await client.write("append", "f.txt", "two\n", { seq })).toEqual({
      name: "f.txt",
      size: 4,
      replicas: [replica],
      acked: [replica],
      duplicate: false,
    });
    expect((await client.write("append", "f.txt", "two\n", { seq })).duplicate).toBe(true);
    const err = (await client.write("create", "f.txt", "again\n").catch((e) => e)) as HydfsCallError;
    expect(err).toBeInstanceOf(HydfsCallError);
    expect(err.status).toBe(409);
    expect(err.message).toBe(`create of f.txt: 409 ${err.reason}`);
    expect(err.reason).toContain("f.txt");
    expect(err.body).toEqual({ error: err.reason });
  });

  test("reads: text, a stream with its size headers, stat; a missing name is undefined", async () => {
    expect(await client.readText("f.txt")).toBe("one\ntwo\n");
    const res = (await client.open("f.txt"))!;
    expect([res.headers.get("x-hydfs-size"), res.headers.get("x-hydfs-ops"), await res.text()]).toEqual(["8", "2", "one\ntwo\n"]);
    expect(await client.stat("f.txt")).toEqual({ name: "f.txt", size: 8, ops: 2 } satisfies StatAnswer);
    expect(await client.readText("missing")).toBeUndefined();
    expect(await client.open("missing")).toBeUndefined();
    expect(await client.stat("missing")).toBeUndefined();
    expect(await client.openFromReplica("missing", { at: `http://127.0.0.1:${server.port}` })).toBeUndefined();
  });

  test("ls, liststore, list_mem_ids, merge, metrics", async () => {
    expect(await client.ls("f.txt")).toEqual({ name: "f.txt", token, replicas: [{ id: `${HOST}:5000@1`, host: HOST, token }] });
    expect(await client.liststore()).toEqual({ node: `${HOST}:5000@1`, host: HOST, token, files: [{ name: "f.txt", token, size: 8, ops: 2 }] });
    expect(await client.listMemIds()).toEqual({ count: 1, members: [{ id: `${HOST}:5000@1`, host: HOST, token }] });
    expect(await client.merge("f.txt")).toEqual({ name: "f.txt", digest: expect.any(String), updated: [], replicas: [replica], confirmed: true });
    expect(await client.metrics()).toContain('hydfs_ops_total{op="merge"} 1');
  });

  test("delete: the tombstone's replicas; then the name is gone, and a second delete is 404", async () => {
    expect(await client.delete("f.txt")).toEqual({ name: "f.txt", deleted: true, replicas: [`${HOST}:${buildNodeConfig({ host: HOST }).ports.hydfs}`] });
    expect(await client.stat("f.txt")).toBeUndefined();
    expect(((await client.delete("f.txt").catch((e) => e)) as HydfsCallError).status).toBe(404);
  });
});

test("an answer that breaks its route's declared shape is a 500 naming the field, not a 400", async () => {
  const app = new Elysia().onError(jsonErrorHook).get("/stat", () => ({ name: "f", size: "big", ops: 1 }) as never, { response: { 200: StatAnswer } });
  const res = await app.handle(new Request("http://localhost/stat"));
  expect(res.status).toBe(500);
  expect(((await res.json()) as { error: string }).error).toStartWith('answer does not fit its declared shape: size: Expected number (got "big")');
});
