/**
 * Bodies read with a running count, and cancelled as soon as they pass their limit.
 */
import { describe, expect, test } from "bun:test";
import { countedStream } from "../testing/streams.ts";
import { BodyTooLarge, declaredLength, readLimited } from "./body.ts";

const CHUNK_BYTES = 4 * 1024 * 1024;

describe("declaredLength", () => {
  test.each([
    [null, undefined],
    ["0", 0],
    ["123", 123],
    ["-1", undefined],
    ["abc", undefined],
    ["1e400", undefined],
  ])("content-length %p -> %p", (raw, want) => {
    const h = new Headers();
    if (raw !== null) h.set("content-length", raw);
    expect(declaredLength(h)).toBe(want);
  });
});

describe("readLimited", () => {
  test("reads a body up to the limit whole", async () => {
    const { stream } = countedStream(4, 256);
    expect((await readLimited(stream, 1024, "x")).length).toBe(1024);
    expect((await readLimited(null, 10, "x")).length).toBe(0);
  });

  test("cancels a body at the first piece past the limit: a 300 MB stream is read only up to it", async () => {
    const { stream, state } = countedStream(300, 1024 * 1024);
    const err = await readLimited(stream, CHUNK_BYTES, "chunk abc").catch((e) => e);
    expect(err).toBeInstanceOf(BodyTooLarge);
    expect(err.status).toBe(413);
    expect(err.message).toBe(`chunk abc: more than ${CHUNK_BYTES} bytes sent; expected at most ${CHUNK_BYTES} bytes`);
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(CHUNK_BYTES + 2 * 1024 * 1024);
  });

  test("refuses a declared length over the limit before reading anything", async () => {
    const { stream, state } = countedStream(300, 1024 * 1024);
    await expect(readLimited(stream, CHUNK_BYTES, "chunk abc", 300 * 1024 * 1024)).rejects.toThrow(
      `chunk abc: content-length ${300 * 1024 * 1024}; expected at most ${CHUNK_BYTES} bytes`,
    );
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(1024 * 1024);
  });

  test("a declared length is no licence: the count still applies", async () => {
    const { stream } = countedStream(3, 100);
    await expect(readLimited(stream, 200, "x", 150)).rejects.toThrow("more than 200 bytes");
  });
});
