/**
 * What every benchmark script needs around its measurements: a timestamped progress log on
 * stderr, temp dirs removed at exit (LocalCluster's killOnExit handlers SIGKILL the daemons,
 * whatever the cause of the exit), and a whole-run watchdog.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function benchHarness(runDeadlineMs: number) {
  const startMs = performance.now();
  const log = (msg: string): void => {
    const t = ((performance.now() - startMs) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[${t}s] ${msg}\n`);
  };
  const tempDirs = new Set<string>();
  const removeTempDir = (d: string): void => {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
    tempDirs.delete(d);
  };
  const removeTempDirs = (): void => {
    for (const d of [...tempDirs]) removeTempDir(d);
  };
  process.on("exit", removeTempDirs);
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));
  const watchdog = setTimeout(() => {
    log(`run deadline of ${runDeadlineMs / 60_000} min passed; exiting`);
    process.exit(2);
  }, runDeadlineMs);
  return {
    startMs,
    log,
    newTempDir(prefix: string): string {
      const d = mkdtempSync(join(tmpdir(), prefix));
      tempDirs.add(d);
      return d;
    },
    removeTempDir,
    removeTempDirs,
    stopWatchdog: () => clearTimeout(watchdog),
  };
}
