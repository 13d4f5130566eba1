/**
 * ssh and scp to one host of the inventory, with its user, port, key and options. Remote work is
 * a bash script passed as `bash -c '<script>' deploy <args...>` (every word single-quoted), so
 * nothing is read from the remote stdin and arguments never meet a second round of parsing.
 */
import type { Host } from "./hosts.ts";

/** Quote one word for a POSIX shell. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface RunResult {
  code: number;
  out: string;
  err: string;
}

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
    const proc = Bun.spawn(this.sshCommand(script, args), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    // timeoutMs 0: no limit (logs --follow).
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const timer = timeoutMs > 0 ? setTimeout(() => proc.kill("SIGKILL"), timeoutMs) : undefined;
    const outP = opts.onLine ? streamLines(proc.stdout, opts.onLine) : new Response(proc.stdout).text();
    const [out, err] = await Promise.all([outP, new Response(proc.stderr).text()]);
    const code = await proc.exited;
    if (timer) clearTimeout(timer);
    return { code, out, err };
  }

  /** scp a local file to `remotePath` on the host. */
  async copy(local: string, remotePath: string, timeoutMs = 600_000): Promise<RunResult> {
    const proc = Bun.spawn(["scp", "-q", ...this.common("-P"), local, `${this.target}:${remotePath}`], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    clearTimeout(timer);
    return { code, out, err };
  }
}

async function streamLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  }
  if (buf) onLine(buf);
  return ""; // streamed, not kept
}
