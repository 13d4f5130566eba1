/**
 * The browser's signer (signer.ts, Web Crypto) against the daemons' verifier (auth.ts, @noble):
 * what the page sends must be accepted, byte for byte the header ctl would send for the same
 * request, and refused for a wrong secret, another host, another path or another body.
 */
import { describe, expect, test } from "bun:test";
import { bodyDigest, RequestSigner, RequestVerifier } from "../../shared/auth.ts";
import { authorization, httpKey, targetOf } from "./signer.ts";

const SECRET = "dashboard-secret";
const NOW = 1_700_000_000_000;
const NONCE = Uint8Array.from({ length: 16 }, (_, i) => i * 7);

async function browserHeader(secret: string, method: string, url: string, body = ""): Promise<string> {
  return authorization(crypto.subtle, await httpKey(crypto.subtle, secret), method, url, body, NOW, NONCE);
}

describe("dashboard signer (Web Crypto) vs RequestSigner/RequestVerifier", () => {
  const cases: [string, string, string][] = [
    ["GET", "http://127.0.0.1:15000/dashboard/stream", ""],
    ["POST", "http://127.0.0.1:15000/kill_task", '{"node":"127.0.0.2","pid":42}'],
    ["GET", "http://Node-1.Example:15000/jobs?x=a%20b&y=ü", ""],
    ["GET", "http://127.0.0.1:15000/a/../tasks", ""],
  ];
  test.each(cases)("%s %s: same header as ctl's signer", async (method, url, body) => {
    const ctl = new RequestSigner(
      SECRET,
      () => NOW,
      () => NONCE,
    ).authorization(method, url, body);
    expect(await browserHeader(SECRET, method, url, body)).toBe(ctl);
  });

  test.each(cases)("%s %s: the verifier of the node it is for accepts it", async (method, url, body) => {
    const parsed = new URL(url);
    const verifier = new RequestVerifier(SECRET, parsed.hostname, () => NOW);
    expect(verifier.verify(method, targetOf(parsed), await browserHeader(SECRET, method, url, body))).toEqual({ ok: true, body: bodyDigest(body) });
  });

  test("refused: wrong secret, other host, other path, other method", async () => {
    const url = "http://127.0.0.1:15000/dashboard/stream";
    const refused = async (secret: string, host: string, method: string, target: string) =>
      new RequestVerifier(SECRET, host, () => NOW).verify(method, target, await browserHeader(secret, "GET", url)).ok;
    expect(await refused("wrong", "127.0.0.1", "GET", "/dashboard/stream")).toBe(false);
    expect(await refused(SECRET, "127.0.0.2", "GET", "/dashboard/stream")).toBe(false);
    expect(await refused(SECRET, "127.0.0.1", "GET", "/tasks")).toBe(false);
    expect(await refused(SECRET, "127.0.0.1", "POST", "/dashboard/stream")).toBe(false);
    expect(await refused(SECRET, "127.0.0.1", "GET", "/dashboard/stream")).toBe(true);
  });

  test("targetOf: path and query as fetch sends them, no fragment", () => {
    const table: [string, string][] = [
      ["http://h:1", "/"],
      ["http://h:1/a/./b/../c?q=1#frag", "/a/c?q=1"],
      ["http://h:1/x y", "/x%20y"],
    ];
    for (const [url, want] of table) expect([url, targetOf(new URL(url))]).toEqual([url, want]);
  });
});
