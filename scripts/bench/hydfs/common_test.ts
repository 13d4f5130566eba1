import { expect, test } from "bun:test";
import { fmtMBs, fmtRatio, metricValue, MiB, sizeLabel, sizesFor } from "./common.ts";

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
