/**
 * Deny by default, for every route of all three daemons: with a cluster secret, each route and
 * every variant of its path a router might also route (trailing slash, `//`, dot segments,
 * percent-encoding, case, `;params`, query) is refused without a valid credential, before any
 * handler, parser or validator runs. The route lists come from the apps themselves, so a route
 * added later is covered without touching this test. Requests go over a real socket as raw bytes,
 * because `new Request()` would normalize the very paths under test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { adminApp } from "../member/admin.ts";
import { hydfsApp } from "../hydfs/http.ts";
import { DASHBOARD_PUBLIC_ROUTES, rainstormApp } from "../rainstorm/http.ts";
import { SIGNED_BODY_MAX_BYTES } from "./auth.ts";
import { ClusterHttp, PUBLIC_ROUTES } from "./http.ts";
import { scaled } from "../testing/time.ts";

const SECRET = "route-test-secret";
const HOST = "127.0.0.1";

/**
 * The daemons' objects are never reached when the hook refuses; a handler that does run on an
 * unauthenticated request touches one of these and records it.
 */
const reached: string[] = [];
const trap = (what: string): any =>
  new Proxy(() => {}, {
    get: (_t, prop) => (prop === "cfg" ? { cluster_secret: SECRET, host: HOST, ports: {} } : (reached.push(`${what}.${String(prop)}`), trap(what))),
    apply: () => (reached.push(`${what}()`), trap(what)),
  });

type App = { routes: { method: string; path: string }[]; handle: (r: Request) => Response | Promise<Response> };
const APPS: [string, () => App][] = [
  ["memberd", () => adminApp(trap("memberd"), { onLeave: () => reached.push("leave") }) as unknown as App],
  ["hydfsd", () => hydfsApp(trap("hydfsd")) as unknown as App],
  ["rainstormd", () => rainstormApp({ secret: SECRET, host: HOST, worker: trap("worker"), leader: trap("leader"), leaderHost: HOST }) as unknown as App],
];

/** Variants of a path that a lenient router might send to the same handler. */
export function pathVariants(path: string): string[] {
  const name = path.slice(1);
  const first = name.charCodeAt(0).toString(16).toUpperCase();
  return [
    path,
    `${path}/`,
    `/${path}`,
    `//${name}/`,
    `${path}/.`,
    `${path}/./`,
    `${path}/%2e`,
    `${path}/%2E/`,
    `/./${name}`,
    `/%2e/${name}`,
    `/x/..${path}`,
    `/x/%2e%2e${path}`,
    `/%${first}${name.slice(1)}`,
    path.toUpperCase(),
    `${path};x=1`,
    `${path};`,
    `${path}%00`,
    `${path}%20`,
    `${path}?`,
    `${path}/?name=x`,
    `${path}#frag`,
    `${path}\\`,
  ];
}

/** Send one raw HTTP/1.1 request; the status code and the whole answer. */
function raw(port: number, method: string, target: string, body = ""): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, HOST);
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${method} ${target}: no answer within ${scaled(5000)} ms`));
    }, scaled(5000));
    sock.on("data", (d) => {
      data += d.toString("latin1");
    });
    sock.on("end", () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m) resolve({ status: Number(m[1]), text: data });
      else reject(new Error(`${method} ${target}: not an HTTP answer: ${JSON.stringify(data.slice(0, 80))}`));
    });
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.write(
      `${method} ${target} HTTP/1.1\r\nhost: ${HOST}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}

const servers: { name: string; port: number; app: App; stop: () => void }[] = [];

beforeAll(() => {
  for (const [name, make] of APPS) {
    const app = make();
    const server = Bun.serve({ hostname: HOST, port: 0, fetch: (req) => app.handle(req) });
    servers.push({ name, port: server.port!, app, stop: () => server.stop(true) });
  }
});
afterAll(() => {
  for (const s of servers) s.stop();
});

