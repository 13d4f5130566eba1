/**
 * The multi-call entry: dispatch by invoked name or first argument, --help, unknown names (all
 * in-process), then ONE subprocess run of `bun ops/main.ts grep-wrapper "Sign Post" 4` over
 * testdata/trial_data.csv, and a printed (not asserted) throughput figure for echo-wrapper.
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { grepLine } from "./grep.ts";
import { helpText, type Invocation, main, resolveInvocation } from "./main.ts";
import { OPERATOR_NAMES, OPERATOR_USAGES, OPERATORS, canonicalOperatorName, operatorFactory } from "./registry.ts";
import type { OperatorIO } from "./runtime.ts";
import { trialDataLines } from "./test_fixtures.ts";

const MAIN_TS = resolve(import.meta.dir, "main.ts");

describe("registry", () => {
  test("canonical names and both forms of every name", () => {
    expect(Object.keys(OPERATORS)).toEqual(["grep", "grep2", "transform", "aggregate", "echo"]);
    expect(Object.keys(OPERATOR_USAGES)).toEqual(Object.keys(OPERATORS));
    expect(OPERATOR_NAMES).toEqual([
      "grep",
      "grep-wrapper",
      "grep2",
      "grep-wrapper2",
      "transform",
      "transform-wrapper",
      "aggregate",
      "aggregate-wrapper",
      "echo",
      "echo-wrapper",
    ]);
  });

  const NAMES: [string, string | undefined][] = [
    ["grep-wrapper", "grep"],
    ["grep-wrapper2", "grep2"],
    ["aggregate", "aggregate"],
    ["grep2-wrapper", undefined], // the seed's name is grep-wrapper2
    ["toString", undefined], // not fooled by Object.prototype
    ["__proto__", undefined],
    ["../echo", undefined],
    ["", undefined],
  ];
  test.each(NAMES)("canonicalOperatorName(%p) = %p", (name, want) => {
    expect(canonicalOperatorName(name)).toBe(want);
    expect(operatorFactory(name)).toBe(want === undefined ? undefined : OPERATORS[want]);
  });
});

describe("resolveInvocation(invokedAs, args)", () => {
  const BUN = ["/usr/bin/bun", "/repo/ops/main.ts"];
  const ROWS: [string[], string[], Invocation][] = [
    // compiled binary through a link: argv0 is the link, argv[1] the compile-time name
    [["/dist/ops/grep-wrapper", "/$bunfs/root/rainstorm-op"], ["Sign Post", "4"], { kind: "run", name: "grep", args: ["Sign Post", "4"] }],
    [["grep2", "/$bunfs/root/rainstorm-op"], ["x"], { kind: "run", name: "grep2", args: ["x"] }],
    [["./echo-wrapper", "/$bunfs/root/rainstorm-op"], [], { kind: "run", name: "echo", args: [] }],
    // the multi-call name and a script run by bun: the operator is the first argument
    [["/dist/ops/rainstorm-op", "/$bunfs/root/rainstorm-op"], ["transform-wrapper", "5"], { kind: "run", name: "transform", args: ["5"] }],
    [BUN, ["grep-wrapper", "Sign Post", "4"], { kind: "run", name: "grep", args: ["Sign Post", "4"] }],
    [BUN, ["aggregate"], { kind: "run", name: "aggregate", args: [] }],
    // a script linked under an operator name
    [["bun", "/tmp/aggregate-wrapper"], ["3"], { kind: "run", name: "aggregate", args: ["3"] }],
    // help
    [BUN, ["--help"], { kind: "help", names: ["grep", "grep2", "transform", "aggregate", "echo"] }],
    [BUN, ["-h", "grep-wrapper2"], { kind: "help", names: ["grep2"] }],
    [BUN, ["echo", "--help"], { kind: "help", names: ["echo"] }],
    [["grep-wrapper"], ["--help"], { kind: "help", names: ["grep"] }],
    // a pattern that merely contains --help is a pattern
    [["grep-wrapper"], ["x", "--help"], { kind: "run", name: "grep", args: ["x", "--help"] }],
    // errors
    [BUN, [], { kind: "error", message: `expected an operator name as first argument; known: ${OPERATOR_NAMES.join(", ")}` }],
    [BUN, ["wc"], { kind: "error", message: `unknown operator "wc"; known: ${OPERATOR_NAMES.join(", ")}` }],
    [BUN, ["--help", "wc"], { kind: "error", message: `unknown operator "wc"; known: ${OPERATOR_NAMES.join(", ")}` }],
  ];
  test.each(ROWS)("%p %p", (invokedAs, args, want) => {
    expect(resolveInvocation(invokedAs, args)).toEqual(want);
  });
});

/** main() with captured output and the given stdin text. */
async function mainIn(invokedAs: string[], args: string[], stdin = ""): Promise<{ code: number; out: string; err: string[] }> {
  let out = "";
  const err: string[] = [];
  const io: OperatorIO = { stdin: new Blob([stdin]).stream(), write: (s) => void (out += s), log: (s) => void err.push(s) };
  const code = await main(invokedAs, args, io);
  return { code, out, err };
}

