/**
 * The pure protocol cores stay pure: no clock, timer, randomness, network, file or process call
 * inside them, so they can be tested with injected time and seeds and replayed from a seed
 * (docs/ARCHITECTURE.md §2-§4). Time and randomness are passed in; drivers at the edge own the
 * rest. A new core joins the list when it is written.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "../..");

/** The cores: messages (or facts) and `nowMs` in, decisions out. */
const PURE_CORES = [
  "services/member/membership.ts",
  "services/member/readiness.ts",
  "services/member/suspicion.ts",
  "services/member/broadcast.ts",
  "services/member/probe.ts",
  "services/member/state.ts",
  "services/member/cluster_config.ts",
  "services/hydfs/create_decree.ts",
  "services/hydfs/ring.ts",
  "services/hydfs/manifest.ts",
  "services/hydfs/reconcile.ts",
  "services/hydfs/quorum.ts",
  "services/rainstorm/autoscale.ts",
  "services/rainstorm/rate_schedule.ts",
  "services/rainstorm/plan.ts",
  "services/rainstorm/plan_error.ts",
  "services/rainstorm/job_machine.ts",
  "services/rainstorm/job_events.ts",
  "services/rainstorm/job_end.ts",
  "services/rainstorm/job_outputs.ts",
  "services/rainstorm/job_scaling.ts",
  "services/testing/chaos_plan.ts",
  "services/rainstorm/worker_guards.ts",
  "services/ctl/node_names.ts",
  "services/rainstorm/dashboard/views.ts",
  "services/rainstorm/dashboard/draw.ts",
];

/** What a core must not call, with why it would break determinism or purity. */
const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\b|\bnew Date\(\)/, "reads the wall clock (pass nowMs in)"],
  [/\bperformance\.now\b/, "reads the clock (pass nowMs in)"],
  [/\bset(Timeout|Interval|Immediate)\b/, "starts a timer (the driver owns timers)"],
  [/\bMath\.random\b|crypto\.getRandomValues|randomUUID/, "draws randomness (pass an Rng in)"],
  [/\bfetch\(/, "does network I/O"],
  // Bun.CryptoHasher is allowed: a hash is a pure function of its input (and native SHA-256 is ~10x noble's).
  [/\bBun\.(?!CryptoHasher\b)/, "calls the runtime (Bun.*): I/O, clock or process; drivers do that"],
  [/from "node:(fs|net|dgram|child_process|http)"/, "imports an I/O module"],
];

test.each(PURE_CORES)("%s is free of clocks, timers, randomness and I/O", (path) => {
  const lines = readFileSync(join(ROOT, path), "utf8").split("\n");
  const found: string[] = [];
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, ""); // comments may name what is forbidden
    for (const [re, why] of FORBIDDEN) if (re.test(code)) found.push(`${path}:${i + 1}: ${why}: ${line.trim()}`);
  });
  expect(found).toEqual([]);
});

/**
 * services/shared/ is the bottom layer: generic machinery that every service uses, so it imports
 * no service (member, hydfs, rainstorm, ctl) and nothing composed above them (services/*.ts such
 * as node_config.ts). Its *_test.ts files are exempt: some run the daemons end to end.
 */
test("services/shared/ imports no service", () => {
  const sharedDir = join(ROOT, "services/shared");
  const servicesDir = join(ROOT, "services");
  const found: string[] = [];
  for (const name of readdirSync(sharedDir).filter((n) => n.endsWith(".ts") && !n.endsWith("_test.ts"))) {
    const text = readFileSync(join(sharedDir, name), "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)) {
      const target = resolve(sharedDir, m[1]!);
      if (target.startsWith(`${servicesDir}/`) && !target.startsWith(`${sharedDir}/`)) found.push(`services/shared/${name} imports ${m[1]}`);
    }
  }
  expect(found).toEqual([]);
});

/**
 * Longest line, in columns. Prettier wraps code at this width (.prettierrc.json; `npm run
 * format`); it cannot break a string, template or regex literal, so a line over the width is
 * allowed only when it would fit without the literal on it. Comments are wrapped by hand.
 */
const MAX_LINE_COLUMNS = 160;
/**
 * Longest function (first line to closing brace, nested functions included) in code that is not
 * a test: a longer one does several things and wants names for them. Test files are exempt:
 * a describe block is long by nature.
 */
const MAX_FUNCTION_LINES = 70;

/** Every TypeScript file of the project (not node_modules, dist or var). */
function projectFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory() && !["node_modules", "dist", "var", ".git"].includes(e.name)) walk(rel);
      else if (e.isFile() && e.name.endsWith(".ts")) out.push(rel);
    }
  };
  for (const dir of ["services", "ops", "scripts"]) walk(dir);
  return out.sort();
}

function parse(path: string): { text: string; src: ts.SourceFile } {
  const text = readFileSync(join(ROOT, path), "utf8");
  return { text, src: ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true) };
}

/** Lines over MAX_LINE_COLUMNS that would still be over it without their string/template/regex literal. */
export function longLines(path: string, text: string, src: ts.SourceFile): string[] {
  const literals: [number, number][] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node) || ts.isRegularExpressionLiteral(node)) {
      literals.push([node.getStart(src), node.end]);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  const found: string[] = [];
  let pos = 0;
  for (const [i, line] of text.split("\n").entries()) {
    if (line.length > MAX_LINE_COLUMNS) {
      const end = pos + line.length;
      const literal = Math.max(0, ...literals.map(([a, b]) => Math.min(b, end) - Math.max(a, pos)));
      if (line.length - literal > MAX_LINE_COLUMNS) found.push(`${path}:${i + 1}: ${line.length} columns`);
    }
    pos += line.length + 1;
  }
  return found;
}

/** Functions, methods and arrow functions with a body longer than MAX_FUNCTION_LINES. */
export function longFunctions(path: string, src: ts.SourceFile): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const first = src.getLineAndCharacterOfPosition(node.getStart(src)).line;
      const last = src.getLineAndCharacterOfPosition(node.end).line;
      const name = "name" in node && node.name ? node.name.getText(src) : "(anonymous)";
      if (last - first + 1 > MAX_FUNCTION_LINES) found.push(`${path}:${first + 1}: ${name} is ${last - first + 1} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return found;
}

test(`no line over ${MAX_LINE_COLUMNS} columns (but for a literal prettier cannot break)`, () => {
  expect(projectFiles().flatMap((path) => longLines(path, parse(path).text, parse(path).src))).toEqual([]);
});

test(`no function over ${MAX_FUNCTION_LINES} lines outside tests`, () => {
  const code = projectFiles().filter((p) => !p.endsWith("_test.ts"));
  expect(code.flatMap((path) => longFunctions(path, parse(path).src))).toEqual([]);
});

test("the length checks find what they should", () => {
  const long = `const x = ${"1 + ".repeat(50)}1;\nconst s = "${"a".repeat(200)}";\n`;
  const fn = `function f() {\n${"  g();\n".repeat(MAX_FUNCTION_LINES)}}\nconst ok = () => {\n  g();\n};\n`;
  const src = (text: string) => ts.createSourceFile("t.ts", text, ts.ScriptTarget.Latest, true);
  expect(longLines("t.ts", long, src(long))).toEqual([`t.ts:1: ${long.split("\n")[0]!.length} columns`]);
  expect(longFunctions("t.ts", src(fn))).toEqual([`t.ts:1: f is ${MAX_FUNCTION_LINES + 2} lines`]);
});
