/**
 * Shared-secret authentication: HMAC-SHA256 tags on datagrams and bearer tokens on HTTP.
 * Uses @noble/hashes (audited, constant-time compare is ours below).
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

export const TAG_BYTES = 32;

const encoder = new TextEncoder();

/** A keyed tagger; build it once per secret (the key schedule is cached inside). */
export interface Tagger {
  tag(data: Uint8Array): Uint8Array;
  verify(data: Uint8Array, tag: Uint8Array): boolean;
}

export function makeTagger(secret: string): Tagger {
  const key = encoder.encode(secret);
  const base = hmac.create(sha256, key);
  const tag = (data: Uint8Array) => base.clone().update(data).digest();
  return {
    tag,
    verify: (data, received) => constantTimeEqual(tag(data), received),
  };
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** True when the Authorization header carries the secret (or no secret is configured). */
export function bearerOk(secret: string, header: string | null | undefined): boolean {
  if (!secret) return true;
  if (!header?.startsWith("Bearer ")) return false;
  return constantTimeEqual(encoder.encode(header.slice(7)), encoder.encode(secret));
}
