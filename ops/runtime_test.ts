/**
 * The operator runtime in-process, with injected stdin chunks and a recording stdout: batching
 * (one write per chunk), lines split across chunks, snapshot/restore, bad input, backpressure.
 */
import { describe, expect, test } from "bun:test";
import { aggregate } from "./aggregate.ts";
import { echo } from "./echo.ts";
import { grep, grepLine } from "./grep.ts";
import { NOT_A_TUPLE } from "./protocol.ts";
import { LineSplitter, type Operator, type OperatorIO, type RunResult, runOperator } from "./runtime.ts";
import { SIGN_POST_LINE, SQUARE_POLE_LINE, STREET_NAME_LINE } from "./test_fixtures.ts";

const encoder = new TextEncoder();

/** A stdin that hands out exactly these chunks, one per read, and counts the reads. */
function chunkedStdin(chunks: (string | Uint8Array)[]): { stream: ReadableStream<Uint8Array>; pulls: () => number } {
  let i = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const c = chunks[i++];
        if (c === undefined) controller.close();
        else controller.enqueue(typeof c === "string" ? encoder.encode(c) : c);
      },
    },
    { highWaterMark: 0 }, // no read-ahead: a pull happens only when the runtime asks
  );
  return { stream, pulls: () => i };
}

interface Run {
  writes: string[];
  logs: string[];
  result: RunResult;
  /** Every stdout line, parsed. */
  out: unknown[];
}

async function run(op: Operator, chunks: (string | Uint8Array)[], write?: OperatorIO["write"]): Promise<Run> {
  const writes: string[] = [];
  const logs: string[] = [];
  const io: OperatorIO = {
    stdin: chunkedStdin(chunks).stream,
    write: write ?? ((s) => void writes.push(s)),
    log: (s) => void logs.push(s),
  };
  const result = await runOperator(op, io);
  const out = writes
    .join("")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
  return { writes, logs, result, out };
}

const input = (id: string, value: string, key = id) => `${JSON.stringify({ id, key, value })}\n`;

describe("batching", () => {
  test("many lines in one chunk: all answered in order in ONE write", async () => {
    const text = Array.from({ length: 1000 }, (_, i) => input(`t:${i}`, `v${i}`)).join("");
    const r = await run(echo([]), [text]);
    expect(r.writes.length).toBe(1);
    expect(r.result).toEqual({ exitCode: 0, inputs: 1000, outputs: 1000, errors: 0, writes: 1 });
    const want = Array.from({ length: 1000 }, (_, i) => [{ key: `t:${i}`, value: `v${i}` }, { done: `t:${i}` }]).flat();
    expect(r.out).toEqual(want);
  });

  test("one write per chunk that completes a line, none for a chunk that completes none", async () => {
    const a = input("a", "1");
    const b = input("b", "2");
    const r = await run(echo([]), [a + b, b.slice(0, 5), b.slice(5), a]);
    // chunk 2 holds only the start of a line: no write for it
    expect(r.writes.length).toBe(3);
    expect(r.writes[0]).toBe('{"key":"a","value":"1"}\n{"done":"a"}\n{"key":"b","value":"2"}\n{"done":"b"}\n');
  });

  test("lines split anywhere across chunks, even inside a UTF-8 character, read like one chunk", async () => {
    const text = [input("1", SQUARE_POLE_LINE), input("2", "日本語 ✓ é"), input("3", SIGN_POST_LINE)].join("");
    const bytes = encoder.encode(text);
    const whole = (await run(echo([]), [bytes])).writes.join("");
    for (let cut = 1; cut < bytes.length; cut++) {
      const got = (await run(echo([]), [bytes.slice(0, cut), bytes.slice(cut)])).writes.join("");
      if (got !== whole) throw new Error(`split at byte ${cut} changed the output:\n${got}`);
    }
    // and one byte per chunk
    const r = await run(
      echo([]),
      Array.from(bytes, (b) => new Uint8Array([b])),
    );
    expect(r.writes.join("")).toBe(whole);
    expect(r.writes.length).toBe(3);
  });

  test("the last line without a newline is answered at end of input", async () => {
    const r = await run(echo([]), [input("a", "1"), input("b", "2").trimEnd()]);
    expect(r.out).toEqual([{ key: "a", value: "1" }, { done: "a" }, { key: "b", value: "2" }, { done: "b" }]);
  });

  test("CRLF line endings and blank lines are accepted silently", async () => {
    const r = await run(echo([]), [`\n${input("a", "1").trimEnd()}\r\n\r\n   \n${input("b", "2")}`]);
    expect(r.out).toEqual([{ key: "a", value: "1" }, { done: "a" }, { key: "b", value: "2" }, { done: "b" }]);
    expect(r.logs).toEqual([]);
  });

  test("empty input: no writes, exit 0", async () => {
    const r = await run(echo([]), []);
    expect(r.writes).toEqual([]);
    expect(r.result.exitCode).toBe(0);
  });

  test("a real operator: outputs sit before their done, non-matches get a bare done", async () => {
    const lines = [STREET_NAME_LINE, SIGN_POST_LINE, SQUARE_POLE_LINE];
    const r = await run(grep(["Sign Post", "0"]), [lines.map((l, i) => input(`trial_data.csv:${i + 2}`, l)).join("")]);
    const want = lines.flatMap((l, i) => [...grepLine("Sign Post", 0, l), { done: `trial_data.csv:${i + 2}` }]);
    expect(r.out).toEqual(want);
    expect(r.out[1]).toEqual({ key: "77,755", value: SIGN_POST_LINE });
  });
});

