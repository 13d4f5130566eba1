/**
 * ctl's HyDFS retries in-process, against a tiny local hydfsd stand-in (127.0.0.1, port 0):
 * a 503 is retried a few times with backoff within --timeout, an upload keeps its (client, seq)
 * and sends the whole file again each time, other errors are not retried, and every retry says
 * `retrying: <error>` on stderr.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { ClusterHttp } from "../shared/http.ts";
import { tempPath } from "../testing/cluster.ts";
import type { Ctx } from "./context.ts";
import { CTL_RETRY, nextPauseMs } from "../shared/retry.ts";
import { callJson } from "./hydfs_call.ts";

const CTL_RETRY_ATTEMPTS = CTL_RETRY.maxAttempts;
const CTL_RETRY_FIRST_PAUSE_MS = CTL_RETRY.firstBackoffMs;
const CTL_RETRY_MAX_PAUSE_MS = CTL_RETRY.maxBackoffMs;
/** ctl's pause after `failed` failures, `elapsedMs` into a --timeout of `budgetMs` (undefined: give up). */
const retryPauseMs = (failed: number, elapsedMs: number, budgetMs: number) => nextPauseMs({ ...CTL_RETRY, deadlineMs: budgetMs }, failed, elapsedMs);
import { download, upload } from "./hydfs_transfer.ts";

describe("retryPauseMs", () => {
  /** [failed attempts, elapsed ms, --timeout ms, pause or undefined] */
  const ROWS: [number, number, number, number | undefined][] = [
    [1, 0, 3000, CTL_RETRY_FIRST_PAUSE_MS],
    [2, 300, 3000, 2 * CTL_RETRY_FIRST_PAUSE_MS],
    [3, 800, 3000, 4 * CTL_RETRY_FIRST_PAUSE_MS],
    [4, 1000, 60_000, Math.min(8 * CTL_RETRY_FIRST_PAUSE_MS, CTL_RETRY_MAX_PAUSE_MS)],
    [CTL_RETRY_ATTEMPTS - 1, 0, 60_000, CTL_RETRY_MAX_PAUSE_MS],
    [CTL_RETRY_ATTEMPTS, 0, 60_000, undefined],
    [1, 2800, 3000, undefined],
    [1, 0, 100, undefined],
  ];
  test.each(ROWS)("after %d failures, %d ms into a %d ms budget: %p", (failed, elapsed, budget, want) => {
    expect(retryPauseMs(failed, elapsed, budget)).toBe(want);
  });
});

describe("ctl HyDFS calls retry a 503", () => {
  const dir = tempPath("ctl-retry-");
  const seen: { method: string; url: string; body: string }[] = [];
  let answers: { status: number; body: string }[] = [];
  let server: ReturnType<typeof Bun.serve>;
  const stderr: string[] = [];
  const realWrite = process.stderr.write.bind(process.stderr);

  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
    process.env.RAINSTORM_CTL_STATE = join(dir, "client.json");
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const u = new URL(req.url);
        seen.push({ method: req.method, url: `${u.pathname}${u.search}`, body: await req.text() });
        const a = answers[Math.min(seen.length - 1, answers.length - 1)]!;
        return new Response(a.body, { status: a.status, headers: { "x-hydfs-size": String(a.body.length), "x-hydfs-ops": "1" } });
      },
    });
    process.stderr.write = ((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
  });
  afterEach(() => {
    seen.length = 0;
    stderr.length = 0;
  });
  afterAll(() => {
    process.stderr.write = realWrite;
    server.stop(true);
    delete process.env.RAINSTORM_CTL_STATE;
    rmSync(dir, { recursive: true, force: true });
  });

  function ctx(timeoutMs = 3000): Ctx {
    const cfg = buildNodeConfig({ ports: { hydfs: server.port } });
    return { cfg, host: "127.0.0.1", json: false, timeoutMs, http: new ClusterHttp("") };
  }
  const NOT_READY = { status: 503, body: JSON.stringify({ error: "append f: this node has not joined the cluster yet; retry" }) };

  test("upload: 503 twice, then the answer; the same (client, seq) and the whole file every time", async () => {
    const local = join(dir, "part.txt");
    writeFileSync(local, "x".repeat(100_000));
    answers = [
      NOT_READY,
      NOT_READY,
      { status: 200, body: JSON.stringify({ name: "f", size: 100_000, replicas: ["a", "b", "c"], acked: ["a", "b"], duplicate: false }) },
    ];
    const up = await upload(ctx(), "append", local, "f");
    expect(up.answer.acked).toEqual(["a", "b"]);
    expect(seen.length).toBe(3);
    expect(new Set(seen.map((s) => s.url))).toEqual(new Set([`/append?name=f&client=${encodeURIComponent(up.clientId)}&seq=${up.seq}`]));
    expect(seen.every((s) => s.body === readFileSync(local, "utf8"))).toBe(true);
    expect(stderr.filter((l) => l.startsWith("retrying: "))).toEqual([
      "retrying: append f: this node has not joined the cluster yet; retry (HTTP 503)\n",
      "retrying: append f: this node has not joined the cluster yet; retry (HTTP 503)\n",
    ]);
  });

  test("always 503: gives up within --timeout with the node's message", async () => {
    answers = [NOT_READY];
    const t0 = performance.now();
    let err: Error | undefined;
    try {
      await callJson(ctx(1000), "GET", "/ls?name=f");
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toBe("append f: this node has not joined the cluster yet; retry (HTTP 503)");
    expect(performance.now() - t0).toBeLessThan(1000);
    // 250 + 500 ms of pauses fit in 1000 ms; the next (1000 ms) does not.
    expect(seen.length).toBe(3);
  });

  test("download: 503 then the bytes", async () => {
    answers = [NOT_READY, { status: 200, body: "hello\n" }];
    const out = join(dir, "got.txt");
    expect(await download(ctx(), "/get?name=f", out, "get f")).toEqual({ size: 6, ops: 1 });
    expect(readFileSync(out, "utf8")).toBe("hello\n");
    expect(seen.length).toBe(2);
  });

  test("404, 409 and a 503 for a call that must not be repeated are final", async () => {
    for (const [status, retry503] of [
      [404, true],
      [409, true],
      [503, false],
    ] as const) {
      seen.length = 0;
      answers = [
        { status, body: JSON.stringify({ error: `status ${status}` }) },
        { status: 200, body: "{}" },
      ];
      let err: Error | undefined;
      try {
        await callJson(ctx(), "POST", "/multiappend_local?name=f&local=x", "127.0.0.1", retry503);
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).toBe(`status ${status} (HTTP ${status})`);
      expect(seen.length).toBe(1);
    }
    expect(stderr).toEqual([]);
  });
});
