import { expect, test } from "bun:test";
import { jobStats, row } from "./fixtures_test_util.ts";
import { report } from "./memory.ts";

test("daemon peaks per phase in MiB, n/a for a phase not reached; a refused reset is said", () => {
  const md = report({ daemons: [{ cluster: "3 nodes", node: 2, service: "hydfsd", idleKb: 51200, peaks: [102400, 76800] }], jobStats: [], resetRefused: true });
  expect(row(md, "3 nodes")).toEqual(["3 nodes", "2", "hydfsd", "50.0", "100.0", "75.0", "n/a", "n/a"]);
  expect(md).toContain("the kernel refused some resets");
  expect(report({ daemons: [], jobStats: [], resetRefused: false })).not.toContain("refused");
});

test("operator rows: the task's exact share and its mean batch when the worker reported one", () => {
  const md = report({ daemons: [], jobStats: [jobStats("3 nodes", "App 1", 1000)], resetRefused: false });
  const lines = md.split("\n").filter((l) => l.startsWith("| 3 nodes | App 1 |"));
  expect(lines).toHaveLength(4);
  expect(lines[0]).toBe("| 3 nodes | App 1 | 0: `grep-wrapper SIGN_ 6` | 0 | 1 | 1000 | 60 | 25.0 | 0.50 | 40.0 | 30.0 |");
  expect(lines[3]).toBe("| 3 nodes | App 1 | 1: `aggregate-wrapper` | 1 | 2 | 1011 | 30 | n/a | 0.25 | 40.0 | 30.0 |");
});
