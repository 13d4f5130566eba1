/**
 * Shared-secret authentication. The cluster secret itself never travels: one key per purpose is
 * derived from it with HKDF-SHA256, and
 * - datagrams (and join frames) carry an HMAC-SHA256 tag made with the datagram key;
 * - every HTTP request carries a MAC, made with the HTTP key, over the node it is for (its host),
 *   its method, path and query, a timestamp, a nonce and (when the body is small enough to hash
 *   first) a digest of the body.
 *   The receiver checks the MAC, refuses timestamps outside `AUTH_MAX_SKEW_MS` of its own clock
 *   and refuses any nonce it has already accepted within that window (replay).
 * Why a MAC and not TLS with a cluster CA: a MAC needs nothing but the secret the operator
 * already distributes (no certificates to issue, rotate or ship to every VM and browser), it works
 * the same over UDP and HTTP, and it costs one HMAC per request. What it does not give is
 * confidentiality (file contents and job outputs cross the network readable) and protection of a
 * streamed body's bytes against a man in the middle; README "Security" lists both.
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

export const TAG_BYTES = 32;

/** Bump when the derivation or the signed string changes: old and new nodes then refuse each other. */
const KEY_SALT = "rainstorm-keys-v1";
/** The scheme name in the `authorization` header. */
export const AUTH_SCHEME = "RainStorm-HMAC-SHA256";
/** Body digest value for a body that is streamed and not hashed first (see README "Security"). */
export const UNSIGNED_BODY = "UNSIGNED";
/**
 * Largest request age (or future skew) accepted, ms. It must cover the clock skew between nodes
 * (NTP keeps VMs within a few ms) plus the time a request waits in queues; a longer window makes
 * the replay cache (nonces are kept for twice this) larger.
 */
export const AUTH_MAX_SKEW_MS = 30_000;
/**
 * Most nonces the replay cache holds. Only requests with a valid MAC reach it, so only a holder of
 * the secret can fill it; when full, requests are refused (503) rather than replays let through.
 * At 1M entries (~100 MB worst case) it covers ~16k signed requests/s over the window.
 */
export const NONCE_CACHE_MAX = 1_000_000;
/** Bodies up to this size are hashed by the client and checked by the server; larger ones stream unsigned. */
export const SIGNED_BODY_MAX_BYTES = 16 * 1024 * 1024;

const encoder = new TextEncoder();

/** One key per purpose, derived from the cluster secret. */
export interface ClusterKeys {
  /** HMAC key of membership datagrams and join frames. */
  datagram: Uint8Array;
  /** HMAC key of HTTP request MACs (ctl, daemons, dashboard). */
  http: Uint8Array;
}

export function deriveKeys(secret: string): ClusterKeys {
  const ikm = encoder.encode(secret);
  const salt = encoder.encode(KEY_SALT);
  return {
    datagram: hkdf(sha256, ikm, salt, encoder.encode("datagram"), 32),
    http: hkdf(sha256, ikm, salt, encoder.encode("http"), 32),
  };
}

/** A keyed tagger; build it once per key (the key schedule is cached inside). */
export interface Tagger {
  tag(data: Uint8Array): Uint8Array;
  verify(data: Uint8Array, tag: Uint8Array): boolean;
}

export function makeTagger(key: Uint8Array): Tagger {
  const base = hmac.create(sha256, key);
  const tag = (data: Uint8Array) => base.clone().update(data).digest();
  return {
    tag,
    verify: (data, received) => constantTimeEqual(tag(data), received),
  };
}

/** The datagram tagger of a cluster secret (undefined for an open cluster). */
export function datagramTagger(secret: string): Tagger | undefined {
  return secret ? makeTagger(deriveKeys(secret).datagram) : undefined;
}

/** Compares every byte whatever the lengths, so the time taken says nothing about where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Hex SHA-256 of a body (native hasher: bodies can be megabytes). */
export function bodyDigest(body: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(body).digest("hex");
}

/**
 * The exact string a request MAC covers. `host` is the node the request is for (the URL's host,
 * without the port), so a request captured on its way to one node is refused by every other;
 * `target` is the path and query as the request line carries them.
 */
export function signedString(host: string, method: string, target: string, tsMs: number, nonce: string, body: string): string {
  return `${AUTH_SCHEME}\n${host.toLowerCase()}\n${method.toUpperCase()}\n${target}\n${tsMs}\n${nonce}\n${body}`;
}

/** The request target (path and query, undecoded) of a URL, as a router sees it. */
export function requestTarget(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  return start < 0 ? "/" : url.slice(start);
}

/** The path of a request target, without the query, undecoded and unnormalized. */
export function targetPath(target: string): string {
  const q = target.indexOf("?");
  return q < 0 ? target : target.slice(0, q);
}

export interface RandomBytes {
  (n: number): Uint8Array;
}

const osRandom: RandomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

/** Signs requests: `authorization` header for a method, URL and body. */
export class RequestSigner {
  private readonly mac: Tagger;

