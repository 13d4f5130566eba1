/**
 * The operator protocol's lines, both ways: what each encoder writes (exact text), what each
 * side's decoder makes of a line (tables, bad lines included), and that what one side encodes
 * the other decodes back.
 */
import { describe, expect, test } from "bun:test";
import {
  decodeEngineLine,
  decodeEngineTsvLine,
  decodeOperatorLine,
  decodeOperatorTsvLine,
  doneLine,
  type EngineMessage,
  inputLine,
  jsonInputLineOf,
  NOT_A_TUPLE,
  type OperatorMessage,
  outputLine,
  restoreLine,
  snapshotAnswerLine,
  snapshotRequestLine,
  tsvDoneLine,
  tsvField,
  tsvOutputLine,
  tsvUnfield,
  tupleLine,
} from "./protocol.ts";

describe("encoders write the protocol's exact lines", () => {
  const ROWS: [string, string, string][] = [
    ["input", inputLine("src:1", "k", "v"), '{"id":"src:1","key":"k","value":"v"}\n'],
    ["input with quotes, tab, newline", inputLine("a", 'say "hi"', "x\ty\nz"), '{"id":"a","key":"say \\"hi\\"","value":"x\\ty\\nz"}\n'],
    ["input, empty strings", inputLine("", "", ""), '{"id":"","key":"","value":""}\n'],
    ["snapshot request", snapshotRequestLine(3), '{"snapshot":3}\n'],
    ["restore", restoreLine({ a: 1 }), '{"restore":{"a":1}}\n'],
    ["restore null", restoreLine(null), '{"restore":null}\n'],
    ["output", outputLine("k", "v,w"), '{"key":"k","value":"v,w"}'],
    ["done, string id", doneLine("src:1>0"), '{"done":"src:1>0"}'],
    ["done, number id", doneLine(5), '{"done":5}'],
    ["snapshot answer", snapshotAnswerLine({ counts: { a: 2 } }, 3), '{"state":{"counts":{"a":2}},"snapshot":3}'],
    ["snapshot answer, stateless", snapshotAnswerLine(null, 4), '{"state":null,"snapshot":4}'],
    ["snapshot answer, undefined state", snapshotAnswerLine(undefined, "x"), '{"state":null,"snapshot":"x"}'],
  ];
  test.each(ROWS)("%s", (_, got, want) => expect(got).toBe(want));
});

describe("decodeEngineLine: what an operator makes of each line", () => {
  const ROWS: [string, EngineMessage][] = [
    ['{"id":"a","key":"k","value":"v"}', { kind: "input", id: "a", key: "k", value: "v" }],
    ['{"id":7,"key":"k","value":"v"}', { kind: "input", id: 7, key: "k", value: "v" }],
    [
      '{"id":"a","key":1,"value":"v"}',
      { kind: "input_without_tuple", id: "a", problem: "expected string key and value, but key is 1; answering done without outputs" },
    ],
    [
      '{"id":"a","key":"k"}',
      { kind: "input_without_tuple", id: "a", problem: "expected string key and value, but value is missing; answering done without outputs" },
    ],
    ['{"id":null,"key":"k","value":"v"}', { kind: "bad", problem: "has an id that is not a string (null); cannot answer it" }],
    ['{"id":{"x":1},"key":"k","value":"v"}', { kind: "bad", problem: 'has an id that is not a string ({"x":1}); cannot answer it' }],
    ['{"snapshot":2}', { kind: "snapshot", n: 2 }],
    ['{"snapshot":"s"}', { kind: "snapshot", n: "s" }],
    ['{"snapshot":true}', { kind: "bad", problem: 'expected {"snapshot": <number>}, got snapshot true' }],
    ['{"restore":{"a":1}}', { kind: "restore", state: { a: 1 } }],
    ['{"restore":null}', { kind: "restore", state: null }],
    ["", { kind: "blank" }],
    ["\r", { kind: "blank" }],
    ["   ", { kind: "blank" }],
    ["not json", { kind: "bad", problem: "is not JSON" }],
    ["[1,2]", { kind: "bad", problem: "is not a JSON object" }],
    ["null", { kind: "bad", problem: "is not a JSON object" }],
    ['"text"', { kind: "bad", problem: "is not a JSON object" }],
    ['{"other":1}', { kind: "bad", problem: 'is not an input ({"id","key","value"}), {"snapshot"} or {"restore"}' }],
  ];
  test.each(ROWS)("%j", (line, want) => expect(decodeEngineLine(line)).toEqual(want));

  test("a long id is shortened in the problem", () => {
    const msg = decodeEngineLine(JSON.stringify({ id: ["x".repeat(100)], key: "k", value: "v" }));
    expect(msg).toEqual({ kind: "bad", problem: `has an id that is not a string (["${"x".repeat(38)}...); cannot answer it` });
  });
});

