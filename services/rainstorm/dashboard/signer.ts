/**
 * The browser's request signer: services/shared/auth.ts RequestSigner in Web Crypto (the page
 * has no @noble/hashes and no Bun), so the dashboard signs its calls exactly as ctl does and the
 * daemons' RequestVerifier accepts them. The secret never leaves the browser: only the HTTP key
 * derived from it (HKDF-SHA256, salt "rainstorm-keys-v1", info "http") is used, to MAC each
 * request. Kept dependency-free and DOM-free: app.ts inlines it for the browser (see page.ts) and
 * signer_test.ts runs it under bun against the verifier.
 */

/** Must equal auth.ts AUTH_SCHEME and KEY_SALT (signer_test.ts checks the verifier accepts what this makes). */
const SCHEME = "RainStorm-HMAC-SHA256";
const SALT = "rainstorm-keys-v1";
const enc = new TextEncoder();

const hex = (bytes: ArrayBuffer | Uint8Array) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** The HMAC key of HTTP requests for a cluster secret. */
export async function httpKey(subtle: SubtleCrypto, secret: string): Promise<CryptoKey> {
  const ikm = await subtle.importKey("raw", enc.encode(secret), "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: enc.encode(SALT), info: enc.encode("http") }, ikm, 256);
  return subtle.importKey("raw", bits, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** The path and query of a URL as fetch sends them (auth.ts requestTarget of the WHATWG href). */
export function targetOf(url: URL): string {
  const href = url.href;
  const start = href.indexOf("/", href.indexOf("://") + 3);
  const hash = href.indexOf("#");
  const end = hash < 0 ? href.length : hash;
  return start < 0 ? "/" : href.slice(start, end);
}

/** The `authorization` header for one request: same signed string as auth.ts signedString. */
export async function authorization(
  subtle: SubtleCrypto,
  key: CryptoKey,
  method: string,
  url: string,
  body: string,
  tsMs: number,
  nonceBytes: Uint8Array,
): Promise<string> {
  const parsed = new URL(url);
  const nonce = hex(nonceBytes);
  const digest = hex(await subtle.digest("SHA-256", enc.encode(body)));
  const signed = `${SCHEME}\n${parsed.hostname.toLowerCase()}\n${method.toUpperCase()}\n${targetOf(parsed)}\n${tsMs}\n${nonce}\n${digest}`;
  const mac = hex(await subtle.sign("HMAC", key, enc.encode(signed)));
  return `${SCHEME} ts=${tsMs},nonce=${nonce},body=${digest},mac=${mac}`;
}
