/**
 * HydfsClient's retry rules against tiny local servers (127.0.0.1, port 0) that answer as a
 * coordinator would: 503 then 200, always 503, 404, 409, a closed port. The retry loop runs on a
 * virtual clock (its pauses advance it at once), so every case takes milliseconds and the
 * deadline arithmetic is exact.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ClusterHttp } from "../shared/http.ts";
import { nextPauseMs, type RetryDeps, type RetryPolicy } from "../shared/retry.ts";
import { DAEMON_RULES, HydfsCallError, HydfsClient, ONE_ATTEMPT, type RetryRules } from "./client.ts";

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
      return new Response(a.body ?? (a.status < 300 ? "{}" : JSON.stringify({ error: `status ${a.status}` })), { status: a.status });
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

/** Virtual time: only the retry loop's pauses move it, each recorded. */
function virtualClock(): RetryDeps & { now: number; pauses: number[] } {
  const clock = {
    now: 0,
    pauses: [] as number[],
    nowMs: () => clock.now,
    sleep: async (ms: number) => {
      clock.pauses.push(ms);
      clock.now += ms;
    },
  };
  return clock;
}

const http = new ClusterHttp("");
const FAST_POLICY: RetryPolicy = { deadlineMs: 400, maxAttempts: Infinity, firstBackoffMs: 5, maxBackoffMs: 20 };
const FAST: RetryRules = { ...DAEMON_RULES, policy: FAST_POLICY };

function client(bases: string[], rules = FAST, clock = virtualClock()): HydfsClient {
  return new HydfsClient({ http, bases: () => bases, clientId: "task-1", rules, callTimeoutMs: 1000, deps: clock });
}

async function caught(p: Promise<unknown>): Promise<HydfsCallError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HydfsCallError);
    return err as HydfsCallError;
  }
  throw new Error("expected an error");
}

const APPEND_1 = "/append?name=logs%2Ftask.log&client=task-1&seq=1";

describe("writes retry what is retryable, under one (client, seq)", () => {
  test("503 twice, then 200: the append succeeds, every attempt with the same seq and body", async () => {
    const c = coordinator({ status: 503 }, { status: 503 }, { status: 200 });
    await client([c.base]).file("logs/task.log").write("append", "record\n");
    expect(c.seen.length).toBe(3);
    expect(new Set(c.seen.map((s) => s.url))).toEqual(new Set([APPEND_1]));
    expect(c.seen.every((s) => s.method === "POST" && s.body === "record\n")).toBe(true);
  });

  test("a 503 moves on to the next coordinator at once; the next write takes the next seq", async () => {
    const notReady = coordinator({ status: 503 });
    const ok = coordinator({ status: 200 });
    const clock = virtualClock();
    const f = client([notReady.base, ok.base], FAST, clock).file("logs/task.log");
    await f.write("append", "a");
    await f.write("append", "b");
    expect(notReady.seen.map((s) => s.url)).toEqual([APPEND_1, "/append?name=logs%2Ftask.log&client=task-1&seq=2"]);
    expect(ok.seen.map((s) => s.body)).toEqual(["a", "b"]);
    expect(clock.pauses).toEqual([]);
  });

  test("an unreachable coordinator, 502 and 504 are skipped the same way; a pause only after a whole round", async () => {
    const bad = coordinator({ status: 502 }, { status: 504 });
    const ok = coordinator({ status: 503 }, { status: 200 });
    const clock = virtualClock();
    await client([deadBase(), bad.base, ok.base], FAST, clock).write("create", "f", "");
    expect(bad.seen.length).toBe(2);
    expect(ok.seen.length).toBe(2);
    expect(clock.pauses).toEqual([FAST_POLICY.firstBackoffMs]);
  });

  test("a body given as a function is made afresh for each attempt", async () => {
    const c = coordinator({ status: 503 }, { status: 200 });
    let made = 0;
    await client([c.base]).write("append", "f", () => new Blob([`attempt ${++made}`]).stream());
    expect(c.seen.map((s) => s.body)).toEqual(["attempt 1", "attempt 2"]);
  });

  test("always 503: fails once the next pause would cross the deadline, naming it, the attempts and hydfsd's message", async () => {
    const c = coordinator({ status: 503, body: '{"error":"not current yet"}' });
    const clock = virtualClock();
    const err = await caught(client([c.base], FAST, clock).write("append", "logs/task.log", "x"));
    expect(err.status).toBe(503);
    expect(err.message).toBe(
      `append of logs/task.log: no coordinator could serve it within 400 ms (${c.seen.length} attempts); last: ${c.base}: 503 not current yet`,
    );
    expect(err.last?.reason).toBe("not current yet");
    // The pauses are the policy's, and the last one stopped short of the deadline.
    expect(clock.pauses).toEqual(clock.pauses.map((_, i) => nextPauseMs(FAST_POLICY, i + 1, 0)!));
    expect(c.seen.length).toBe(clock.pauses.length + 1);
    expect(clock.now).toBeLessThan(400);
    expect(clock.now + FAST_POLICY.maxBackoffMs).toBeGreaterThanOrEqual(400);
  });

  test("no coordinator known at all: fails after the deadline and says so", async () => {
    const told: string[] = [];
    const err = await caught(
      client([], { ...FAST, policy: { ...FAST_POLICY, deadlineMs: 50 } }).write("append", "logs/task.log", "x", { onRetry: (f) => told.push(f.message) }),
    );
    expect(err.message).toBe("append of logs/task.log: no coordinator could serve it within 50 ms (0 attempts); last: no HyDFS coordinator known");
    expect(told).toEqual([]);
  });

  test("409 is final: one attempt, the status and hydfsd's words kept for the caller", async () => {
    const c = coordinator({ status: 409, body: "exists" });
    const other = coordinator({ status: 200 });
    const err = await caught(client([c.base, other.base]).write("create", "logs/task.log", ""));
    expect(err.status).toBe(409);
    expect(err.message).toBe("create of logs/task.log: 409 exists");
    expect(c.seen.length).toBe(1);
    expect(other.seen.length).toBe(0);
  });

  test("another 4xx (404 on append, 400) is final too; a JSON error is read to its message", async () => {
    for (const status of [404, 400]) {
      const c = coordinator({ status });
      const err = await caught(client([c.base]).write("append", "f", "x"));
      expect([err.status, err.message, err.body]).toEqual([status, `append of f: ${status} status ${status}`, { error: `status ${status}` }]);
      expect(c.seen.length).toBe(1);
    }
  });
});

