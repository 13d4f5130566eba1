import { expect, test } from "bun:test";
import * as appendLatency from "./append_latency.ts";
import { MiB } from "./common.ts";
import { type HydfsBenchResult, report } from "./main.ts";
import * as merge from "./merge.ts";
import * as rereplication from "./rereplication.ts";
import * as rss from "./rss.ts";
import * as throughput from "./throughput.ts";

/** The cells of the first Markdown table row whose first cell is `first`. */
const row = (md: string, first: string) =>
  md
    .split("\n")
    .find((l) => l.startsWith(`| ${first} |`))
    ?.slice(2, -2)
    .split(" | ");

test("throughput: MB/s of the medians and the targets (create >= 0.15 x (cp+fsync), above 123 MB/s at 1 GB; get >= 0.4 x cp)", () => {
  const r: throughput.ThroughputRow = {
    bytes: 10 * MiB,
    reps: 3,
    cpMs: [100, 90, 110],
    cpSyncMs: [200, 200, 200],
    createMs: [500, 700, 600],
    getMs: [150, 150, 150],
    coordinators: "c",
  };
  expect(row(throughput.report([r]), "10 MB")).toEqual(["10 MB", "3", "100.0", "50.0", "16.7 (14.3-20.0)", "0.33x", "PASS", "66.7 (66.7-66.7)", "0.67x", "PASS"]);
  // The create's reference is cp+fsync (200 ms): 1400 ms is 0.14x of it; get 300 ms is 0.33x of cp.
  expect(row(throughput.report([{ ...r, createMs: [1400, 1400, 1400], getMs: [300, 300, 300] }]), "10 MB")?.slice(5)).toEqual([
    "0.14x",
    "FAIL",
    "33.3 (33.3-33.3)",
    "0.33x",
    "FAIL",
  ]);
  // At 1 GB the create must also beat the Go original's 123 MB/s, whatever the ratio.
  const gb: throughput.ThroughputRow = { bytes: 1024 * MiB, reps: 1, cpMs: [500], cpSyncMs: [1000], createMs: [6000], getMs: [1000], coordinators: "c" };
  expect(row(throughput.report([gb]), "1 GB")?.slice(4, 7)).toEqual(["170.7 (170.7)", "0.17x", "PASS"]);
  expect(row(throughput.report([{ ...gb, cpSyncMs: [900], createMs: [9000] }]), "1 GB")?.slice(4, 7)).toEqual(["113.8 (113.8)", "0.10x", "FAIL"]);
});

test("append latency: percentiles per coordinator kind and the p99 and max targets", () => {
  const lat = { all: [1, 2, 3, 16], viaReplica: [1, 2], viaOther: [3, 16] };
  const md = appendLatency.report(lat, 4);
  expect(row(md, "all")).toEqual(["all", "4", "2.00 ms", "16.00 ms", "16.00 ms", "16.00 ms", "5.50 ms"]);
  expect(md).toContain("Target p99 <= 10 ms: FAIL; max <= 50 ms: PASS.");
  expect(appendLatency.report({ ...lat, all: [1, 2] }, 2)).toContain("Target p99 <= 10 ms: PASS; max <= 50 ms: PASS.");
  expect(appendLatency.report({ ...lat, all: [...Array(99).fill(1), 60] }, 100)).toContain("Target p99 <= 10 ms: PASS; max <= 50 ms: FAIL.");
  expect(appendLatency.report(undefined, 100)).toContain("Targets: not measured.");
});

test("re-replication: times from the kill, MB/s over detection -> back on 3, the 10 s target, the note", () => {
  const rr: rereplication.RereplicationResult = {
    files: 20,
    victim: 3,
    victimFiles: 10,
    firstDetectMs: 1000,
    allDetectMs: 2000,
    convergedMs: 4000,
    gcMs: 6000,
    movedBytes: 20 * MiB,
    note: "late",
  };
  const md = rereplication.report(rr, 20);
  expect(row(md, "node 3")).toEqual(["node 3", "10 (10 MB)", "1.00 s", "2.00 s", "4.00 s", "2.00 s", "6.00 s", "20.0 MB", "10.0", "PASS"]);
  expect(md).toContain("Note: late.");
  expect(row(rereplication.report({ ...rr, convergedMs: undefined, note: "" }, 20), "node 3")?.slice(4)).toEqual([
    "n/a",
    "n/a",
    "6.00 s",
    "20.0 MB",
    "n/a",
    "FAIL",
  ]);
});