describe("backpressure", () => {
  test("stdin is not read again until the previous write has resolved", async () => {
    const stdin = chunkedStdin([input("a", "1"), input("b", "2"), input("c", "3")]);
    const pending: (() => void)[] = [];
    const writes: string[] = [];
    const done = runOperator(echo([]), {
      stdin: stdin.stream,
      write: (s) =>
        new Promise<void>((resolve) => {
          writes.push(s);
          pending.push(resolve);
        }),
      log: () => {},
    });
    await Bun.sleep(20);
    expect(writes.length).toBe(1);
    expect(stdin.pulls()).toBe(1);
    pending.shift()!();
    await Bun.sleep(20);
    expect(writes.length).toBe(2);
    expect(stdin.pulls()).toBe(2);
    pending.shift()!();
    await Bun.sleep(20);
    pending.shift()!();
    expect((await done).writes).toBe(3);
  });

  test("a failing stdout stops the run with exit code 1 and a message", async () => {
    const stdin = chunkedStdin([input("a", "1"), input("b", "2"), input("c", "3")]);
    const logs: string[] = [];
    const result = await runOperator(echo([]), {
      stdin: stdin.stream,
      write: () => Promise.reject(new Error("EPIPE: broken pipe")),
      log: (s) => void logs.push(s),
    });
    expect(result.exitCode).toBe(1);
    expect(stdin.pulls()).toBe(1);
    expect(logs).toEqual(["echo: stdout failed, stopping: EPIPE: broken pipe"]);
  });
});

describe("snapshot and restore", () => {
  test("restore as first line, then inputs, then snapshot: counts continue (11, not 1)", async () => {
    const r = await run(aggregate([]), [
      `${JSON.stringify({ restore: { "Sign Post": 10 } })}\n`,
      input("a", "x", "Sign Post") + input("b", "x", "Street Name"),
      `${JSON.stringify({ snapshot: 7 })}\n`,
    ]);
    expect(r.out).toEqual([
      { key: "Sign Post", value: "11" },
      { done: "a" },
      { key: "Street Name", value: "1" },
      { done: "b" },
      { state: { "Sign Post": 11, "Street Name": 1 }, snapshot: 7 },
    ]);
    expect(r.logs).toEqual([]);
  });

  test("a snapshot reflects exactly the inputs before it in the same chunk", async () => {
    const snap = (n: number) => `${JSON.stringify({ snapshot: n })}\n`;
    const r = await run(aggregate([]), [snap(1) + input("a", "", "k") + snap(2) + input("b", "", "k") + snap(3)]);
    const states: unknown[] = r.out.filter((m) => typeof m === "object" && m !== null && "state" in m);
    expect(states).toEqual([
      { state: {}, snapshot: 1 },
      { state: { k: 1 }, snapshot: 2 },
      { state: { k: 2 }, snapshot: 3 },
    ]);
  });

  test("a restore after the first line is refused with a message; state unchanged", async () => {
    const r = await run(aggregate([]), [input("a", "", "k"), `${JSON.stringify({ restore: { k: 100 } })}\n`, input("b", "", "k")]);
    expect(r.out).toContainEqual({ key: "k", value: "2" });
    expect(r.logs).toEqual(['aggregate: line 2 {"restore"} is only valid as the first line; ignored (state unchanged): {"restore":{"k":100}}']);
    expect(r.result.errors).toBe(1);
  });

  test("an invalid restore state is reported and the operator starts from scratch", async () => {
    const r = await run(aggregate([]), [`${JSON.stringify({ restore: { k: "ten" } })}\n${input("a", "", "k")}`]);
    expect(r.out).toEqual([{ key: "k", value: "1" }, { done: "a" }]);
    expect(r.logs[0]).toContain('restore failed (aggregate state: count of "k" is "ten", expected a whole number >= 0)');
  });

  test("stateless operators answer snapshots with null state and accept a null restore", async () => {
    const r = await run(echo([]), [`{"restore":null}\n{"snapshot":3}\n`]);
    expect(r.out).toEqual([{ state: null, snapshot: 3 }]);
    expect(r.logs).toEqual([]);
  });
});

