/**
 * ctl's client identity for HyDFS: a stable client id and a sequence counter in the user's state
 * directory (RAINSTORM_CTL_STATE, default ~/.rainstorm/ctl-client.json), so `ctl append` twice in
 * a row is one client appending twice, and a retried append reuses its sequence number (applied
 * once). Separate from hydfs.ts because it is the one piece of ctl that keeps state on disk
 * between runs, under its own lock.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CtlError } from "./errors.ts";

export function clientStatePath(): string {
  return process.env.RAINSTORM_CTL_STATE ?? join(homedir(), ".rainstorm", "ctl-client.json");
}

/** Take the next sequence number under a lock directory, so concurrent ctl runs never share one. */
export async function nextClientSeq(path = clientStatePath()): Promise<{ clientId: string; seq: number }> {
  mkdirSync(dirname(path), { recursive: true });
  const lock = `${path}.lock`;
  const deadline = performance.now() + 5000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than 10 s belongs to a ctl that died holding it.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) rmdirSync(lock);
      } catch {}
      if (performance.now() > deadline) throw new CtlError(`client state ${path} is locked by another ctl (remove ${lock} if none runs)`);
      await Bun.sleep(20);
    }
  }
  try {
    const state = existsSync(path)
      ? (JSON.parse(readFileSync(path, "utf8")) as { clientId: string; seq: number })
      : { clientId: `ctl-${randomUUID()}`, seq: 0 };
    state.seq++;
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
    return state;
  } finally {
    rmdirSync(lock);
  }
}
