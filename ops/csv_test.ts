/**
 * RFC 4180 parsing and formatting of one record: tables of edge cases, real traffic-sign lines,
 * and round-trip properties on random records.
 */
import { describe, expect, test } from "bun:test";
import { randomInt, seededRng, type Rng } from "../services/shared/rng.ts";
import { csvField, formatCsvField, formatCsvRecord, parseCsvLine } from "./csv.ts";
import { REAL_LINES, trialDataLines } from "./test_fixtures.ts";

describe("parseCsvLine", () => {
  const ROWS: [string, string, string[]][] = [
    // [what, line, fields]
    ["plain fields", "a,b,c", ["a", "b", "c"]],
    ["one field", "abc", ["abc"]],
    ["empty line: no fields", "", []],
    ["empty fields", ",,", ["", "", ""]],
    ["trailing empty field", "a,b,", ["a", "b", ""]],
    ["leading empty field", ",a", ["", "a"]],
    ["quoted field with comma", '"a,b",c', ["a,b", "c"]],
    ["quoted last field", 'a,"b,c"', ["a", "b,c"]],
    ["doubled quote inside quotes", '"say ""hi""",x', ['say "hi"', "x"]],
    ["quoted empty field", '"",x', ["", "x"]],
    ["lone quoted empty field", '""', [""]],
    ["field of only one quote", '""""', ['"']],
    ["field of only two quotes", '""""""', ['""']],
    ["quoted field then trailing empty", '"a",', ["a", ""]],
    ["quoted CR and LF kept", '"a\r\nb",c', ["a\r\nb", "c"]],
    ["spaces are data", " a , b ", [" a ", " b "]],
    ["quote inside unquoted field is literal", 'ab"c,d', ['ab"c', "d"]],
    ["text after closing quote is kept", '"ab"c,d', ["abc", "d"]],
    ["unterminated quote runs to end of line", '"abc,def', ["abc,def"]],
    ["unterminated quote after fields", 'x,"a""b,c', ["x", 'a"b,c']],
    ["lone quote", '"', [""]],
    ["CRLF ending dropped", "a,b\r", ["a", "b"]],
    ["CRLF ending after quoted field", '"a,b"\r', ["a,b"]],
    ["CR inside an open quote is data", '"a\r', ["a\r"]],
    ["unicode", 'Ünïcødé,"日本,語"', ["Ünïcødé", "日本,語"]],
  ];
  test.each(ROWS)("%s: %p", (_what, line, want) => {
    expect(parseCsvLine(line)).toEqual(want);
  });

  test.each(REAL_LINES.map(([line, fields], i) => [i, line, fields] as const))("real line %p parses like Python's csv", (_i, line, fields) => {
    expect(parseCsvLine(line)).toEqual(fields);
  });

  test("every line of trial_data.csv has 22 fields and formats back to itself", () => {
    const lines = trialDataLines();
    expect(lines.length).toBe(100);
    for (const line of lines) {
      const fields = parseCsvLine(line);
      if (fields.length !== 22) throw new Error(`expected 22 fields, got ${fields.length} in ${line}`);
      expect(formatCsvRecord(fields)).toBe(line);
    }
  });
});

describe("csvField agrees with parseCsvLine", () => {
  const LINES = ["", "a", "a,b,c", ",,", "a,b,", '"a,b",c', '"x"y,z', "a,b\r", '"open,', ...REAL_LINES.map(([l]) => l)];
  test.each(LINES)("%p", (line) => {
    const fields = parseCsvLine(line);
    for (let col = 0; col <= fields.length + 1; col++) expect(csvField(line, col)).toBe(fields[col]);
  });
});

describe("formatCsvField / formatCsvRecord", () => {
  const FIELD_ROWS: [string, string][] = [
    ["abc", "abc"],
    ["", ""],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ["a\nb", '"a\nb"'],
    ["a\rb", '"a\rb"'],
    [" padded ", " padded "],
    ["it's", "it's"],
  ];
  test.each(FIELD_ROWS)("field %p -> %p", (field, want) => {
    expect(formatCsvField(field)).toBe(want);
  });

  const RECORD_ROWS: [string[], string][] = [
    [[], ""],
    [[""], '""'], // not "", which would read back as no fields
    [["", ""], ","],
    [["a", "", "c"], "a,,c"],
    [["77,755", "40,345", "Sign Post"], '"77,755","40,345",Sign Post'],
    [["a", ""], "a,"],
  ];
  test.each(RECORD_ROWS)("record %p -> %p", (fields, want) => {
    expect(formatCsvRecord(fields)).toBe(want);
  });
});

/** A random field drawn from the characters that matter to CSV. */
function randomField(rng: Rng): string {
  const ALPHABET = ["a", "b", " ", ",", '"', "\r", "\n", "é", "日"];
  let s = "";
  const len = randomInt(rng, 6);
  for (let i = 0; i < len; i++) s += ALPHABET[randomInt(rng, ALPHABET.length)];
  return s;
}

describe("round trips", () => {
  test("parseCsvLine(formatCsvRecord(fields)) = fields for 20,000 random records", () => {
    const rng = seededRng(4180);
    for (let i = 0; i < 20_000; i++) {
      const fields = Array.from({ length: randomInt(rng, 6) }, () => randomField(rng));
      const line = formatCsvRecord(fields);
      const back = parseCsvLine(line);
      if (JSON.stringify(back) !== JSON.stringify(fields)) {
        throw new Error(`round trip failed for ${JSON.stringify(fields)}: formatted ${JSON.stringify(line)}, parsed back ${JSON.stringify(back)}`);
      }
    }
  });

  test("formatCsvRecord(parseCsvLine(line)) = line for canonical random lines", () => {
    // A canonical line is one formatCsvRecord would write; formatting it again must not change it.
    const rng = seededRng(7);
    for (let i = 0; i < 5_000; i++) {
      const line = formatCsvRecord(Array.from({ length: 1 + randomInt(rng, 5) }, () => randomField(rng)));
      expect(formatCsvRecord(parseCsvLine(line))).toBe(line);
    }
  });

  test("parsing never throws on random junk (lenient by design)", () => {
    const rng = seededRng(99);
    for (let i = 0; i < 5_000; i++) {
      const junk = Array.from({ length: randomInt(rng, 12) }, () => randomField(rng)).join("");
      const fields = parseCsvLine(junk);
      // Whatever it makes of the junk, formatting and parsing again is stable.
      expect(parseCsvLine(formatCsvRecord(fields))).toEqual(fields);
    }
  });
});
