import { expect, test } from "bun:test";
import { type BenchResult, report } from "./main.ts";
import { parseOptions } from "./options.ts";

const frame = (argv: string[], over: Partial<BenchResult> = {}): BenchResult => ({
  opts: parseOptions(argv, {}),
  startedAt: new Date("2026-11-26T01:02:03Z"),
  loadStart: [1, 0.5, 0.25],
  loadEnd: [2, 1, 0.5],
  cpus: 2,
  bunVersion: "1.4.4",
  daemonsUsed: "bun + .ts sources",
  totalMs: 61_000,
  mismatches: [],
  errors: [],
  ...over,
});

test.each([
  { argv: [], title: "# RainStorm benchmark\n" },
  { argv: ["--quick", "--eo-only"], title: "# RainStorm benchmark (--quick) (--eo-only: section 5 only)\n" },
  { argv: ["--autoscale-only"], title: "# RainStorm benchmark (--autoscale-only: section 6 only)\n" },
])("title of $argv", ({ argv, title }) => {
  const md = report(frame([...argv]));
  expect(md).toStartWith(title);
  expect(md).toContain(
    "2026-11-26T01:02:03.000Z, nproc 2, load average 1.00 0.50 0.25 at start (2.00 1.00 0.50 at end), one run, same machine; Bun 1.4.4; daemons and operators: bun + .ts sources; total 61.00 s.",
  );
  expect(md).not.toContain("## Problems");
});

test("problems are listed last, mismatches then errors", () => {
  const md = report(frame([], { mismatches: ["m1"], errors: ["e1"] }));
  expect(md.endsWith("## Problems\n\n- **MISMATCH**: m1\n- **ERROR**: e1\n\n")).toBe(true);
});
