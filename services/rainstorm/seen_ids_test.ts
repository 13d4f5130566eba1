import { describe, expect, test } from "bun:test";
import { seededRng } from "../shared/rng.ts";
import { originLineOf, SeenIds } from "./seen_ids.ts";

describe("originLineOf", () => {
  const cases: [string, number | undefined][] = [
    ["src.csv:1", 1],
    ["src.csv:12>", 12],
    ["src.csv:12>>3>", 12],
    ["dir/a:b.csv:77>0>", 77],
    // A src whose own name looks like a step: the line is the last `:L` followed only by steps.
    ["odd:5>:9>", 9],
    ["odd:5>:9>x", undefined],
    ["no-line", undefined],
    ["src.csv:", undefined],
    ["src.csv:-3", undefined],
    ["src.csv:1234567890123456", undefined],
  ];
  for (const [id, line] of cases) test(`${id} -> ${line}`, () => expect(originLineOf(id)).toBe(line));

  test("agrees with its definition as a regex on seeded random ids", () => {
    const seed = 20261126;
    const rng = seededRng(seed);
    const definition = (id: string) => {
      const m = /:([0-9]{1,15})(?:>[0-9]*)*$/.exec(id);
      return m ? Number(m[1]) : undefined;
    };
    const alphabet = ":>0123456789a";
    for (let i = 0; i < 20_000; i++) {
      const length = Math.floor(rng.next() * 24);
      const id = Array.from({ length }, () => alphabet[Math.floor(rng.next() * alphabet.length)]).join("");
      if (originLineOf(id) !== definition(id)) throw new Error(`seed ${seed}: ${JSON.stringify(id)}: ${originLineOf(id)} != ${definition(id)}`);
    }
  });
});

describe("SeenIds", () => {
  test("without a floor it is a set", () => {
    const s = new SeenIds();
    s.add("f:1>");
    expect([s.has("f:1>"), s.has("f:2>"), s.size]).toEqual([true, false, 1]);
  });

  test("ids at or below the floor are known without being held", () => {
    const s = new SeenIds();
    for (const line of [1, 2, 3, 4]) s.add(`f:${line}>`);
    s.add("custom");
    s.raiseFloor(2);
    s.prune();
    expect(s.size).toBe(3);
    expect([1, 2, 3, 4, 5].map((line) => s.has(`f:${line}>`))).toEqual([true, true, true, true, false]);
    expect(s.has("custom")).toBe(true);
    s.add("f:1>>");
    expect(s.size).toBe(3);
  });

  test("a lower floor changes nothing", () => {
    const s = new SeenIds();
    s.raiseFloor(10);
    s.raiseFloor(4);
    expect(s.floor).toBe(10);
  });

  test("the set stays bounded by what is above the floor, however long the job", () => {
    const s = new SeenIds();
    const inFlightLines = 1000;
    let maxSize = 0;
    for (let line = 1; line <= 200_000; line++) {
      s.add(`src:${line}>`);
      s.raiseFloor(line - inFlightLines);
      maxSize = Math.max(maxSize, s.size);
    }
    expect(maxSize).toBeLessThanOrEqual(2 * 4096);
    for (const line of [1, 150_000, 200_000]) expect(s.has(`src:${line}>`)).toBe(true);
    expect(s.has("src:200001>")).toBe(false);
  });
});
