#!/usr/bin/env bun
/**
 * What request signing costs (issue 10's MAC per request, issue 16 asks where the time goes).
 *
 *   bun scripts/bench/auth.ts [--quick]
 *
 * 1. In-process, per request: RequestSigner.authorization + RequestVerifier.verify (+ the body
 *    digest the auth hook computes) for a GET and for POST bodies of 4 KiB, 64 KiB and 1 MiB (a
 *    data-plane batch is 10-300 KiB). Median µs of 5 runs, with min-max.
 * 2. Over loopback HTTP, one Elysia app with the daemons' auth hook, driven by ClusterHttp with
 *    8 requests in flight: requests/s open (no secret) vs secured, for a GET and a 64 KiB POST,
 *    each run alternating open and secured so both see the same machine; median of 5 runs with
 *    min-max, and the ratio secured / open of the medians.
 * Nothing else of this project runs meanwhile; say what else ran on the box when you quote it.
 */
import { Elysia } from "elysia";
import { bodyDigest, RequestSigner, RequestVerifier, requestTarget } from "../../services/shared/auth.ts";
import { authHook, ClusterHttp, PUBLIC_ROUTES, requestVerifier } from "../../services/shared/http.ts";

const QUICK = process.argv.includes("--quick");
const RUNS = 5;
const HOST = "127.0.0.1";
const SECRET = "bench-secret";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function spread(xs: number[], digits = 1): string {
  return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
}

/** µs per signed-and-verified request with a body of `size` bytes (0 = GET). */
function inProcessUs(size: number, n: number): number {
  const signer = new RequestSigner(SECRET);
  const verifier = new RequestVerifier(SECRET, HOST);
  const body = size > 0 ? new Uint8Array(size).fill(7) : undefined;
  const url = `http://${HOST}:15000/data`;
  const method = body ? "POST" : "GET";
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const header = signer.authorization(method, url, body);
    const r = verifier.verify(method, requestTarget(url), header);
    if (!r.ok) throw new Error(r.reason);
    if (body && bodyDigest(body) !== r.body) throw new Error("digest mismatch");
  }
  return ((performance.now() - t0) * 1000) / n;
}

/** Requests/s through ClusterHttp against the app, `inFlight` at a time, for `durationMs`. */
async function throughput(port: number, http: ClusterHttp, body: Uint8Array | undefined, durationMs: number, inFlight = 8): Promise<number> {
  const url = `http://${HOST}:${port}/${body ? "data" : "get"}`;
  const end = performance.now() + durationMs;
  let done = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const res = await http.fetch(url, { method: body ? "POST" : "GET", body, timeoutMs: 5000 });
      if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (done * 1000) / (performance.now() - t0);
}

function app(secret: string) {
  return new Elysia()
    .onRequest(authHook(requestVerifier(secret, HOST), PUBLIC_ROUTES))
    .get("/get", () => ({ ok: true }))
    .post("/data", async ({ request }) => ({ n: (await request.arrayBuffer()).byteLength }), { parse: "none" });
}

async function main(): Promise<void> {
  console.log(`auth benchmark (${QUICK ? "quick" : "full"}), ${RUNS} runs each; bun ${Bun.version}`);
  console.log("\n1. in process: sign + verify (+ body digest), µs per request, median (min-max)");
  for (const size of [0, 4096, 65_536, 1_048_576]) {
    const n = size >= 1_048_576 ? (QUICK ? 50 : 200) : QUICK ? 2000 : 10_000;
    inProcessUs(size, Math.min(n, 100)); // warm-up
    const runs = Array.from({ length: RUNS }, () => inProcessUs(size, n));
    console.log(`   ${size === 0 ? "GET, no body" : `POST ${size / 1024} KiB`}: ${spread(runs)} µs`);
  }

  const openApp = app("");
  const open = Bun.serve({ hostname: HOST, port: 0, fetch: (req) => openApp.handle(req) });
  const securedApp = app(SECRET);
  const secured = Bun.serve({ hostname: HOST, port: 0, fetch: (req) => securedApp.handle(req) });
  const openHttp = new ClusterHttp("");
  const securedHttp = new ClusterHttp(SECRET);
  const durationMs = QUICK ? 1000 : 3000;
  console.log(`\n2. loopback HTTP, 8 in flight, ${durationMs / 1000} s per run: requests/s, median (min-max)`);
  try {
    for (const body of [undefined, new Uint8Array(65_536).fill(3)]) {
      const o: number[] = [];
      const s: number[] = [];
      await throughput(open.port!, openHttp, body, 300);
      await throughput(secured.port!, securedHttp, body, 300);
      for (let r = 0; r < RUNS; r++) {
        o.push(await throughput(open.port!, openHttp, body, durationMs));
        s.push(await throughput(secured.port!, securedHttp, body, durationMs));
      }
      const label = body ? "POST 64 KiB" : "GET";
      console.log(`   ${label}: open ${spread(o, 0)}, secured ${spread(s, 0)}; secured/open ${(median(s) / median(o)).toFixed(2)}`);
    }
  } finally {
    open.stop(true);
    secured.stop(true);
  }
}

await main();
