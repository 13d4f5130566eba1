import { expect, test } from "bun:test";
import { cpuParts, cpuTable, report } from "./cpu.ts";
import { jobStats, row } from "./fixtures_test_util.ts";

test("cpuParts groups the daemons by node 1 (the leader) and the others, and the operators by stage", () => {
  // Per node 1 CPU second for each daemon; operators 0.5 + 0.5 and 0.25 + 0.25; the submitter 0.5.
  expect(cpuParts(jobStats("3 nodes", "App 1", 2000))).toEqual([1, 1, 1, 1, 2, 1, 0.5, 0.5]);
});

test("the table's total and utilization: 8 CPU s over 2 s on 4 CPUs is 100%", () => {
  const md = cpuTable([jobStats("3 nodes", "App 1", 2000)], 4);
  expect(row(md, "3 nodes")).toEqual(["3 nodes", "App 1", "2.00 s", "1.00", "1.00", "1.00", "1.00", "2.00", "1.00", "0.50", "0.50", "8.00", "100%"]);
  expect(cpuTable([jobStats("3 nodes", "App 1", 2000)], 2)).toContain("| 8.00 | 200% |");
});

test("section 4 names the machine's CPUs and ends with the table", () => {
  const md = report({ jobStats: [jobStats("3 nodes", "App 1", 4000)], cpus: 2 });
  expect(md).toStartWith("## 4. Where the CPU time goes\n\n");
  expect(md).toContain("The machine has 2 CPUs");
  expect(md).toContain("| 3 nodes | App 1 | 4.00 s |");
  expect(md.endsWith("|\n")).toBe(true);
});
