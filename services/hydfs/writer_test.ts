/**
 * HydfsWriter's retry policy against tiny local servers (127.0.0.1, port 0) that answer as a
 * coordinator would: 503 then 200, always 503, 404, 409, a closed port. Deadlines and backoff
 * are injected, so every case takes milliseconds.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ClusterHttp } from "../shared/http.ts";
import { HydfsWriteError, HydfsWriter, retryableStatus } from "./writer.ts";
import { scaled } from "../testing/time.ts";

type Answer = { status: number; body?: string };

interface FakeCoordinator {
  base: string;
  /** Every request, in order: method, path and query, body. */
  seen: { method: string; url: string; body: string }[];
}

const servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

/** A coordinator that gives `answers` in turn, then the last one forever. */
function coordinator(...answers: Answer[]): FakeCoordinator {
  const fake: FakeCoordinator = { base: "", seen: [] };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      fake.seen.push({ method: req.method, url: `${u.pathname}${u.search}`, body: await req.text() });
      const a = answers[Math.min(fake.seen.length - 1, answers.length - 1)]!;
      return new Response(a.body ?? (a.status < 300 ? "" : JSON.stringify({ error: `status ${a.status}` })), { status: a.status });
    },
  });
  servers.push(server);
  fake.base = `http://127.0.0.1:${server.port}`;
  return fake;
}

/** A base URL nobody listens on (a dead coordinator: connection refused). */
function deadBase(): string {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const base = `http://127.0.0.1:${s.port}`;
  s.stop(true);
  return base;
}

const http = new ClusterHttp("");
const FAST = { retryDeadlineMs: 400, firstBackoffMs: 5, maxBackoffMs: 20, callTimeoutMs: 1000 };

function writer(bases: string[], opts = FAST): HydfsWriter {
  return new HydfsWriter(() => bases, http, "logs/task.log", "task-1", opts);
}

async function caught(p: Promise<unknown>): Promise<HydfsWriteError> {
  try {
    await p;
  } catch (err) {
    return err as HydfsWriteError;
  }
  throw new Error("expected an error");
}

describe("HydfsWriter retries what is retryable", () => {
  test("retryable statuses: every 5xx; no 4xx", () => {
    for (const s of [500, 502, 503, 504]) expect(retryableStatus(s)).toBe(true);
    for (const s of [400, 404, 409, 413]) expect(retryableStatus(s)).toBe(false);
  });

  test("503 twice, then 200: the append succeeds, every attempt with the same seq and body", async () => {
    const c = coordinator({ status: 503 }, { status: 503 }, { status: 200, body: "{}" });
    await writer([c.base]).write("append", "record\n");
    expect(c.seen.length).toBe(3);
    expect(new Set(c.seen.map((s) => s.url))).toEqual(new Set(["/append?name=logs%2Ftask.log&client=task-1&seq=1"]));
    expect(c.seen.every((s) => s.method === "POST" && s.body === "record\n")).toBe(true);
  });

  test("a 503 moves on to the next coordinator at once; the next write takes the next seq", async () => {
    const notReady = coordinator({ status: 503 });
    const ok = coordinator({ status: 200 });
    const w = writer([notReady.base, ok.base]);
    await w.write("append", "a");
    await w.write("append", "b");
    expect(notReady.seen.map((s) => s.url)).toEqual(["/append?name=logs%2Ftask.log&client=task-1&seq=1", "/append?name=logs%2Ftask.log&client=task-1&seq=2"]);
    expect(ok.seen.map((s) => s.body)).toEqual(["a", "b"]);
  });

  test("an unreachable coordinator, 502 and 504 are skipped the same way", async () => {
    const bad = coordinator({ status: 502 }, { status: 504 });
    const ok = coordinator({ status: 503 }, { status: 200 });
    await writer([deadBase(), bad.base, ok.base]).write("create", "");
    expect(bad.seen.length).toBe(2);
    expect(ok.seen.length).toBe(2);
  });

  test("always 503: fails after the deadline, naming it, the attempts and the last answer", async () => {
    const c = coordinator({ status: 503, body: '{"error":"not current yet"}' });
    const t0 = performance.now();
    const err = await caught(writer([c.base]).write("append", "x"));
    const took = performance.now() - t0;
    expect(err).toBeInstanceOf(HydfsWriteError);
    expect(err.status).toBe(503);
    expect(err.message).toStartWith("append of logs/task.log: no coordinator could serve it within 400 ms (");
    expect(err.message).toContain(`last: ${c.base}: 503 {"error":"not current yet"}`);
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(scaled(2000));
    expect(c.seen.length).toBeGreaterThan(5);
  });

  test("no coordinator known at all: fails after the deadline and says so", async () => {
    const err = await caught(writer([], { ...FAST, retryDeadlineMs: 50 }).write("append", "x"));
    expect(err.message).toBe("append of logs/task.log: no coordinator could serve it within 50 ms (0 attempts); last: no HyDFS coordinator known");
  });

  test("409 is final: one attempt, the status kept for the caller", async () => {
    const c = coordinator({ status: 409, body: "exists" });
    const other = coordinator({ status: 200 });
    const err = await caught(writer([c.base, other.base]).write("create", ""));
    expect(err.status).toBe(409);
    expect(err.message).toBe("create of logs/task.log: 409 exists");
    expect(c.seen.length).toBe(1);
    expect(other.seen.length).toBe(0);
  });

  test("another 4xx (404 on append, 400) is final too", async () => {
    for (const status of [404, 400]) {
      const c = coordinator({ status });
      const err = await caught(writer([c.base]).write("append", "x"));
      expect(err.status).toBe(status);
      expect(c.seen.length).toBe(1);
    }
  });
});

describe("HydfsWriter.read", () => {
  test("503 then 200: the text", async () => {
    const c = coordinator({ status: 503 }, { status: 200, body: "line 1\n" });
    expect(await writer([c.base]).read()).toBe("line 1\n");
    expect(c.seen.map((s) => s.url)).toEqual(["/get?name=logs%2Ftask.log", "/get?name=logs%2Ftask.log"]);
  });

  test("404 is 'no such file' at once: undefined, no retry", async () => {
    const c = coordinator({ status: 404 });
    expect(await writer([c.base]).read()).toBeUndefined();
    expect(c.seen.length).toBe(1);
  });

  test("a dead coordinator, then a 404 from a live one: undefined", async () => {
    const c = coordinator({ status: 404 });
    expect(await writer([deadBase(), c.base]).read()).toBeUndefined();
  });

  test("always 503: the deadline error; 400: final", async () => {
    const c = coordinator({ status: 503 });
    const err = await caught(writer([c.base], { ...FAST, retryDeadlineMs: 100 }).read());
    expect(err.message).toStartWith("reading logs/task.log: no coordinator could serve it within 100 ms");
    const bad = coordinator({ status: 400, body: "bad name" });
    const final = await caught(writer([bad.base]).read());
    expect(final.message).toBe("reading logs/task.log: 400 bad name");
    expect(bad.seen.length).toBe(1);
  });
});
