/**
 * Section 5, hydfsd peak RSS during the largest create and get (measured by throughput.ts). Pure.
 */
import { mdTable } from "../stats.ts";
import { sizeLabel } from "./common.ts";

export interface RssRow {
  what: string;
  node: number;
  role: string;
  beforeMb?: number;
  peakMb?: number;
  reset: boolean;
}

/** Target: a get's peak RSS (MB) on every node it involves. */
export const GET_RSS_TARGET_MB = 200;

/** The Markdown of section 5. `largest`: the size of the largest file (bytes). */
export function report(rows: readonly RssRow[], largest: number): string {
  return [
    `## 5. hydfsd peak RSS during the ${sizeLabel(largest)} create and get`,
    "",
    "VmHWM from /proc/<pid>/status, reset to the current RSS (`echo 5 > /proc/<pid>/clear_refs`) just before the transfer, read right after it. 'RSS before' = VmRSS just before. Target (get): <= 200 MB.",
    "",
    mdTable(
      ["transfer", "node", "role", "RSS before", "peak RSS (VmHWM)", "target (<= 200 MB)"],
      rows.map((r) => [
        r.what,
        String(r.node),
        r.role,
        r.beforeMb !== undefined ? `${r.beforeMb.toFixed(0)} MB` : "n/a",
        `${r.peakMb !== undefined && Number.isFinite(r.peakMb) ? r.peakMb.toFixed(0) : "n/a"} MB${r.reset ? "" : " (lifetime peak: reset refused)"}`,
        r.what.startsWith("get") ? (r.peakMb !== undefined && r.peakMb <= GET_RSS_TARGET_MB ? "PASS" : "FAIL") : "(info)",
      ]),
    ),
    "",
  ].join("\n");
}