describe("deny by default: every route × path variant × method needs the credential", () => {
  test.each(APPS.map(([name]) => name))("%s", async (name) => {
    const s = servers.find((x) => x.name === name)!;
    const paths = [...new Set(s.app.routes.map((r) => r.path.replace(/:[a-z]+/g, "a".repeat(64))))];
    expect(paths.length).toBeGreaterThan(5);
    const wrong: string[] = [];
    let sent = 0;
    for (const path of [...paths, "/no_such_route", "/internal/../create"]) {
      for (const target of pathVariants(path)) {
        for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
          const { status, text } = await raw(s.port, method, target, method === "GET" ? "" : "{}");
          sent++;
          // Bun resolves dot segments before the app sees the URL (`/x/../health` is `/health` to
          // hook and router alike), so a variant may reach the public liveness probe: allowed,
          // as long as that is the handler that answered.
          const answeredByHealth = status === 200 && method === "GET" && text.includes(`"service":"${name}"`) && text.includes('"ok":true');
          // Likewise rainstormd's dashboard page and scripts (DASHBOARD_PUBLIC_ROUTES): static, no cluster data; the
          // content type tells them from every data route (JSON or NDJSON).
          const answeredByPage = name === "rainstormd" && status === 200 && method === "GET" && /\r\ncontent-type: text\/(html|javascript)/i.test(text);
          // A request line the HTTP server itself cannot parse is refused (400) before any route.
          const unparsable = status === 400 && /[\\#]|%00|%20/.test(target);
          if (status !== 401 && !answeredByHealth && !answeredByPage && !unparsable) wrong.push(`${method} ${target} -> ${status}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(reached).toEqual([]);
    expect(sent).toBeGreaterThan(500);
  });

  test("the public list is short and each public route answers without a credential", async () => {
    expect([...PUBLIC_ROUTES]).toEqual(["GET /health"]);
    for (const s of servers) expect([s.name, (await raw(s.port, "GET", "/health")).status]).toEqual([s.name, 200]);
    expect(DASHBOARD_PUBLIC_ROUTES).toEqual(["GET /", "GET /dashboard/app.ts", "GET /dashboard/draw.ts", "GET /dashboard/signer.ts"]);
    const rainstormd = servers.find((x) => x.name === "rainstormd")!;
    for (const route of DASHBOARD_PUBLIC_ROUTES) expect([route, (await raw(rainstormd.port, "GET", route.slice(4))).status]).toEqual([route, 200]);
  });

  test("a signed request passes the hook (and reaches the handler)", async () => {
    const http = new ClusterHttp(SECRET);
    const s = servers.find((x) => x.name === "memberd")!;
    const res = await http.fetch(`http://${HOST}:${s.port}/help`, { timeoutMs: scaled(2000) });
    expect(res.status).toBe(200);
    const wrong = await new ClusterHttp("not-the-secret").fetch(`http://${HOST}:${s.port}/help`, { timeoutMs: scaled(2000) });
    expect(wrong.status).toBe(401);
  });
});

describe("a signed body is checked within its limit", () => {
  test("a chunked body past SIGNED_BODY_MAX_BYTES under a signed digest is refused (413) without being buffered whole", async () => {
    const s = servers.find((x) => x.name === "memberd")!;
    const url = `http://${HOST}:${s.port}/set`;
    // Sign a small body, then send a much larger chunked one: the hook must stop reading at the limit.
    const headers = new ClusterHttp(SECRET).authHeaders("POST", url, "{}");
    let pulled = 0;
    const piece = new Uint8Array(1024 * 1024).fill(32);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulled >= 64 * piece.length) return c.close();
        pulled += piece.length;
        c.enqueue(piece);
      },
    });
    const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([
      413,
      `signed body: more than ${SIGNED_BODY_MAX_BYTES} bytes sent; expected at most ${SIGNED_BODY_MAX_BYTES} bytes`,
    ]);
    expect(reached).toEqual([]);
  });

  test("a body other than the one signed is refused (401)", async () => {
    const s = servers.find((x) => x.name === "memberd")!;
    const url = `http://${HOST}:${s.port}/set`;
    const headers = new ClusterHttp(SECRET).authHeaders("POST", url, '{"t_fail_ms":1000}');
    const res = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: '{"t_fail_ms":9999}',
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(401);
    expect(reached).toEqual([]);
  });
});