describe("decodeOperatorLine: what the engine makes of each line", () => {
  const ROWS: [string, OperatorMessage][] = [
    ['{"done":"src:1"}', { kind: "done", id: "src:1" }],
    ['{"done":"a\\"b"}', { kind: "done", id: 'a"b' }],
    ['{"done": "spaced"}', { kind: "done", id: "spaced" }],
    ['{"key":"k","value":"v"}', { kind: "output", key: "k", value: "v" }],
    ['{"value":"v","key":"k"}', { kind: "output", key: "k", value: "v" }],
    ['{"state":{"a":1},"snapshot":3}', { kind: "snapshot", n: 3, state: { a: 1 } }],
    ['{"state":null,"snapshot":3}', { kind: "snapshot", n: 3, state: null }],
    ['{"snapshot":3}', { kind: "bad", problem: 'operator wrote an unexpected line: {"snapshot":3}' }],
    ['{"done":5}', { kind: "bad", problem: 'operator wrote an unexpected line: {"done":5}' }],
    ['{"key":"k"}', { kind: "bad", problem: 'operator wrote an unexpected line: {"key":"k"}' }],
    ["null", { kind: "bad", problem: "operator wrote an unexpected line: null" }],
    ["hello", { kind: "bad", problem: "operator wrote a line that is not JSON: hello" }],
    [`x${"y".repeat(200)}`, { kind: "bad", problem: `operator wrote a line that is not JSON: x${"y".repeat(119)}` }],
  ];
  test.each(ROWS)("%j", (line, want) => expect(decodeOperatorLine(line)).toEqual(want));
});

describe("what one side encodes, the other decodes back", () => {
  const TEXTS = ["", "plain", 'quote " and backslash \\', "tab\tnewline\ncr\r", "unicode é 漢 \u0001 \u2028"];
  test.each(TEXTS)("input %j", (s) => {
    expect(decodeEngineLine(inputLine(s, s, s).slice(0, -1))).toEqual({ kind: "input", id: s, key: s, value: s });
  });
  test.each(TEXTS)("output and done %j", (s) => {
    expect(decodeOperatorLine(outputLine(s, s))).toEqual({ kind: "output", key: s, value: s });
    expect(decodeOperatorLine(doneLine(s))).toEqual({ kind: "done", id: s });
  });
  test("snapshot request and answer, restore", () => {
    expect(decodeEngineLine(snapshotRequestLine(9).slice(0, -1))).toEqual({ kind: "snapshot", n: 9 });
    expect(decodeOperatorLine(snapshotAnswerLine({ k: [1, 2] }, 9))).toEqual({ kind: "snapshot", n: 9, state: { k: [1, 2] } });
    expect(decodeEngineLine(restoreLine({ k: [1, 2] }).slice(0, -1))).toEqual({ kind: "restore", state: { k: [1, 2] } });
  });
});

describe("TSV framing", () => {
  const SEED = 20261127;
  const ALPHABET = ["\t", "\n", "\r", "\\", "\\t", "\\n", "t", "n", '"', "{", "o", "d", "é", "\u2028", "a", " "];

  test("tupleLine, tsvOutputLine and tsvDoneLine decode back; tsvUnfield inverts tsvField (seeded random strings)", () => {
    let state = SEED;
    const next = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const text = () => Array.from({ length: Math.floor(next() * 6) }, () => ALPHABET[Math.floor(next() * ALPHABET.length)]).join("");
    for (let i = 0; i < 20_000; i++) {
      const [id, key, value] = [text(), text(), text()];
      const where = `seed ${SEED}, case ${i}: ${JSON.stringify([id, key, value])}`;
      const line = tupleLine(id, key, value);
      const body = line.slice(0, -1);
      const ok = !/[\n\r]/.test(body) && body.split("\t").length === 3;
      if (!ok || tsvUnfield(tsvField(key)) !== key) throw new Error(`${where}: ${JSON.stringify(line)}`);
      expect({ where, got: decodeEngineTsvLine(body) }).toEqual({ where, got: { kind: "input", id, key, value } });
      expect({ where, got: jsonInputLineOf(body) }).toEqual({ where, got: inputLine(id, key, value) });
      expect({ where, got: decodeOperatorTsvLine(tsvOutputLine(key, value)) }).toEqual({ where, got: { kind: "output", key, value } });
      expect({ where, got: decodeOperatorTsvLine(tsvDoneLine(id)) }).toEqual({ where, got: { kind: "done", id } });
    }
  });

  const ENGINE_ROWS: [string, EngineMessage][] = [
    ["a\tk\tv", { kind: "input", id: "a", key: "k", value: "v" }],
    ["\t\t", { kind: "input", id: "", key: "", value: "" }],
    ["a\\tb\tk\\\\\tv\\n", { kind: "input", id: "a\tb", key: "k\\", value: "v\n" }],
    ['{"snapshot":2}', { kind: "snapshot", n: 2 }],
    ['{"restore":{"a":1}}', { kind: "restore", state: { a: 1 } }],
    ["a\tk", { kind: "bad", problem: NOT_A_TUPLE }],
    ["a\tk\tv\tw", { kind: "bad", problem: NOT_A_TUPLE }],
    ["a\tk\t\\x", { kind: "bad", problem: NOT_A_TUPLE }],
    ['{"id":"a","key":"k","value":"v"}', { kind: "bad", problem: NOT_A_TUPLE }],
    ["", { kind: "blank" }],
  ];
  test.each(ENGINE_ROWS)("engine line %j", (line, want) => expect(decodeEngineTsvLine(line)).toEqual(want));

  const OPERATOR_ROWS: [string, OperatorMessage][] = [
    ["o\tk\tv", { kind: "output", key: "k", value: "v" }],
    ["d\tsrc:1>", { kind: "done", id: "src:1>" }],
    ['{"state":null,"snapshot":3}', { kind: "snapshot", n: 3, state: null }],
    ["o\tk", { kind: "bad", problem: "operator wrote an unexpected line: o\tk" }],
    ["x\tk\tv", { kind: "bad", problem: "operator wrote an unexpected line: x\tk\tv" }],
    ['{"key":"k","value":"v"}', { kind: "output", key: "k", value: "v" }],
  ];
  test.each(OPERATOR_ROWS)("operator line %j", (line, want) => expect(decodeOperatorTsvLine(line)).toEqual(want));
});
