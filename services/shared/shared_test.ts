/**
 * Durations as typed by people, and shared-secret authentication.
 */
import { describe, expect, test } from "bun:test";
import { constantTimeEqual, makeTagger, TAG_BYTES } from "./auth.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConfigFile } from "./config.ts";
import { parseDurationMs } from "./duration.ts";

const enc = new TextEncoder();
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("parseDurationMs", () => {
  const OK: [string, number][] = [
    ["1500", 1500],
    ["0", 0],
    ["500ms", 500],
    ["1s", 1000],
    ["2m", 120_000],
    ["1.5s", 1500],
    ["0.25m", 15_000],
    ["2.5", 3], // bare numbers are milliseconds, rounded
    ["0.4ms", 0],
    ["0.0015s", 2],
    [" 3s ", 3000],
    ["3 s", 3000],
    ["\t250 ms\n", 250],
    ["007s", 7000],
  ];
  test.each(OK)("%p -> %p ms", (text, want) => {
    expect(parseDurationMs(text)).toBe(want);
  });

  const BAD = ["", " ", "s", "ms", "1h", "1d", "1S", "1MS", "-1s", "+1s", "1e3", ".5s", "1.s", "1,5s", "1 s 2", "1s1", "1sms", "NaN", "Infinity", "1_000"];
  test.each(BAD)("rejects %p with a message naming it", (text) => {
    let message = "";
    try {
      parseDurationMs(text);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`invalid duration ${JSON.stringify(text)}: expected a number with an optional unit ms, s or m (e.g. "1s", "500ms")`);
  });
});

describe("constantTimeEqual", () => {
  const ROWS: [string, number[], number[], boolean][] = [
    ["both empty", [], [], true],
    ["equal", [1, 2, 3], [1, 2, 3], true],
    ["last byte differs", [1, 2, 3], [1, 2, 4], false],
    ["first byte differs", [0, 2, 3], [1, 2, 3], false],
    ["one bit differs", [0x80], [0x00], false],
    ["prefix (shorter)", [1, 2], [1, 2, 3], false],
    ["prefix (longer)", [1, 2, 3], [1, 2], false],
    ["empty vs one byte", [], [0], false],
    ["equal zero bytes", [0, 0], [0, 0], true],
  ];
  test.each(ROWS)("%s", (_name, a, b, want) => {
    expect(constantTimeEqual(new Uint8Array(a), new Uint8Array(b))).toBe(want);
  });
});

describe("makeTagger", () => {
  test("HMAC-SHA256 known answer (RFC 4231 test case 2)", () => {
    const t = makeTagger(enc.encode("Jefe"));
    expect(hex(t.tag(enc.encode("what do ya want for nothing?")))).toBe("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  });

  test("HMAC-SHA256 known answer with an empty message", () => {
    // HMAC-SHA256(key="key", msg="") from the Wikipedia HMAC examples.
    expect(hex(makeTagger(enc.encode("key")).tag(new Uint8Array(0)))).toBe("5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
  });

  test("tags are TAG_BYTES long and repeatable (the cached key schedule is not consumed)", () => {
    const t = makeTagger(enc.encode("s3cret"));
    const a = t.tag(enc.encode("hello"));
    t.tag(enc.encode("something else in between"));
    const b = t.tag(enc.encode("hello"));
    expect(TAG_BYTES).toBe(32);
    expect(a.length).toBe(TAG_BYTES);
    expect(hex(b)).toBe(hex(a));
    expect(hex(makeTagger(enc.encode("s3cret")).tag(enc.encode("hello")))).toBe(hex(a));
  });

  test("different data or a different secret give a different tag", () => {
    const t = makeTagger(enc.encode("s3cret"));
    const a = hex(t.tag(enc.encode("hello")));
    expect(hex(t.tag(enc.encode("hellp")))).not.toBe(a);
    expect(hex(makeTagger(enc.encode("s3cret!")).tag(enc.encode("hello")))).not.toBe(a);
  });

  test("verify", () => {
    const t = makeTagger(enc.encode("s3cret"));
    const data = enc.encode("payload");
    const good = t.tag(data);
    const flipped = good.slice();
    flipped[TAG_BYTES - 1] = flipped[TAG_BYTES - 1]! ^ 1;
    const rows: [string, Uint8Array, Uint8Array, boolean][] = [
      ["the right tag", data, good, true],
      ["a flipped tag bit", data, flipped, false],
      ["changed data", enc.encode("payloae"), good, false],
      ["a truncated tag", data, good.subarray(0, TAG_BYTES - 1), false],
      ["an empty tag", data, new Uint8Array(0), false],
      ["a longer tag", data, new Uint8Array([...good, 0]), false],
      ["another secret's tag", data, makeTagger(enc.encode("other")).tag(data), false],
    ];
    expect(rows.map(([name, d, tag]) => [name, t.verify(d, tag)])).toEqual(rows.map(([name, , , want]) => [name, want]));
  });
});

describe("readConfigFile", () => {
  test("reads JSON with comments and trailing commas; refuses what is not an object, naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "config-read-"));
    try {
      const path = join(dir, "config.json");
      writeFileSync(path, '{\n  // the node\'s address\n  "host": "10.0.0.5", /* block */\n  "ports": { "udp": 5001, },\n}\n');
      expect(readConfigFile(path, true)).toEqual({ host: "10.0.0.5", ports: { udp: 5001 } });
      writeFileSync(path, "[1, 2]");
      expect(() => readConfigFile(path, true)).toThrow(`config ${path}: invalid JSON (comments allowed): expected a JSON object`);
      writeFileSync(path, "{ host: }");
      expect(() => readConfigFile(path, true)).toThrow(`config ${path}: invalid JSON (comments allowed)`);
      expect(readConfigFile(join(dir, "missing.json"), false)).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
