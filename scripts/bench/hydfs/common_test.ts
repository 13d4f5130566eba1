import { expect, test } from "bun:test";
import { fmtMBs, fmtRatio, metricValue, MiB, parseBenchArgs, parseSize, sizeLabel, sizesFor, sizesOf } from "./common.ts";

test.each([
  [4096, "4 KB"],
  [MiB, "1 MB"],
  [20 * MiB, "20 MB"],
  [1024 * MiB, "1 GB"],
])("sizeLabel(%d) = %s", (bytes, want) => {
  expect(sizeLabel(bytes)).toBe(want);
});

test.each([
  { bytes: 10 * MiB, ms: 500, want: "20.0" },
  { bytes: MiB, ms: 0, want: "n/a" },
  { bytes: MiB, ms: undefined, want: "n/a" },
])("fmtMBs($bytes, $ms) = $want", ({ bytes, ms, want }) => {
  expect(fmtMBs(bytes, ms)).toBe(want);
});

test("fmtRatio", () => {
  expect([fmtRatio(0.125), fmtRatio(undefined), fmtRatio(Infinity)]).toEqual(["0.13x", "n/a", "n/a"]);
});

test("a counter's value from /metrics text, and only that counter's", () => {
  const text = "hydfs_merges_total 12\nhydfs_merges_total_x 5\nhydfs_rereplicated_bytes_total 3.5\n";
  expect(metricValue(text, "hydfs_merges_total")).toBe(12);
  expect(metricValue(text, "hydfs_rereplicated_bytes_total")).toBe(3.5);
  expect(metricValue(text, "missing")).toBeUndefined();
});

test("--quick measures 1 MB and 20 MB; the full run goes up to 1 GB", () => {
  expect(sizesFor(true).map((s) => s.bytes)).toEqual([MiB, 20 * MiB]);
  expect(Math.max(...sizesFor(false).map((s) => s.bytes))).toBe(1024 * MiB);
});

test.each([
  ["100M", 100 * MiB],
  ["1G", 1024 * MiB],
  ["512k", 512 * 1024],
  ["0M", undefined],
  ["1.5G", undefined],
  ["100", undefined],
])("parseSize(%s)", (text, want) => {
  expect(parseSize(text)).toBe(want);
});

test("the command line: --only, --sizes, --reps, --appends; a bad flag is named", () => {
  const o = parseBenchArgs(["--only", "latency,throughput", "--sizes", "100M,1G", "--reps", "2", "--appends", "300"]);
  // Steps keep the benchmark's order whatever order they are given in.
  expect(o.steps).toEqual(["throughput", "latency"]);
  expect(sizesOf(o)).toEqual([
    { bytes: 100 * MiB, reps: 2 },
    { bytes: 1024 * MiB, reps: 2 },
  ]);
  expect(o.appends).toBe(300);
  expect(parseBenchArgs([]).steps).toEqual(["throughput", "latency", "merge", "rereplication"]);
  expect(sizesOf(parseBenchArgs(["--sizes", "1M"]))).toEqual([{ bytes: MiB, reps: 3 }]);
  expect(sizesOf(parseBenchArgs(["--quick", "--reps", "1"]))).toEqual([
    { bytes: MiB, reps: 1 },
    { bytes: 20 * MiB, reps: 1 },
  ]);
  expect(() => parseBenchArgs(["--only", "speed"])).toThrow('--only "speed": expected some of throughput,latency,merge,rereplication');
  expect(() => parseBenchArgs(["--sizes", "1T"])).toThrow("--sizes");
  expect(() => parseBenchArgs(["--reps", "0"])).toThrow("--reps");
  expect(() => parseBenchArgs(["--fast"])).toThrow('unknown argument "--fast"');
});
