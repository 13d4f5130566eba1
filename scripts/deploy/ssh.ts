/**
 * ssh and scp to one host of the inventory, with its user, port, key and options. Remote work is
 * a bash script passed as `bash -c '<script>' deploy <args...>` (every word single-quoted), so
 * nothing is read from the remote stdin and arguments never meet a second round of parsing.
 */
import { type RunResult, runCommand } from "../../services/shared/process.ts";
import type { Host } from "./hosts.ts";

/** Quote one word for a POSIX shell. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export type { RunResult } from "../../services/shared/process.ts";

export class Remote {
  constructor(readonly host: Host) {}

  get target(): string {
    return this.host.user ? `${this.host.user}@${this.host.sshHost}` : this.host.sshHost;
  }

  /** Options shared by ssh and scp (the port flag differs: -p / -P). */
  private common(portFlag: "-p" | "-P"): string[] {
    const h = this.host;
    const opts = [
      ...(h.sshConfig ? ["-F", h.sshConfig] : []),
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "ServerAliveInterval=10",
      "-o",
      "ServerAliveCountMax=3",
      "-o",
      "LogLevel=ERROR",
    ];
    if (h.sshKey) opts.push("-i", h.sshKey, "-o", "IdentitiesOnly=yes");
    if (h.sshPort !== undefined) opts.push(portFlag, String(h.sshPort));
    for (const o of h.sshOptions) opts.push("-o", o);
    return opts;
  }

  /** The ssh command line that runs `script` (bash) with `args` on the host. */
  sshCommand(script: string, args: readonly string[] = []): string[] {
    return ["ssh", ...this.common("-p"), "-T", this.target, ["bash", "-c", shq(script), "deploy", ...args.map(shq)].join(" ")];
  }

  /** Run a bash script on the host; never throws for a non-zero exit (see `code`). */
  async run(script: string, args: readonly string[] = [], opts: { timeoutMs?: number; onLine?: (line: string) => void } = {}): Promise<RunResult> {
    // timeoutMs 0: no limit (logs --follow).
    return runCommand(this.sshCommand(script, args), { timeoutMs: opts.timeoutMs ?? 120_000, onLine: opts.onLine });
  }

  /** scp a local file to `remotePath` on the host. */
  async copy(local: string, remotePath: string, timeoutMs = 600_000): Promise<RunResult> {
    return runCommand(["scp", "-q", ...this.common("-P"), local, `${this.target}:${remotePath}`], { timeoutMs });
  }
}
