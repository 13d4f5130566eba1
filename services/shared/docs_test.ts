/**
 * No link to a missing document: every `*.md` named in the code, the help texts, the deploy
 * files and the docs is a file of this repository, and every `docs/ARCHITECTURE.md §N` names a
 * section the architecture has.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const SCANNED = ["services", "ops", "scripts", "deploy", "docs", "README.md"];
const SKIP_DIRS = new Set(["node_modules", "dist", "var", ".git"]);

function files(path: string): string[] {
  const st = statSync(path);
  if (st.isFile()) return [path];
  return readdirSync(path).flatMap((name) => (SKIP_DIRS.has(name) ? [] : files(join(path, name))));
}

const texts = SCANNED.flatMap((p) => files(join(ROOT, p)))
  .filter((f) => /\.(ts|md|jsonc|service|target|example)$|\/supervise$/.test(f))
  .map((f) => ({ path: relative(ROOT, f), text: readFileSync(f, "utf8") }));
const docs = texts.filter((t) => t.path.endsWith(".md")).map((t) => t.path);

describe("documents referenced exist", () => {
  test("every *.md named anywhere is a file of the repository (matched by its path's end)", () => {
    const missing: string[] = [];
    for (const { path, text } of texts) {
      for (const m of text.matchAll(/(?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9_-]+\.md\b/g)) {
        // /opt/rainstorm/... is where the bundle is installed; its files come from deploy/ and docs.
        const ref = m[0].replace(/^(\.\/|\/)+/, "").replace(/^opt\/rainstorm\//, "");
        if (!docs.some((d) => d === ref || d.endsWith(`/${ref}`) || ref.endsWith(`/${d}`))) missing.push(`${path}: ${m[0]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("every docs/ARCHITECTURE.md §N is a numbered section of it", () => {
    const arch = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
    const sections = new Set([...arch.matchAll(/^## (\d+)\. /gm)].map((m) => m[1]));
    expect(sections.size).toBeGreaterThan(5);
    const bad: string[] = [];
    for (const { path, text } of texts) {
      for (const m of text.matchAll(/ARCHITECTURE\.md §(\d+)/g)) if (!sections.has(m[1]!)) bad.push(`${path}: §${m[1]}`);
    }
    expect(bad).toEqual([]);
    // It is cited: the code points to it rather than to a document that is not here.
    expect(texts.filter((t) => t.text.includes("ARCHITECTURE.md §")).length).toBeGreaterThan(5);
  });
});
