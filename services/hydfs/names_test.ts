/**
 * Table tests of HyDFS names: what is accepted, the disk encoding and its inverse, and local
 * paths that try to leave their directory.
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { decodeNameFromDisk, describeValue, encodeNameForDisk, MAX_ENCODED_CHARS, NameError, resolveInside, validateRemoteName } from "./names.ts";

const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8");

/** Names that must be accepted, with a label for the test title. */
const GOOD: [string, string][] = [
  ["plain", "a"],
  ["with extension", "file.txt"],
  ["with slashes", "dir/sub/file.txt"],
  ["trailing slash", "dir/"],
  ["dot segment", "a/./b"],
  ["leading dot segment", "./a"],
  ["three dots", "..."],
  ["dots inside a segment", "a/..b/c.."],
  ["hidden file", ".hidden"],
  ["spaces", " a b "],
  ["latin-1 letters", "ünïcødé"],
  ["CJK", "文件/数据.csv"],
  ["emoji", "🙂/🚀"],
  ["no-break space (not a control)", "a\u00a0b"],
  ["1024 ASCII bytes", "x".repeat(1024)],
  ["1024 bytes of 2-byte characters", "é".repeat(512)],
  ["1024 bytes of 4-byte characters", "🙂".repeat(256)],
  ["1021 ASCII + one 3-byte character = 1024 bytes", "a".repeat(1021) + "€"],
];

/** Values that must be rejected, with the phrase the error must contain. */
const BAD: [string, unknown, string][] = [
  ["empty", "", "expected at least 1 byte"],
  ["dot", ".", 'expected a name other than "."'],
  ["dot dot", "..", 'expected no ".." path segment'],
  ["leading dot dot", "../x", 'expected no ".." path segment'],
  ["inner dot dot", "a/../b", 'expected no ".." path segment'],
  ["trailing dot dot", "a/..", 'expected no ".." path segment'],
  ["absolute", "/abs", 'expected a relative name (not starting with "/")'],
  ["root", "/", 'expected a relative name (not starting with "/")'],
  ["NUL", "nul\u0000", "expected no NUL character"],
  ["tab", "a\tb", "expected no control characters"],
  ["newline", "a\nb", "expected no control characters"],
  ["carriage return", "a\r", "expected no control characters"],
  ["DEL", "a\u007f", "expected no control characters"],
  ["C1 control", "a\u0085", "expected no control characters"],
  ["lone surrogate", "a\ud800b", "expected well-formed Unicode"],
  ["1025 ASCII bytes", "x".repeat(1025), "expected at most 1024 UTF-8 bytes, got 1025"],
  ["1025 bytes of 2-byte characters and one ASCII", "é".repeat(512) + "a", "expected at most 1024 UTF-8 bytes, got 1025"],
  ["1028 bytes in 257 characters", "🙂".repeat(257), "expected at most 1024 UTF-8 bytes, got 1028"],
  ["1023 characters but 1025 bytes", "a".repeat(1022) + "€", "expected at most 1024 UTF-8 bytes, got 1025"],
  ["undefined", undefined, "expected a string"],
  ["null", null, "expected a string"],
  ["number", 42, "expected a string"],
  ["bigint", 7n, "expected a string"],
  ["array", ["a"], "expected a string"],
  ["object", { name: "a" }, "expected a string"],
  ["boolean", true, "expected a string"],
];