  constructor(
    secret: string,
    private readonly nowMs: () => number = Date.now,
    private readonly random: RandomBytes = osRandom,
  ) {
    this.mac = makeTagger(deriveKeys(secret).http);
  }

  /** The `authorization` header value. `body` undefined or a stream: pass `UNSIGNED_BODY` or the digest yourself. */
  authorization(method: string, url: string, body: Uint8Array | string | typeof UNSIGNED_BODY | undefined): string {
    const tsMs = this.nowMs();
    const nonce = hexOf(this.random(16));
    const digest = body === UNSIGNED_BODY ? UNSIGNED_BODY : bodyDigest(body ?? "");
    // Sign what fetch will send: the URL as WHATWG serializes it (percent-encoded, dot segments resolved).
    const parsed = new URL(url);
    const mac = hexOf(this.mac.tag(encoder.encode(signedString(parsed.hostname, method, requestTarget(parsed.href), tsMs, nonce, digest))));
    return `${AUTH_SCHEME} ts=${tsMs},nonce=${nonce},body=${digest},mac=${mac}`;
  }
}

/** Parsed `authorization` header, or a reason it is not one. */
export interface AuthHeader {
  tsMs: number;
  nonce: string;
  body: string;
  mac: string;
}

const HEADER_RE = new RegExp(`^${AUTH_SCHEME} ts=(\\d{1,16}),nonce=([0-9a-f]{32}),body=([0-9a-f]{64}|${UNSIGNED_BODY}),mac=([0-9a-f]{64})$`);

export function parseAuthHeader(header: string | null | undefined): AuthHeader | undefined {
  const m = header ? HEADER_RE.exec(header) : null;
  if (!m) return undefined;
  return { tsMs: Number(m[1]), nonce: m[2]!, body: m[3]!, mac: m[4]! };
}

export type VerifyResult = { ok: true; body: string } | { ok: false; status: 401 | 503; reason: string };

/**
 * Checks request MACs for one daemon: MAC, time window, and nonces never seen before. Pure apart
 * from its own replay cache; the clock is passed in. The caller checks the body digest (when not
 * UNSIGNED) once it has the body.
 */
export class RequestVerifier {
  private readonly mac: Tagger;
  /** nonce -> time it may be forgotten (its timestamp + the skew window). */
  private readonly seen = new Map<string, number>();
  private nextPruneMs = 0;
  /** Counters for /metrics: refused requests by reason. */
  readonly refused: Record<"missing" | "mac" | "stale" | "replay" | "full", number> = { missing: 0, mac: 0, stale: 0, replay: 0, full: 0 };

  constructor(
    secret: string,
    /** This node's address (config `host`): only requests signed for it are accepted. */
    private readonly host: string,
    private readonly nowMs: () => number = Date.now,
    private readonly maxSkewMs = AUTH_MAX_SKEW_MS,
    private readonly maxNonces = NONCE_CACHE_MAX,
  ) {
    this.mac = makeTagger(deriveKeys(secret).http);
  }

  get nonceCount(): number {
    return this.seen.size;
  }

  verify(method: string, target: string, header: string | null | undefined): VerifyResult {
    const h = parseAuthHeader(header);
    if (!h) {
      this.refused.missing++;
      return {
        ok: false,
        status: 401,
        reason: `missing or malformed credential (expected authorization: ${AUTH_SCHEME} ...; ctl and the daemons sign every request with the cluster secret)`,
      };
    }
    const expected = this.mac.tag(encoder.encode(signedString(this.host, method, target, h.tsMs, h.nonce, h.body)));
    if (!constantTimeEqual(expected, Buffer.from(h.mac, "hex"))) {
      this.refused.mac++;
      return {
        ok: false,
        status: 401,
        reason: `wrong credential (check cluster_secret, and that the request was sent to this node's own address ${this.host})`,
      };
    }
    const now = this.nowMs();
    if (Math.abs(now - h.tsMs) > this.maxSkewMs) {
      this.refused.stale++;
      return {
        ok: false,
        status: 401,
        reason: `request timestamp ${h.tsMs} is ${Math.round((now - h.tsMs) / 1000)} s from this node's clock (${now}); allowed: ±${this.maxSkewMs / 1000} s (check the clocks)`,
      };
    }
    this.prune(now);
    if (this.seen.has(h.nonce)) {
      this.refused.replay++;
      return { ok: false, status: 401, reason: "replayed request (nonce already used)" };
    }
    if (this.seen.size >= this.maxNonces) {
      this.refused.full++;
      return { ok: false, status: 503, reason: "too many requests in the replay window; retry later" };
    }
    this.seen.set(h.nonce, h.tsMs + this.maxSkewMs);
    return { ok: true, body: h.body };
  }

  /** Forget nonces whose timestamps have left the window (a replay of them is refused as stale). */
  private prune(now: number): void {
    // At most once a second, full or not: a full cache must not cost a scan per request.
    if (now < this.nextPruneMs) return;
    this.nextPruneMs = now + 1000;
    for (const [nonce, expiresMs] of this.seen) if (expiresMs < now) this.seen.delete(nonce);
  }
}
