/**
 * Small files a daemon keeps about itself (memberd's peers file, a node's record): written so a
 * crash leaves the old file or the new one, never a torn one, and readable by their owner only.
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Write `text` to `path` atomically: a temp file beside it (named by this process's pid, so two
 * writers never share one), fsync, rename. The file is mode 0600 and its directory 0700 when
 * created: it may name the cluster's members and addresses.
 */
export function writePrivateFileAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    fchmodSync(fd, 0o600); // the mode of openSync applies only when it creates the file
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
