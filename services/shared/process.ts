/**
 * Running a command to completion, with a deadline: the one helper the build, the bundle, the
 * deployment scripts and the benchmarks use. Every call names its deadline; a command still
 * running at it is killed (SIGKILL) and says so in `timedOut`.
 */
export interface RunOptions {
  /** Kill the command after this long (ms); 0 = no deadline (a stream followed until stopped). */
  timeoutMs: number;
  /** Working directory. Default: this process's. */
  cwd?: string;
  /** Written to its stdin, then closed; default: no stdin. */
  stdin?: string;
  env?: Record<string, string | undefined>;
  /** Called with each stdout line as it arrives; `out` is then empty. */
  onLine?: (line: string) => void;
}

export interface RunResult {
  code: number;
  out: string;
  err: string;
  /** The deadline passed and the command was killed. */
  timedOut: boolean;
}

export async function runCommand(cmd: string[], opts: RunOptions): Promise<RunResult> {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env: opts.env,
  });
  let timedOut = false;
  const timer =
    opts.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          proc.kill("SIGKILL");
        }, opts.timeoutMs)
      : undefined;
  try {
    const outP = opts.onLine ? streamLines(proc.stdout, opts.onLine) : new Response(proc.stdout).text();
    const [out, err] = await Promise.all([outP, new Response(proc.stderr).text()]);
    const code = await proc.exited;
    return { code, out, err, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** Feed each line of `stream` to `onLine` as it arrives (the last one even without a newline). */
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
