/**
 * What the benchmark scripts read about processes (from /proc) and how they run shell commands and
 * decide whether dist/ is fresh enough to measure.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { runCommand } from "../../services/shared/process.ts";
import { join } from "node:path";

/** Quote for sh: 'it'\''s'. */
export const shq = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** Run `sh -c cmd` (LC_ALL=C) with a deadline; returns its stdout and how long it took. */
export async function timeShell(cmd: string, timeoutMs: number): Promise<{ ms: number; out: string }> {
  const t0 = performance.now();
  const { code, out, err, timedOut } = await runCommand(["sh", "-c", cmd], { timeoutMs, env: { ...process.env, LC_ALL: "C" } });
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${cmd}: exit ${code}${timedOut ? ` (SIGKILL, deadline ${timeoutMs} ms)` : ""}: ${err.trim()}`);
  return { ms, out };
}

/** A process's peak (VmHWM) and current (VmRSS) resident size in kB; empty when it is gone. */
export function procStatus(pid: number): { hwm?: number; rss?: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = /VmHWM:\s+(\d+)/.exec(text);
    const rss = /VmRSS:\s+(\d+)/.exec(text);
    return { hwm: hwm ? Number(hwm[1]) : undefined, rss: rss ? Number(rss[1]) : undefined };
  } catch {
    return {};
  }
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

/** CPU time (user + system) a process has used so far, in seconds. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Reset a process's peak RSS (VmHWM) to its current RSS; false when the kernel refuses. */
export function resetPeak(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * What makes the executables `exes` (absolute paths) stale: the missing ones (relative to `root`),
 * and the sources under `root`/`tops` (that `isSource` says they are built from) newer than the
 * oldest of them. Both empty: dist/ is fresh.
 */
export function staleness(
  root: string,
  exes: readonly string[],
  tops: readonly string[],
  isSource: (top: string, rel: string) => boolean,
): { missing: string[]; newer: string[] } {
  const missing = exes.filter((e) => !existsSync(e)).map((m) => m.slice(root.length + 1));
  if (missing.length > 0) return { missing, newer: [] };
  const oldest = Math.min(...exes.map((e) => statSync(e).mtimeMs));
  const newer: string[] = [];
  for (const top of tops) {
    for (const rel of readdirSync(join(root, top), { recursive: true }) as string[]) {
      if (!rel.endsWith(".ts") || rel.endsWith("_test.ts") || !isSource(top, rel)) continue;
      if (statSync(join(root, top, rel)).mtimeMs > oldest) newer.push(`${top}/${rel}`);
    }
  }
  return { missing, newer };
}

/** The first three of a list, then ", ..." when there are more. */
export const firstThree = (xs: readonly string[]): string => `${xs.slice(0, 3).join(", ")}${xs.length > 3 ? ", ..." : ""}`;
