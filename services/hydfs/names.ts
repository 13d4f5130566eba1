/**
 * HyDFS file names and local paths: what a user may call a file, how a name becomes one safe
 * on-disk path component, and how a user-supplied local path is kept inside its directory.
 *
 * A HyDFS name is never used as a path directly: it is encoded into one component, so "/" inside
 * a name is just a character and no name can reach outside the store. The checks here exist so
 * that names are printable, fit one line in listings, and stay unambiguous in URLs and logs.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { resolve, sep } from "node:path";

/** A rejected file name or local path. Callers map it to "bad request". */
export class NameError extends Error {
  override readonly name = "NameError";
}

export const MAX_NAME_BYTES = 1024;

/**
 * Encoded components longer than this are replaced by a hash: most filesystems cap a component
 * at 255 bytes, and the store may add suffixes of its own.
 */
export const MAX_ENCODED_CHARS = 200;

const ENCODED_PREFIX = "f_";
const HASHED_PREFIX = "h_";
const HASHED_COMPONENT = /^h_[0-9a-f]{64}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** JSON form of any value, cut to 80 characters, for error messages (never throws). */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // BigInt and cyclic values cannot be stringified as JSON.
    text = `<${typeof value}>`;
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** C0 controls, DEL and C1 controls: invisible, and break line-oriented listings and logs. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Check a HyDFS file name and return it: a string of 1..1024 UTF-8 bytes, well-formed Unicode
 * (a lone surrogate would not survive the UTF-8 round trip), no control characters, not "."
 * or "..", not starting with "/", and no "/"-separated segment equal to "..".
 */
export function validateRemoteName(name: unknown): string {
  const bad = (expected: string): NameError => new NameError(`invalid HyDFS file name ${describeValue(name)}: expected ${expected}`);
  if (typeof name !== "string") throw bad("a string");
  if (name.length === 0) throw bad("at least 1 byte");
  if (!name.isWellFormed()) throw bad("well-formed Unicode (no lone surrogates)");
  const bytes = utf8ToBytes(name).length;
  if (bytes > MAX_NAME_BYTES) throw bad(`at most ${MAX_NAME_BYTES} UTF-8 bytes, got ${bytes}`);
  if (name.includes("\u0000")) throw bad("no NUL character");
  if (CONTROL.test(name)) throw bad("no control characters");
  if (name === ".") throw bad('a name other than "."');
  if (name.startsWith("/")) throw bad('a relative name (not starting with "/")');
  if (name.split("/").includes("..")) throw bad('no ".." path segment');
  return name;
}

/**
 * One filesystem-safe path component for a valid name: "f_" + unpadded base64url of its UTF-8
 * bytes, reversible with decodeNameFromDisk. When that is longer than MAX_ENCODED_CHARS, "h_" +
 * hex SHA-256 of the name instead; the caller then keeps the real name in the file's metadata.
 */
export function encodeNameForDisk(name: string): string {
  validateRemoteName(name);
  const encoded = ENCODED_PREFIX + Buffer.from(name, "utf8").toString("base64url");
  if (encoded.length <= MAX_ENCODED_CHARS) return encoded;
  return HASHED_PREFIX + bytesToHex(sha256(utf8ToBytes(name)));
}

/**
 * The name behind an "f_" component, or undefined for an "h_" component (whose name is in the
 * file's metadata). Anything else, or an "f_" form encodeNameForDisk would not have produced, is
 * not one of ours and throws, so a stray directory is never mistaken for a file.
 */
export function decodeNameFromDisk(component: string): string | undefined {
  if (HASHED_COMPONENT.test(component)) return undefined;
  const bad = (expected: string): NameError => new NameError(`invalid HyDFS disk component ${describeValue(component)}: expected ${expected}`);
  if (!component.startsWith(ENCODED_PREFIX)) throw bad('"f_" + base64url or "h_" + 64 hex digits');
  const body = component.slice(ENCODED_PREFIX.length);
  if (!BASE64URL.test(body)) throw bad('"f_" + unpadded base64url');
  const bytes = Buffer.from(body, "base64url");
  // Buffer's decoder skips junk and ignores trailing bits; fatal UTF-8 decoding plus re-encoding
  // proves this component is the one canonical encoding of a valid name.
  let name: string;
  try {
    name = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw bad("base64url of valid UTF-8");
  }
  try {
    validateRemoteName(name);
  } catch (err) {
    throw bad(`the encoding of a valid name (${(err as Error).message})`);
  }
  if (encodeNameForDisk(name) !== component) throw bad("the canonical encoding of its name");
  return name;
}

/**
 * Resolve a user-supplied local path inside `baseDir` and return the absolute result; throws
 * NameError when it would escape ("../x", "/etc/passwd", "a/../../x") or names baseDir itself,
 * which is never a file. Path math only: symlinks inside baseDir are trusted. A relative baseDir
 * is taken from the process's working directory, as node:path resolve does.
 */
export function resolveInside(baseDir: string, relative: string): string {
  if (typeof baseDir !== "string" || baseDir.length === 0 || baseDir.includes("\u0000")) {
    throw new NameError(`base directory ${describeValue(baseDir)}: expected a non-empty path without NUL`);
  }
  const bad = (expected: string): NameError => new NameError(`local path ${describeValue(relative)}: expected ${expected} inside ${JSON.stringify(baseDir)}`);
  if (typeof relative !== "string" || relative.length === 0) throw bad("a non-empty path");
  if (relative.includes("\u0000")) throw bad("a path without NUL");
  const base = resolve(baseDir);
  const target = resolve(base, relative);
  // The root directory already ends with the separator; every other base needs one appended so
  // that "/data-other" does not pass as inside "/data".
  const prefix = base.endsWith(sep) ? base : base + sep;
  if (target === base || !target.startsWith(prefix)) throw bad("a file");
  return target;
}