describe("validateRemoteName", () => {
  test.each(GOOD)("accepts %s", (_label, name) => {
    expect(validateRemoteName(name)).toBe(name);
  });

  test.each(BAD)("rejects %s", (_label, value, expected) => {
    let caught: unknown;
    try {
      validateRemoteName(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NameError);
    const message = (caught as NameError).message;
    expect(message).toContain(expected);
    // The message names the value (as JSON, at most 80 characters).
    expect(message).toContain(`invalid HyDFS file name ${describeValue(value)}:`);
    expect((caught as NameError).name).toBe("NameError");
  });

  test("the 1024/1025 byte rows really straddle the limit", () => {
    // Guards the tables above: a typo in a repeat count would silently test nothing.
    for (const [label, name] of GOOD) if (label.includes("1024")) expect(utf8Bytes(name)).toBe(1024);
    for (const [label, value] of BAD) if (label.includes("1025")) expect(utf8Bytes(value as string)).toBe(1025);
  });
});

describe("describeValue", () => {
  test.each([
    ["short string", "abc", '"abc"'],
    ["undefined", undefined, "undefined"],
    ["bigint", 5n, "<bigint>"],
    ["symbol", Symbol("s"), "Symbol(s)"],
    ["object", { a: 1 }, '{"a":1}'],
    ["80 characters exactly", "x".repeat(78), `"${"x".repeat(78)}"`],
    ["81 characters are cut to 80", "x".repeat(79), `"${"x".repeat(76)}...`],
  ])("%s", (_label, value, want) => {
    expect(describeValue(value)).toBe(want);
    expect(describeValue(value).length).toBeLessThanOrEqual(80);
  });
});

describe("encodeNameForDisk / decodeNameFromDisk", () => {
  test.each(GOOD)("%s round trips or hashes", (_label, name) => {
    const component = encodeNameForDisk(name);
    expect(component).toMatch(/^[fh]_[A-Za-z0-9_-]+$/);
    expect(component.length).toBeLessThanOrEqual(MAX_ENCODED_CHARS);
    expect(encodeNameForDisk(name)).toBe(component);
    if (component.startsWith("f_")) {
      expect(component).toBe(`f_${Buffer.from(name, "utf8").toString("base64url")}`);
      expect(decodeNameFromDisk(component)).toBe(name);
    } else {
      expect(component).toBe(`h_${new Bun.CryptoHasher("sha256").update(name, "utf8").digest("hex")}`);
      expect(decodeNameFromDisk(component)).toBeUndefined();
    }
  });

  test.each([
    // [UTF-8 bytes, prefix]: "f_" + ceil(4n/3) base64url characters must stay <= 200.
    [1, "f_"],
    [147, "f_"],
    [148, "f_"],
    [149, "h_"],
    [1024, "h_"],
  ])("%p bytes -> %p", (n, prefix) => {
    const component = encodeNameForDisk("n".repeat(n));
    expect(component.slice(0, 2)).toBe(prefix);
    if (n === 148) expect(component.length).toBe(200);
    if (prefix === "h_") expect(component.length).toBe(66);
  });

  test("multi-byte names cross the threshold by bytes, not characters", () => {
    expect(encodeNameForDisk("é".repeat(74)).slice(0, 2)).toBe("f_"); // 148 bytes
    expect(encodeNameForDisk("é".repeat(75)).slice(0, 2)).toBe("h_"); // 150 bytes
  });

  test("distinct names get distinct components", () => {
    const names = [...GOOD.map(([, n]) => n), "A", "a/", "a/b", "a\\b", "Ab", "aB"];
    const components = new Set(names.map(encodeNameForDisk));
    expect(components.size).toBe(new Set(names).size);
  });

  test.each(BAD.filter(([, v]) => typeof v === "string"))("encoding refuses %s", (_label, value, expected) => {
    expect(() => encodeNameForDisk(value as string)).toThrow(expected);
  });

  const longNameAsF = `f_${Buffer.from("n".repeat(149)).toString("base64url")}`;
  test.each([
    ["no prefix", "abc", '"f_" + base64url or "h_" + 64 hex digits'],
    ["temp file", "tmp.123", '"f_" + base64url or "h_" + 64 hex digits'],
    ["short hash", "h_abc", '"f_" + base64url or "h_" + 64 hex digits'],
    ["uppercase hash", `h_${"A".repeat(64)}`, '"f_" + base64url or "h_" + 64 hex digits'],
    ["empty name", "f_", "the encoding of a valid name"],
    ["not base64url", "f_a+b", '"f_" + unpadded base64url'],
    ["padding", "f_QQ==", '"f_" + unpadded base64url'],
    ["invalid UTF-8", `f_${Buffer.from([0xff]).toString("base64url")}`, "base64url of valid UTF-8"],
    ["encodes ..", `f_${Buffer.from("..").toString("base64url")}`, "the encoding of a valid name"],
    ["encodes an absolute name", `f_${Buffer.from("/etc").toString("base64url")}`, "the encoding of a valid name"],
    ["encodes NUL", `f_${Buffer.from("a\u0000").toString("base64url")}`, "the encoding of a valid name"],
    ["non-zero trailing bits", "f_QR", "the canonical encoding of its name"],
    ["long name that should have been hashed", longNameAsF, "the canonical encoding of its name"],
  ])("decoding rejects %s", (_label, component, expected) => {
    expect(() => decodeNameFromDisk(component)).toThrow(NameError);
    expect(() => decodeNameFromDisk(component)).toThrow(`invalid HyDFS disk component ${describeValue(component)}: expected ${expected}`);
  });

  test("the canonical form of the trailing-bits row decodes", () => {
    // Same byte as "f_QR", so the rejection above is about canonical form and nothing else.
    expect(decodeNameFromDisk("f_QQ")).toBe("A");
  });
});

describe("resolveInside", () => {
  const base = "/srv/local";
  test.each([
    ["a", "/srv/local/a"],
    ["a/b.txt", "/srv/local/a/b.txt"],
    ["./a", "/srv/local/a"],
    ["a/../b", "/srv/local/b"],
    ["a/./b/", "/srv/local/a/b"],
    ["a/b/../../c", "/srv/local/c"],
    ["..foo", "/srv/local/..foo"],
    ["/srv/local/x", "/srv/local/x"],
    ["/srv/local/../local/x", "/srv/local/x"],
  ])("%p -> %p", (relative, want) => {
    expect(resolveInside(base, relative)).toBe(want);
    expect(resolveInside(`${base}/`, relative)).toBe(want);
  });

  test.each([
    ["../x", "a file"],
    ["..", "a file"],
    [".", "a file"],
    ["a/..", "a file"],
    ["a/../../x", "a file"],
    ["/etc/passwd", "a file"],
    ["/srv/local", "a file"],
    ["/srv/local-other/x", "a file"],
    ["../local-other/x", "a file"],
    ["../../../../../../etc/passwd", "a file"],
    ["", "a non-empty path"],
    ["a\u0000b", "a path without NUL"],
  ])("%p escapes or is invalid", (relative, expected) => {
    expect(() => resolveInside(base, relative)).toThrow(NameError);
    expect(() => resolveInside(base, relative)).toThrow(`local path ${describeValue(relative)}: expected ${expected} inside "${base}"`);
  });

  test("a non-string path is rejected", () => {
    expect(() => resolveInside(base, 5 as unknown as string)).toThrow("local path 5: expected a non-empty path");
  });

  test.each([
    ["", 'base directory "": expected a non-empty path without NUL'],
    ["/a\u0000", 'base directory "/a\\u0000": expected a non-empty path without NUL'],
  ])("base %p is rejected", (bad, message) => {
    expect(() => resolveInside(bad, "x")).toThrow(message);
  });

  test("the root as base: everything but the root itself is inside", () => {
    expect(resolveInside("/", "etc/passwd")).toBe("/etc/passwd");
    expect(resolveInside("/", "/etc/passwd")).toBe("/etc/passwd");
    expect(() => resolveInside("/", "..")).toThrow(NameError);
    expect(() => resolveInside("/", "/")).toThrow(NameError);
  });

  test("a relative base resolves like node:path does", () => {
    expect(resolveInside("var/data", "x.txt")).toBe(resolve("var/data", "x.txt"));
    expect(() => resolveInside("var/data", "../data-other/x")).toThrow(NameError);
  });
});
