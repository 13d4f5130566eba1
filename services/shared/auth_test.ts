/**
 * Request authentication: key derivation, the signer and the verifier (MAC, time window, replay),
 * deterministically with an injected clock and random source.
 */
import { describe, expect, test } from "bun:test";
import {
  AUTH_MAX_SKEW_MS,
  AUTH_SCHEME,
  bodyDigest,
  deriveKeys,
  parseAuthHeader,
  RequestSigner,
  RequestVerifier,
  requestTarget,
  targetPath,
  UNSIGNED_BODY,
} from "./auth.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const URL_ = "http://127.0.0.1:10010/get?name=a%20b";
const NODE = "127.0.0.1";

/** A signer and a verifier (on NODE) sharing one settable clock; nonces from a counter, so runs repeat. */
function pair(secret = "s3cret", verifierSecret = secret, verifierHost = NODE) {
  const clock = { ms: 1_800_000_000_000 };
  let n = 0;
  const signer = new RequestSigner(
    secret,
    () => clock.ms,
    (len) => {
      const b = new Uint8Array(len);
      new DataView(b.buffer).setUint32(0, ++n);
      return b;
    },
  );
  const verifier = new RequestVerifier(verifierSecret, verifierHost, () => clock.ms, AUTH_MAX_SKEW_MS, 100);
  return { clock, signer, verifier };
}

describe("deriveKeys", () => {
  test("one 32-byte key per purpose, all different, none equal to the secret, deterministic", () => {
    const k = deriveKeys("s3cret");
    expect(k.datagram.length).toBe(32);
    expect(k.http.length).toBe(32);
    expect(hex(k.datagram)).not.toBe(hex(k.http));
    expect(hex(deriveKeys("s3cret").http)).toBe(hex(k.http));
    expect(hex(deriveKeys("s3cret!").http)).not.toBe(hex(k.http));
    expect(Buffer.from(k.http).toString()).not.toContain("s3cret");
  });
});

describe("requestTarget / targetPath", () => {
  const ROWS: [string, string, string][] = [
    ["http://h:1/get?name=x", "/get?name=x", "/get"],
    ["http://h:1/", "/", "/"],
    ["http://h:1", "/", "/"],
    ["http://h:1//set/%2e?a=b?c", "//set/%2e?a=b?c", "//set/%2e"],
    ["http://h:1/set;x=1", "/set;x=1", "/set;x=1"],
  ];
  test.each(ROWS)("%p", (url, target, path) => {
    expect(requestTarget(url)).toBe(target);
    expect(targetPath(target)).toBe(path);
  });
});

