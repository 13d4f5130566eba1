/**
 * A secured 3-node cluster (testNet(60).k) as an attacker on its network sees it: every listing, read
 * and stream of all three daemons refuses an unauthenticated caller; what ctl sends can be captured
 * whole (a recording proxy stands between ctl and hydfsd) without revealing the secret, and a
 * captured request replayed, or edited, is refused and changes nothing.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_PORTS } from "../member/config.ts";
import { LocalCluster, tempPath } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(90_000));

const SECRET = "captured-secret-91c2e7";
const CTL = resolve(import.meta.dir, "../ctl.ts");
/** The recording proxy sits on node 1's own address, on another port (a capture point on the node's path). */
const PROXY_PORT = 10099;

interface Captured {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

describe("a secured cluster under capture and replay", () => {
  const c = new LocalCluster({ dir: tempPath("secured-"), subnet: testNet(60), secret: SECRET, killOnExit: true });
  const work = tempPath("secured-work-");
  const captured: Captured[] = [];
  let proxy: ReturnType<typeof Bun.serve> | undefined;

  beforeAll(async () => {
    mkdirSync(work, { recursive: true });
    await c.up(3);
    // A recording man-in-the-middle in front of node 1's hydfsd: forwards and keeps every request.
    proxy = Bun.serve({
      hostname: c.host(1),
      port: PROXY_PORT,
      async fetch(req) {
        const url = new URL(req.url);
        const body = new Uint8Array(await req.arrayBuffer());
        const headers = Object.fromEntries(req.headers.entries());
        captured.push({ method: req.method, path: url.pathname + url.search, headers, body });
        return fetch(c.hydfsUrl(1, url.pathname + url.search), {
          method: req.method,
          headers,
          body: body.length ? body : undefined,
          signal: AbortSignal.timeout(10_000),
        });
      },
    });
  });
  afterAll(async () => {
    proxy?.stop(true);
    await c.down(true);
    rmSync(work, { recursive: true, force: true });
  });

  test("the cluster's state and node configs, which hold the secret, are readable by their owner only", () => {
    for (const path of [join(c.dir, "state.json"), c.configPath(1), c.configPath(3)]) expect([path, statSync(path).mode & 0o777]).toEqual([path, 0o600]);
  });

  test("reads, listings and streams of every daemon refuse a caller without the credential", async () => {
    const hydfs = new HydfsTestClient(c);
    await hydfs.write(1, "create", "private.txt", "secret contents\n");
    const urls = [
      c.hydfsUrl(2, "/get?name=private.txt"),
      c.hydfsUrl(2, "/getfromreplica?name=private.txt"),
      c.hydfsUrl(2, "/stat?name=private.txt"),
      c.hydfsUrl(2, "/ls?name=private.txt"),
      c.hydfsUrl(2, "/liststore"),
      c.hydfsUrl(2, "/list_mem_ids"),
      c.hydfsUrl(2, "/metrics"),
      c.httpUrl(2, "/list_mem"),
      c.httpUrl(2, "/list_self"),
      c.httpUrl(2, "/get"),
      c.httpUrl(2, "/watch"),
      c.httpUrl(2, "/display_suspects"),
      `http://${c.host(1)}:${DEFAULT_PORTS.rainstorm}/tasks`,
      `http://${c.host(1)}:${DEFAULT_PORTS.rainstorm}/jobs`,
      `http://${c.host(2)}:${DEFAULT_PORTS.rainstorm}/worker/tasks`,
    ];
    for (const url of urls) {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      expect([url, res.status]).toEqual([url, 401]);
      expect(text).not.toContain("secret contents");
      // The same call, signed, is served.
      const signed = await c.http.fetch(url, { timeoutMs: scaled(5000) });
      if (!url.includes("/watch")) expect([url, signed.status]).toEqual([url, 200]);
      else await signed.body?.cancel();
    }
    expect((await fetch(c.hydfsUrl(2, "/health"), { signal: AbortSignal.timeout(5000) })).status).toBe(200);
  });

  test("ctl's captured requests hold no trace of the secret, and replaying or editing them is refused", async () => {
    const config = join(work, "config.json");
    writeFileSync(config, JSON.stringify({ cluster_secret: SECRET, aliases: { mitm: c.host(1) }, ports: { ...DEFAULT_PORTS, hydfs: PROXY_PORT } }), {
      mode: 0o600,
    });
    const local = join(work, "upload.txt");
    writeFileSync(local, "line one\nline two\n");
    const proc = Bun.spawn([process.execPath, CTL, "create", local, "captured.txt", "--node", "mitm", "--config", config], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, RAINSTORM_CTL_STATE: join(work, "client.json") },
    });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect([await proc.exited, err]).toEqual([0, ""]);
    expect(out).toContain("created captured.txt");
    const create = captured.find((r) => r.path.startsWith("/create?"));
    expect(create).toBeDefined();

    // Nothing captured contains the secret, in any common encoding.
    const needles = [SECRET, Buffer.from(SECRET).toString("base64"), Buffer.from(SECRET).toString("hex"), encodeURIComponent(SECRET)];
    for (const r of captured) {
      const all = `${r.method} ${r.path}\n${JSON.stringify(r.headers)}\n${Buffer.from(r.body).toString("latin1")}`;
      for (const n of needles) expect(all.includes(n)).toBe(false);
    }

    const hydfs = new HydfsTestClient(c);
    const before = await hydfs.getText(2, "captured.txt");
    const replay = (r: Captured, path = r.path, body: Uint8Array = r.body) =>
      fetch(c.hydfsUrl(1, path), { method: r.method, headers: r.headers, body: body.length ? body : undefined, signal: AbortSignal.timeout(5000) });
    // Replayed as captured (within the time window): the nonce was used.
    const again = await replay(create!);
    expect(again.status).toBe(401);
    expect(((await again.json()) as { error: string }).error).toContain("replayed");
    // Replayed as an append of other bytes to the same file, or to another path.
    const asAppend = await replay(create!, create!.path.replace("/create?", "/append?"), new TextEncoder().encode("forged\n"));
    expect(asAppend.status).toBe(401);
    const deleteIt = await replay({ ...create!, method: "POST" }, `/delete?name=captured.txt`, new Uint8Array(0));
    expect(deleteIt.status).toBe(401);
    // Replayed as captured to another node (whose replay cache has never seen the nonce).
    for (const k of [2, 3]) {
      const elsewhere = await fetch(c.hydfsUrl(k, create!.path.replace("captured.txt", "captured-elsewhere.txt")), {
        method: "POST",
        headers: create!.headers,
        body: create!.body,
        signal: AbortSignal.timeout(5000),
      });
      expect([k, elsewhere.status]).toEqual([k, 401]);
      const same = await fetch(c.hydfsUrl(k, create!.path), {
        method: "POST",
        headers: create!.headers,
        body: create!.body,
        signal: AbortSignal.timeout(5000),
      });
      expect([k, same.status]).toEqual([k, 401]);
    }
    expect(await hydfs.getText(2, "captured.txt")).toBe(before);
    expect(before).toBe("line one\nline two\n");
  });
});
