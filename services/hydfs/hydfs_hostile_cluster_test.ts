/**
 * HyDFS against a hostile or buggy caller that holds the cluster secret, on real processes
 * (4 nodes on testNet(49).k, so one node of each file is a non-replica coordinator). Each attack
 * is repeated with variations and must be refused with its message, leave every stored file
 * unchanged on every replica and leave the cluster healthy:
 * - a reused (client, seq) with other bytes (create and append, any coordinator, any size, a
 *   first use that reached one replica only);
 * - timestamps from the future (a delete's `at`, ops' tsMs, adopt's tombstone);
 * - unbounded bodies (a 300 MB chunk PUT or replica write, with hydfsd's peak RSS checked);
 * - adopt naming a chunk source outside the ring (a decoy server that must never be contacted).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { countedStream } from "../testing/streams.ts";
import { encode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";
import { LocalCluster, tempPath } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { CHUNK_BYTES, MAX_CLOCK_SKEW_MS } from "./limits.ts";
import { chunkIdOf } from "./store.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const MiB = 1024 * 1024;
const SUBNET = testNet(49);

function vmHwmKb(pid: number): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

describe("HyDFS against a hostile caller", () => {
  const c = new LocalCluster({
    dir: tempPath("hydfs-hostile-"),
    subnet: SUBNET,
    secret: "hostile-test-secret",
    knobs: { t_cleanup_ms: 3000 },
    killOnExit: true,
  });
  const client = new HydfsTestClient(c);
  const ALL = [1, 2, 3, 4];

  /** Node numbers holding `name`, from `ls`. */
  async function replicasOf(name: string): Promise<number[]> {
    return (await client.ls(1, name)).replicas.map((r) => Number(r.host.slice(SUBNET.length + 1)));
  }

  /** Every replica's own copy of `name` is `want`, and a quorum read agrees. */
  async function expectEverywhere(name: string, want: string): Promise<void> {
    for (const k of await replicasOf(name)) expect([k, new TextDecoder().decode(await client.fromReplica(k, name))]).toEqual([k, want]);
    for (const k of ALL) expect(await client.getText(k, name)).toBe(want);
  }

  async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
    const err = (await p.then(
      () => undefined,
      (e) => e,
    )) as { status: number; message: string } | undefined;
    if (!err) throw new Error("expected the call to fail");
    return err;
  }

  /** A signed call straight to node k's hydfsd, as another node (or a caller with the secret) would make. */
  async function raw(
    k: number,
    method: string,
    path: string,
    body?: Bun.BodyInit,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any }> {
    const res = await c.http.fetch(c.hydfsUrl(k, path), { method, body, headers, timeoutMs: 30_000 });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      return { status: res.status, body: text };
    }
  }

  /** Set by the first test once reuse.log holds its final bytes: the last test checks it survived. */
  let reuseLogWritten = false;

  beforeAll(async () => {
    await c.up(4);
    // A file that exists before any attack, whichever tests run: the last test checks it survived.
    await client.write(1, "create", "witness.txt", "written before the attacks\n");
  });
  afterAll(async () => {
    await c.down(true);
  });

  test("a reused (client, seq): same bytes are a duplicate anywhere; other bytes are 409 anywhere and change nothing", async () => {
    const name = "reuse.log";
    const who = "reuser";
    await client.write(1, "create", name, "head\n", 1, who);
    expect((await client.write(2, "append", name, "one\n", 2, who)).duplicate).toBe(false);
    for (const k of ALL) {
      expect((await client.write(k, "append", name, "one\n", 2, who)).duplicate).toBe(true);
      expect((await client.write(k, "create", name, "head\n", 1, who)).duplicate).toBe(true);
    }
    const big = new Uint8Array(CHUNK_BYTES + 5 * MiB).fill(0x62);
    const variants: [string, "create" | "append", number, Uint8Array | string][] = [
      ["same size, other bytes", "append", 2, "ONE\n"],
      ["empty", "append", 2, ""],
      ["longer", "append", 2, "one\nand more\n"],
      ["streamed, two chunks", "append", 2, big],
      ["the create's pair, as an append", "append", 1, "head\n"],
      ["the create, other bytes", "create", 1, "HEAD\n"],
    ];
    for (const [label, kind, seq, body] of variants) {
      for (const k of ALL) {
        const err = await failure(client.write(k, kind, name, body, seq, who));
        expect([label, k, err.status]).toEqual([label, k, 409]);
        expect(err.message).toContain(
          `client ${who} seq ${seq} of ${name} was already used for different bytes (this ${kind} of ${typeof body === "string" ? body.length : body.length} bytes`,
        );
      }
    }
    await expectEverywhere(name, "head\none\n");
    // The replicas agree op for op: a merge has nothing to repair.
    expect((await client.merge(3, name)).updated).toEqual([]);
    reuseLogWritten = true;
  });

  test("a first use that reached one replica only: a reuse with other bytes is refused and taken back where it landed", async () => {
    const name = "partial.log";
    const who = "partial-writer";
    await client.write(1, "create", name, "head\n", 1, who);
    const [lone] = await replicasOf(name);
    // (who, 2) with "first\n" reaches one replica only, as when the others were down.
    const data = new TextEncoder().encode("first\n");
    const op = {
      opId: crypto.randomUUID(),
      clientId: who,
      seq: 2,
      tsMs: Date.now(),
      chunks: [{ id: chunkIdOf(data), size: data.length }],
      size: data.length,
      kind: "append",
    };
    const r = await raw(lone!, "POST", `/internal/append?name=${name}&inline=1`, encode({ op, data }), { "content-type": "application/msgpack" });
    expect([r.status, r.body.result]).toEqual([200, "ok"]);
    // The other replicas take the reuse, that one refuses it: 409, and the others take it back.
    const err = await failure(client.write(4, "append", name, "second\n", 2, who));
    expect(err.status).toBe(409);
    expect(err.message).toContain(`client ${who} seq 2 of ${name} was already used for different bytes`);
    await client.merge(2, name);
    await expectEverywhere(name, "head\nfirst\n");
  });

  test("timestamps from the future are refused (400) on every node; the names stay usable", async () => {
    const far = Number.MAX_SAFE_INTEGER;
    const ahead = Date.now() + MAX_CLOCK_SKEW_MS + 60_000;
    for (const k of ALL) {
      for (const at of [far, ahead]) {
        const r = await raw(k, "POST", `/internal/delete?name=poison&at=${at}`);
        expect([k, r.status]).toEqual([k, 400]);
        expect(r.body.error).toContain(`delete poison: at ${at}: is`);
      }
      const adopt = await raw(k, "POST", "/internal/adopt?name=poison", JSON.stringify({ ops: [], sources: [], deletedAtMs: far }), {
        "content-type": "application/json",
      });
      expect([k, adopt.status]).toEqual([k, 400]);
      const op = { opId: crypto.randomUUID(), clientId: "x", seq: 1, tsMs: far, chunks: [], size: 0, kind: "create" };
      const create = await raw(k, "POST", "/internal/create?name=poison", JSON.stringify(op), { "content-type": "application/json" });
      expect([k, create.status]).toEqual([k, 400]);
      expect(create.body.error).toContain(`create poison: op tsMs ${far}: is`);
    }
    // No tombstone, no op: the name is free, and a real delete and re-create work as before.
    await client.write(2, "create", "poison", "alive\n");
    await expectEverywhere("poison", "alive\n");
    await client.json(3, "POST", "/delete?name=poison");
    await client.write(4, "create", "poison", "again\n");
    await expectEverywhere("poison", "again\n");
  });

  test("a 300 MB chunk PUT or replica write is cut off at its limit; hydfsd's peak RSS stays bounded", async () => {
    const k = 2;
    const pid = c.pid(k, "hydfsd")!;
    const before = vmHwmKb(pid);
    for (const path of [`/internal/chunk/${"a".repeat(64)}`, "/internal/append?name=reuse.log", "/internal/create?name=huge&inline=1"]) {
      const { stream, state } = countedStream(300, MiB, 0x41);
      const status = await c.http
        .fetch(c.hydfsUrl(k, path), { method: path.includes("chunk") ? "PUT" : "POST", body: stream, timeoutMs: 60_000 })
        .then((res) => res.status)
        .catch(() => "closed");
      // The answer is 413, or the connection closes before the client reads it.
      expect([path, status === 413 || status === "closed"]).toEqual([path, true]);
      expect(state.pulled).toBeLessThan(100 * MiB);
    }
    const grew = (vmHwmKb(pid) - before) / 1024;
    expect(grew).toBeLessThan(64);
    await expectEverywhere("reuse.log", "head\none\n");
  });

  test("adopt naming a source outside the ring is refused and the source is never contacted", async () => {
    const hits: string[] = [];
    // A decoy on an address of the cluster's subnet, on the hydfs port, that no member has.
    const decoy = Bun.serve({
      hostname: `${SUBNET}.200`,
      port: Number(new URL(c.hydfsUrl(1)).port),
      fetch(req) {
        hits.push(new URL(req.url).pathname);
        return new Response(new Uint8Array(400 * MiB));
      },
    });
    try {
      const data = new TextEncoder().encode("from nowhere\n");
      const ops = [
        {
          opId: crypto.randomUUID(),
          clientId: "x",
          seq: 1,
          tsMs: Date.now(),
          chunks: [{ id: chunkIdOf(data), size: data.length }],
          size: data.length,
          kind: "create",
        },
      ];
      for (const k of ALL) {
        for (const sources of [
          [{ host: `${SUBNET}.200`, hydfsPort: decoy.port! }],
          // A member's host with another port is not its hydfsd.
          [{ host: c.host(1), hydfsPort: 8080 }],
          [
            { host: c.host(k === 1 ? 2 : 1), hydfsPort: decoy.port! },
            { host: `${SUBNET}.200`, hydfsPort: decoy.port! },
          ],
        ]) {
          const r = await raw(k, "POST", "/internal/adopt?name=adopted", JSON.stringify({ ops, sources }), { "content-type": "application/json" });
          expect([k, r.status]).toEqual([k, 400]);
          expect(r.body.error).toContain("expected hydfsd of current ring members only");
        }
      }
      await Bun.sleep(200);
      expect(hits).toEqual([]);
      for (const k of ALL) expect(await client.fromReplica(k, "adopted")).toBeUndefined();
    } finally {
      decoy.stop(true);
    }
  });

  test("the cluster is healthy afterwards", async () => {
    for (const k of ALL) expect((await client.listMemIds(k)).members.length).toBe(4);
    await client.write(3, "create", "after.txt", "still fine\n");
    await expectEverywhere("after.txt", "still fine\n");
    await expectEverywhere("witness.txt", "written before the attacks\n");
    if (reuseLogWritten) await expectEverywhere("reuse.log", "head\none\n");
  });
});