describe("main", () => {
  test("--help lists every operator's usage and exits 0", async () => {
    const r = await mainIn(["rainstorm-op"], ["--help"]);
    expect(r.code).toBe(0);
    for (const usage of Object.values(OPERATOR_USAGES)) expect(r.out).toContain(usage);
    expect(r.out).toBe(helpText(Object.keys(OPERATORS)));
  });

  test("<name> --help shows that operator only", async () => {
    const r = await mainIn(["transform-wrapper"], ["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(OPERATOR_USAGES.transform!);
    expect(r.out).not.toContain(OPERATOR_USAGES.grep!);
  });

  test("an unknown operator exits 2 naming it and the known ones", async () => {
    const r = await mainIn(["rainstorm-op"], ["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.err).toEqual([`rainstorm-op: unknown operator "frobnicate"; known: ${OPERATOR_NAMES.join(", ")}`]);
  });

  test("bad operator arguments exit 2 with the problem and the usage", async () => {
    const r = await mainIn(["grep-wrapper"], ["Sign Post", "four"]);
    expect(r.code).toBe(2);
    expect(r.err[0]).toStartWith('grep: column "four" is not a whole number >= 0 (columns are 0-based)\nusage: grep-wrapper <pattern> <col>');
  });

  test("a good invocation runs the operator over stdin", async () => {
    const r = await mainIn(["/dist/ops/aggregate"], [], '{"id":"1","key":"k","value":""}\n{"snapshot":1}\n');
    expect(r.code).toBe(0);
    expect(r.out).toBe('{"key":"k","value":"1"}\n{"done":"1"}\n{"state":{"k":1},"snapshot":1}\n');
  });
});

/** Run `bun ops/main.ts <args>` over stdin text; returns stdout, stderr, exit code and wall time. */
async function runMainTs(args: string[], stdin: string): Promise<{ code: number; out: string; err: string; ms: number }> {
  const t0 = performance.now();
  const proc = Bun.spawn([process.execPath, MAIN_TS, ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  // Feed stdin while reading stdout, or a large input would deadlock on full pipes.
  const feed = (async () => {
    for (let i = 0; i < stdin.length; i += 1 << 20) {
      proc.stdin.write(stdin.slice(i, i + (1 << 20)));
      await proc.stdin.flush();
    }
    await proc.stdin.end();
  })();
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), feed]);
  const code = await proc.exited;
  return { code, out, err, ms: performance.now() - t0 };
}

describe("subprocess", () => {
  test('bun ops/main.ts grep-wrapper "Sign Post" 4 over trial_data.csv matches the pure function', async () => {
    // The file has 100 lines; "the first 200" is all of them.
    const lines = trialDataLines().slice(0, 200);
    const stdin = lines.map((line, i) => JSON.stringify({ id: `trial_data.csv:${i + 1}`, key: `trial_data.csv:${i + 1}`, value: line })).join("\n") + "\n";
    const r = await runMainTs(["grep-wrapper", "Sign Post", "4"], stdin);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const want = lines
      .flatMap((line, i) => [...grepLine("Sign Post", 4, line).map((o) => JSON.stringify(o)), JSON.stringify({ done: `trial_data.csv:${i + 1}` })])
      .join("\n");
    expect(r.out).toBe(`${want}\n`);
    expect(r.out.split("\n").filter((l) => l.startsWith('{"key":"Sign Post"')).length).toBe(47);
  }, 30_000);

  test("throughput of bun ops/main.ts echo-wrapper (printed, not asserted)", async () => {
    const N = 200_000;
    const value = '"77,755","40,345",,,Sign Post,,SIGN_POLE,,,1.0,2.0,1.0,QC Complete';
    let stdin = "";
    for (let i = 0; i < N; i++) stdin += `{"id":"t:${i}","key":"t:${i}","value":${JSON.stringify(value)}}\n`;
    const r = await runMainTs(["echo-wrapper"], stdin);
    expect(r.code).toBe(0);
    const dones = r.out.split("\n").filter((l) => l.startsWith('{"done"')).length;
    expect(dones).toBe(N);
    console.log(`echo-wrapper: ${N} inputs in ${Math.round(r.ms)} ms including start-up = ${Math.round(N / (r.ms / 1000)).toLocaleString("en")} lines/s`);
  }, 60_000);
});