describe("RequestSigner + RequestVerifier", () => {
  test("a signed request verifies once; the header never contains the secret", () => {
    const { signer, verifier } = pair("a-secret-worth-stealing");
    const h = signer.authorization("GET", URL_, undefined);
    expect(h).not.toContain("a-secret-worth-stealing");
    expect(h.startsWith(`${AUTH_SCHEME} `)).toBe(true);
    expect(verifier.verify("GET", requestTarget(URL_), h)).toEqual({ ok: true, body: bodyDigest("") });
    // The same header again is a replay.
    const again = verifier.verify("GET", requestTarget(URL_), h);
    expect(again).toMatchObject({ ok: false, status: 401 });
    expect(verifier.refused.replay).toBe(1);
  });

  test("signs the URL as fetch sends it (percent-encoded)", () => {
    const { signer, verifier } = pair();
    const h = signer.authorization("GET", "http://127.0.0.1:1/get?name=é x", undefined);
    expect(verifier.verify("GET", "/get?name=%C3%A9%20x", h).ok).toBe(true);
  });

  test("every signed component matters", () => {
    const { signer, verifier } = pair();
    const body = '{"pid":1}';
    const h = signer.authorization("POST", "http://127.0.0.1:15000/kill_task", body);
    const parsed = parseAuthHeader(h)!;
    const rebuilt = (p: Partial<typeof parsed>) => {
      const q = { ...parsed, ...p };
      return `${AUTH_SCHEME} ts=${q.tsMs},nonce=${q.nonce},body=${q.body},mac=${q.mac}`;
    };
    const ROWS: [string, string, string, string | null][] = [
      ["other method", "GET", "/kill_task", h],
      ["other path", "POST", "/worker/kill", h],
      ["trailing slash", "POST", "/kill_task/", h],
      ["added query", "POST", "/kill_task?x=1", h],
      ["other timestamp", "POST", "/kill_task", rebuilt({ tsMs: parsed.tsMs + 1 })],
      ["other nonce", "POST", "/kill_task", rebuilt({ nonce: "f".repeat(32) })],
      ["other body digest", "POST", "/kill_task", rebuilt({ body: bodyDigest('{"pid":2}') })],
      ["body marked unsigned", "POST", "/kill_task", rebuilt({ body: UNSIGNED_BODY })],
      ["flipped MAC", "POST", "/kill_task", rebuilt({ mac: (parsed.mac[0] === "0" ? "1" : "0") + parsed.mac.slice(1) })],
      ["no header", "POST", "/kill_task", null],
      ["bearer secret (the old scheme)", "POST", "/kill_task", "Bearer s3cret"],
      ["garbage", "POST", "/kill_task", `${AUTH_SCHEME} ts=1`],
    ];
    for (const [name, method, target, header] of ROWS) {
      expect([name, verifier.verify(method, target, header).ok]).toEqual([name, false]);
    }
    // The untouched request still verifies: none of the refusals consumed its nonce.
    expect(verifier.verify("POST", "/kill_task", h)).toEqual({ ok: true, body: bodyDigest(body) });
  });

  test("another secret's signature is refused", () => {
    const { signer, verifier } = pair("s3cret", "other");
    expect(verifier.verify("GET", requestTarget(URL_), signer.authorization("GET", URL_, undefined))).toMatchObject({ ok: false, status: 401 });
    expect(verifier.refused.mac).toBe(1);
  });

  test("a request signed for one node is refused by every other (no replay across nodes)", () => {
    const { signer, verifier } = pair("s3cret", "s3cret", "127.0.0.2");
    const h = signer.authorization("POST", "http://127.0.0.1:8080/leave", undefined);
    expect(verifier.verify("POST", "/leave", h)).toMatchObject({ ok: false, status: 401 });
    // The port is not signed: a port-forwarding proxy on the node itself still works.
    const own = pair();
    expect(own.verifier.verify("POST", "/leave", own.signer.authorization("POST", "http://127.0.0.1:18080/leave", undefined)).ok).toBe(true);
  });

  test("time window: accepted within ±AUTH_MAX_SKEW_MS, refused outside", () => {
    const ROWS: [number, boolean][] = [
      [0, true],
      [AUTH_MAX_SKEW_MS, true],
      [-AUTH_MAX_SKEW_MS, true],
      [AUTH_MAX_SKEW_MS + 1, false],
      [-AUTH_MAX_SKEW_MS - 1, false],
      [80_000, false],
    ];
    for (const [ageMs, want] of ROWS) {
      const { clock, signer, verifier } = pair();
      const h = signer.authorization("GET", URL_, undefined);
      clock.ms += ageMs;
      expect([ageMs, verifier.verify("GET", requestTarget(URL_), h).ok]).toEqual([ageMs, want]);
    }
  });

  test("a captured request replayed after the window is stale, and the cache forgets old nonces", () => {
    const { clock, signer, verifier } = pair();
    const h = signer.authorization("GET", URL_, undefined);
    expect(verifier.verify("GET", requestTarget(URL_), h).ok).toBe(true);
    clock.ms += AUTH_MAX_SKEW_MS + 2000;
    expect(verifier.verify("GET", requestTarget(URL_), signer.authorization("GET", URL_, undefined)).ok).toBe(true);
    expect(verifier.nonceCount).toBe(1);
    expect(verifier.verify("GET", requestTarget(URL_), h)).toMatchObject({ ok: false, status: 401 });
    expect(verifier.refused.stale).toBe(1);
  });

  test("a full replay cache refuses (503) rather than letting a replay through", () => {
    const { signer, verifier } = pair();
    for (let i = 0; i < 100; i++) expect(verifier.verify("GET", requestTarget(URL_), signer.authorization("GET", URL_, undefined)).ok).toBe(true);
    expect(verifier.verify("GET", requestTarget(URL_), signer.authorization("GET", URL_, undefined))).toMatchObject({ ok: false, status: 503 });
  });
});
