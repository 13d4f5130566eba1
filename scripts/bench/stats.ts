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

/** Median (nearest-rank p50); undefined for an empty list. */
export const median = (values: readonly number[]): number | undefined => percentile(values, 50);

/** A count rounded and grouped ("1,234,567"), or "n/a". */
export function int(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? "n/a" : Math.round(n).toLocaleString("en-US");
}

/** Milliseconds with `digits` decimals ("12.3 ms"), or "n/a". */
export function fmtMs(ms: number | undefined, digits = 1): string {
  return ms === undefined || !Number.isFinite(ms) ? "n/a" : `${ms.toFixed(digits)} ms`;
}

/** kB (as /proc reports memory) as MiB with 1 decimal, or "n/a". */
export function fmtMiBFromKb(kb: number | undefined): string {
  return kb === undefined || !Number.isFinite(kb) ? "n/a" : `${(kb / 1024).toFixed(1)}`;
}
