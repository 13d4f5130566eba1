/**
 * Small statistics helpers for the benchmark scripts.
 */

/** Nearest-rank percentile (p in [0, 100]) of `values`; undefined for an empty list. With 10 samples p99 is the maximum. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function mean(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Milliseconds as seconds with 2 decimals ("1.23 s"), or "n/a". */
export function fmtSec(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? "n/a" : `${(ms / 1000).toFixed(2)} s`;
}

/** Bytes per second, as B/s below 1000 and KB/s (1000 B) above. */
export function fmtRate(bytesPerSec: number | undefined): string {
  if (bytesPerSec === undefined || !Number.isFinite(bytesPerSec)) return "n/a";
  return bytesPerSec < 1000 ? `${bytesPerSec.toFixed(0)} B/s` : `${(bytesPerSec / 1000).toFixed(2)} KB/s`;
}

/** A Markdown table from a header row and body rows. */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
