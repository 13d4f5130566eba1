/**
 * What a RainStorm job must produce, computed in the test from its input with no RainStorm code,
 * and how a run's lines differ from it (as multisets: line order in dest is not defined).
 */
import { parseCsvLine } from "../../ops/csv.ts";

/** App 1 (grep `pattern`, then count by CSV column `col`): per key, the number of matching lines. */
export function app1Counts(lines: string[], pattern: string, col: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    if (!line.includes(pattern)) continue;
    const key = parseCsvLine(line)[col] ?? "";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * The records an aggregate stage emits for `counts`, each exactly once: per key the running
 * counts `key\t1` .. `key\tN` (sorted). App 1's dest must hold exactly these.
 */
export function runningCountLines(counts: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [key, n] of counts) for (let i = 1; i <= n; i++) out.push(`${key}\t${i}`);
  return out.sort();
}

/**
 * How `actual` differs from `expected` as multisets: one problem per distinct line that is
 * missing or extra (with how many times), at most `max`. Empty when they are equal.
 */
export function multisetDiff(actual: string[], expected: string[], max = 20): string[] {
  const balance = new Map<string, number>();
  for (const line of expected) balance.set(line, (balance.get(line) ?? 0) + 1);
  for (const line of actual) balance.set(line, (balance.get(line) ?? 0) - 1);
  const problems: string[] = [];
  for (const [line, n] of balance) {
    if (n > 0) problems.push(`missing ${n}x ${JSON.stringify(line)}`);
    if (n < 0) problems.push(`extra ${-n}x ${JSON.stringify(line)}`);
  }
  const total = problems.length;
  return total > max ? [...problems.slice(0, max), `... and ${total - max} more`] : problems;
}