describe("reads", () => {
  test("503 then 200: the text", async () => {
    const c = coordinator({ status: 503 }, { status: 200, body: "line 1\n" });
    expect(await client([c.base]).file("logs/task.log").read()).toBe("line 1\n");
    expect(c.seen.map((s) => s.url)).toEqual(["/get?name=logs%2Ftask.log", "/get?name=logs%2Ftask.log"]);
  });

  test("404 is 'no such file' at once: undefined, no retry", async () => {
    const c = coordinator({ status: 404 });
    expect(await client([c.base]).readText("f")).toBeUndefined();
    expect(await client([c.base]).stat("f")).toBeUndefined();
    expect(c.seen.length).toBe(2);
  });

  test("a dead coordinator, then a 404 from a live one: undefined", async () => {
    const c = coordinator({ status: 404 });
    expect(await client([deadBase(), c.base]).readText("f")).toBeUndefined();
  });

  test("always 503: the deadline error; 400: final", async () => {
    const c = coordinator({ status: 503 });
    const err = await caught(client([c.base], { ...FAST, policy: { ...FAST_POLICY, deadlineMs: 100 } }).readText("logs/task.log"));
    expect(err.message).toStartWith("reading logs/task.log: no coordinator could serve it within 100 ms");
    const bad = coordinator({ status: 400, body: "bad name" });
    const final = await caught(client([bad.base]).readText("logs/task.log"));
    expect(final.message).toBe("reading logs/task.log: 400 bad name");
    expect(bad.seen.length).toBe(1);
  });

  test("open streams the answer; `at` asks that coordinator only", async () => {
    const listed = coordinator({ status: 200, body: "not me" });
    const replica = coordinator({ status: 200, body: "raw copy" });
    const res = await client([listed.base]).openFromReplica("f", { at: replica.base });
    expect(await res!.text()).toBe("raw copy");
    expect(listed.seen.length).toBe(0);
    expect(await (await client([listed.base]).open("f"))!.text()).toBe("not me");
  });
});

describe("other rules", () => {
  test("ONE_ATTEMPT: a 503 and a refused connection are final at once", async () => {
    const c = coordinator({ status: 503 }, { status: 200 });
    const clock = virtualClock();
    expect((await caught(client([c.base], ONE_ATTEMPT, clock).ls("f"))).status).toBe(503);
    const dead = deadBase();
    const err = await caught(client([dead], ONE_ATTEMPT, clock).ls("f"));
    expect(err.status).toBeUndefined();
    expect(err.message).toStartWith(`ls f via ${dead}: `);
    expect(c.seen.length).toBe(1);
    expect(clock.pauses).toEqual([]);
  });

  test("ctl's rules: 503 only, every retry told with the failure and its pause; other 5xx final", async () => {
    const rules: RetryRules = {
      policy: { deadlineMs: 3000, maxAttempts: 8, firstBackoffMs: 250, maxBackoffMs: 2000 },
      retryStatus: (s) => s === 503,
      transport: "never",
    };
    const c = coordinator({ status: 503 }, { status: 503 }, { status: 500 });
    const told: string[] = [];
    const err = await caught(client([c.base], rules).merge("f", { onRetry: (f, pause) => told.push(`${f.status} ${f.reason} after ${pause}`) }));
    expect(told).toEqual(["503 status 503 after 250", "503 status 503 after 500"]);
    expect([err.status, err.message]).toEqual([500, "merge f: 500 status 500"]);
  });

  test("transport 'once': a refused connection is retried once at once, even past the deadline; a second one is final", async () => {
    const rules: RetryRules = { policy: { deadlineMs: 0, maxAttempts: 1, firstBackoffMs: 0, maxBackoffMs: 0 }, retryStatus: () => false, transport: "once" };
    const dead = deadBase();
    const told: number[] = [];
    const err = await caught(client([dead], rules).write("append", "f", "x", { onRetry: (_f, pause) => told.push(pause) }));
    expect(told).toEqual([0]);
    expect(err.status).toBeUndefined();
    expect(err.message).toStartWith(`append of f via ${dead}: `);
  });

  test("an explicit seq and client id are sent as given, and do not move the client's own counter", async () => {
    const c = coordinator({ status: 200 });
    const cl = client([c.base]);
    await cl.write("append", "f", "x", { seq: 7, clientId: "other" });
    await cl.write("append", "f", "y");
    expect(c.seen.map((s) => s.url)).toEqual(["/append?name=f&client=other&seq=7", "/append?name=f&client=task-1&seq=1"]);
  });
});