test("merge: the second merge against 0.1 x the first", () => {
  const m: merge.MergeRow = { appenders: 2, bytes: 4096, appendPhaseMs: 400, firstMs: 20, firstUpdated: 3, secondMs: 1, secondUpdated: 0 };
  expect(row(merge.report([m]), "2")).toEqual(["2", "4 KiB", "40", "400 ms", "100", "20.00 ms", "3", "1.00 ms", "0", "0.05x", "PASS"]);
  expect(row(merge.report([{ ...m, secondMs: 5 }]), "2")?.at(-1)).toBe("FAIL");
});

test("RSS: a get over 200 MB fails, a create is information; a refused reset is said", () => {
  const md = rss.report(
    [
      { what: "create 1 GB", node: 1, role: "coordinator", beforeMb: 50, peakMb: 300, reset: true },
      { what: "get 1 GB", node: 2, role: "replica #1", beforeMb: 50, peakMb: 250, reset: false },
    ],
    1024 * MiB,
  );
  expect(md).toStartWith("## 5. hydfsd peak RSS during the 1 GB create and get");
  expect(row(md, "create 1 GB")).toEqual(["create 1 GB", "1", "coordinator", "50 MB", "300 MB", "(info)"]);
  expect(row(md, "get 1 GB")).toEqual(["get 1 GB", "2", "replica #1", "50 MB", "250 MB (lifetime peak: reset refused)", "FAIL"]);
});

test("the whole report: title, failed steps first, then sections 1, 2, 3, 4, 5", () => {
  const r: HydfsBenchResult = {
    quick: true,
    steps: ["throughput", "latency", "merge", "rereplication"],
    appends: 100,
    at: new Date("2026-11-26T03:00:00Z"),
    host: "h",
    nproc: 2,
    cpuModel: "cpu",
    bunVersion: "1.4.4",
    compiled: false,
    totalS: 61,
    loadBefore: 1,
    loadAfter: 2,
    failures: ["merge: boom"],
    throughput: [],
    rss: [],
    merges: [],
  };
  const md = report(r);
  expect(md).toStartWith("# HyDFS benchmark (--quick smoke run)\n\n2026-11-26T03:00:00.000Z on h: nproc=2 (cpu), Bun 1.4.4;");
  expect(md).toContain("**Steps that failed:**\n\n- merge: boom\n");
  const at = (s: string) => md.indexOf(s);
  expect([at("## 1."), at("## 2."), at("## 3."), at("## 4."), at("## 5.")].every((x, i, all) => x > 0 && (i === 0 || x > all[i - 1]!))).toBe(true);
});

test("the victim is the node holding the most files (the first of a tie)", () => {
  expect(
    rereplication.busiest(
      new Map([
        [2, 5],
        [3, 9],
        [4, 9],
        [5, 1],
      ]),
    ),
  ).toEqual([3, 9]);
});

test.each([
  { holders: { a: [1, 2, 4], b: [2, 3, 5] }, want: { back: true, exact: true } },
  { holders: { a: [1, 2, 4, 5], b: [2, 3, 5] }, want: { back: true, exact: false } },
  { holders: { a: [1, 2], b: [2, 3, 5] }, want: { back: false, exact: false } },
])("placement of $holders", ({ holders, want }) => {
  const owners = new Map([
    ["a", [1, 2, 4]],
    ["b", [2, 3, 5]],
  ]);
  expect(rereplication.placement(["a", "b"], owners, new Map(Object.entries(holders)))).toEqual(want);
});