describe("bad input never stops the operator", () => {
  const ROWS: [string, string, unknown[], string][] = [
    // [what, line, stdout, stderr message fragment]
    ["not JSON", "hello there", [], "echo: line 1 is not JSON: hello there"],
    ["truncated JSON with an id", '{"id":"x","key":"k"', [], "line 1 is not JSON"],
    ["a JSON array", '["x"]', [], 'line 1 is not a JSON object: ["x"]'],
    ["a JSON string", '"x"', [], "line 1 is not a JSON object"],
    ["null", "null", [], "line 1 is not a JSON object"],
    ["an unknown object", '{"hello":1}', [], 'is not an input ({"id","key","value"}), {"snapshot"} or {"restore"}'],
    ["missing value", '{"id":"x","key":"k"}', [{ done: "x" }], "expected string key and value, but value is missing"],
    ["numeric key", '{"id":"x","key":5,"value":"v"}', [{ done: "x" }], "key is 5"],
    ["object id", '{"id":{"a":1},"key":"k","value":"v"}', [], 'has an id that is not a string ({"a":1}); cannot answer it'],
    ["snapshot with an object", '{"snapshot":{}}', [], 'expected {"snapshot": <number>}, got snapshot {}'],
  ];
  test.each(ROWS)("%s", async (_what, line, stdout, message) => {
    const r = await run(echo([]), [`${line}\n${input("next", "still works")}`]);
    expect(r.out).toEqual([...stdout, { key: "next", value: "still works" }, { done: "next" }]);
    expect(r.logs.length).toBe(1);
    expect(r.logs[0]).toContain(message);
  });

  test("a long bad line is quoted truncated, with its length", async () => {
    const line = `{"oops": "${"x".repeat(10_000)}`;
    const r = await run(echo([]), [`${line}\n`]);
    expect(r.logs[0]!.length).toBeLessThan(300);
    expect(r.logs[0]).toEndWith(`... (${line.length} chars)`);
  });

  test("an operator that throws gets its input answered with done, and the next input works", async () => {
    const flaky: Operator = {
      name: "flaky",
      usage: "flaky",
      process: (key, value) => {
        if (value === "boom") throw new Error("boom!");
        return [{ key, value }];
      },
    };
    const r = await run(flaky, [input("a", "boom") + input("b", "fine")]);
    expect(r.out).toEqual([{ done: "a" }, { key: "b", value: "fine" }, { done: "b" }]);
    expect(r.logs[0]).toContain("operator failed (boom!); answering done without outputs");
  });

  test("outputs that are not {key: string, value: string} are dropped, never written", async () => {
    const sloppy: Operator = {
      name: "sloppy",
      usage: "",
      process: (key) => [
        { key, value: 5 as unknown as string },
        { key, value: "ok" },
      ],
    };
    const r = await run(sloppy, [input("a", "v")]);
    expect(r.out).toEqual([{ key: "a", value: "ok" }, { done: "a" }]);
    expect(r.logs[0]).toContain("operator returned an output without string key and value");
  });

  test("numeric ids are answered as they came", async () => {
    const r = await run(echo([]), ['{"id":7,"key":"k","value":"v"}\n']);
    expect(r.out).toEqual([{ key: "k", value: "v" }, { done: 7 }]);
  });
});

describe("LineSplitter", () => {
  const ROWS: [string, string[], number, string[][], string | undefined][] = [
    // [what, chunks, maxChars, lines per chunk, last line at end]
    ["whole lines", ["a\nb\n"], 100, [["a", "b"]], undefined],
    ["carry across chunks", ["a\nb", "c\nd"], 100, [["a"], ["bc"]], "d"],
    ["newline alone", ["ab", "\n"], 100, [[], ["ab"]], undefined],
    ["empty lines kept for the session to skip", ["\n\n"], 100, [["", ""]], undefined],
    ["over-long line dropped, next line kept", ["abcdef", "gh\nok\n"], 4, [[], ["ok"]], undefined],
    ["over-long tail dropped at end", ["ok\nabcdefgh"], 4, [["ok"]], undefined],
  ];
  test.each(ROWS)("%s", (_what, chunks, max, want, last) => {
    const s = new LineSplitter(max);
    expect(chunks.map((c) => s.push(c).lines)).toEqual(want);
    expect(s.end()).toBe(last);
  });

  test("reports a dropped line once", () => {
    const s = new LineSplitter(4);
    expect(s.push("abcdef").dropped).toBe(true);
    expect(s.push("ghijkl").dropped).toBe(false);
    expect(s.push("m\nn").dropped).toBe(false);
  });
});

describe("TSV framing (the built-in operators under the engine)", () => {
  test("restore, tuples, a snapshot and a bad line: answered in TSV, control messages in JSON", async () => {
    const writes: string[] = [];
    const logs: string[] = [];
    const io: OperatorIO = {
      stdin: chunkedStdin(['{"restore":{"a\\tb":2}}\nf:1\tk\ta\\tb,x\nf:2\tk\tc', '\nnot a tuple\n{"snapshot":7}\n']).stream,
      write: (s) => void writes.push(s),
      log: (s) => void logs.push(s),
      framing: "tsv",
    };
    const result = await runOperator(aggregate(["0"]), io);
    expect(writes.join("")).toBe('o\ta\\tb\t3\nd\tf:1\no\tc\t1\nd\tf:2\n{"state":{"a\\tb":3,"c":1},"snapshot":7}\n');
    expect(result).toMatchObject({ exitCode: 0, inputs: 2, outputs: 2, errors: 1 });
    expect(logs).toEqual([`aggregate: line 4 ${NOT_A_TUPLE}: not a tuple`]);
  });
});
