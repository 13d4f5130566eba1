import { describe, expect, test } from "bun:test";
import { type Attempt, backoffMs, nextPauseMs, RetriesExhausted, type RetryPolicy, retrying } from "./retry.ts";
import { readError, retryableStatus } from "./http.ts";

const P: RetryPolicy = { deadlineMs: 10_000, maxAttempts: 5, firstBackoffMs: 100, maxBackoffMs: 1000 };

describe("backoffMs", () => {
  test.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1000],
    [30, 1000],
  ])("after %i failed attempts pauses %i ms", (failed, ms) => {
    expect(backoffMs(P, failed)).toBe(ms);
  });
});

describe("nextPauseMs", () => {
  test.each([
    // failed, elapsed, expected
    [1, 0, 100],
    [4, 0, 800],
    [5, 0, undefined], // out of attempts
    [1, 9_900, undefined], // the next attempt would start at the deadline
    [1, 9_899, 100],
  ] as const)("failed=%i elapsed=%i -> %p", (failed, elapsed, want) => {
    expect(nextPauseMs(P, failed, elapsed)).toBe(want);
  });
});

/** A virtual clock: sleeping advances it. */
function virtual() {
  let now = 0;
  const pauses: number[] = [];
  return { pauses, deps: { nowMs: () => now, sleep: async (ms: number) => void (pauses.push(ms), (now += ms)) } };
}

describe("retrying", () => {
  test("returns the first value and pauses by the policy before it", async () => {
    const v = virtual();
    const outcomes: Attempt<string>[] = [{ retry: "503 not ready", status: 503 }, { retry: "timeout" }, { value: "ok" }];
    const seen: number[] = [];
    const got = await retrying("read x", P, async (previous) => (seen.push(previous), outcomes[previous]!), v.deps);
    expect(got).toBe("ok");
    expect(seen).toEqual([0, 1, 2]);
    expect(v.pauses).toEqual([100, 200]);
  });

  test("gives up after maxAttempts with the last reason and status", async () => {
    const v = virtual();
    const err: any = await retrying("read x", P, async (n) => ({ retry: `503 attempt ${n}`, status: 503 }), v.deps).catch((e: any) => e as any);
    expect(err).toBeInstanceOf(RetriesExhausted);
    expect(err.attempts).toBe(5);
    expect(err.status).toBe(503);
    expect(err.message).toBe("read x: gave up after 5 attempts; last: 503 attempt 4");
  });

  test("gives up at the deadline", async () => {
    const v = virtual();
    const policy = { ...P, maxAttempts: Infinity, deadlineMs: 1000 };
    const err: any = await retrying("w", policy, async () => ({ retry: "refused" }), v.deps).catch((e: any) => e as any);
    // pauses 100 + 200 + 400 = 700; the next (800) would start at 1500 > 1000
    expect(v.pauses).toEqual([100, 200, 400]);
    expect(err.attempts).toBe(4);
  });

  test("a thrown error is final: no retry", async () => {
    const v = virtual();
    let calls = 0;
    const err: any = await retrying(
      "w",
      P,
      async () => {
        calls++;
        throw new Error("409 exists");
      },
      v.deps,
    ).catch((e: any) => e as any);
    expect(err.message).toBe("409 exists");
    expect(calls).toBe(1);
  });
});

describe("readError", () => {
  test.each([
    [503, '{"error":"view not current"}', "view not current"],
    [500, "plain words\n", "plain words"],
    [404, "", "HTTP 404"],
    [400, '{"other":1}', '{"other":1}'],
  ])("%i %s -> %s", async (status, body, message) => {
    const got = await readError(new Response(body, { status }));
    expect(got.status).toBe(status);
    expect(got.message).toBe(message);
  });
});

test("retryableStatus: 5xx only", () => {
  expect([400, 404, 409, 499, 500, 503, 599, 600].map(retryableStatus)).toEqual([false, false, false, false, true, true, true, false]);
});
