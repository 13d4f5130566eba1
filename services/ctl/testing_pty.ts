/**
 * Tests only: run a program in a pseudo-terminal (Bun.spawn's `terminal`), type into it and wait
 * for what it prints, as a user at a terminal would see it.
 */
import { stripAnsi } from "../shared/cli.ts";

export interface PtySession {
  /** Everything the program printed so far (escape sequences included). */
  output(): string;
  /** Type `keys` (raw bytes: "\r" is Enter, "\x1b[A" Up, "\t" Tab, "\x03" Ctrl-C, "\x04" Ctrl-D). */
  type(keys: string): void;
  /**
   * Wait until the output after `from` (an earlier output().length), escape sequences removed,
   * matches `re`; resolves with that text.
   */
  waitFor(re: RegExp, from?: number, timeoutMs?: number): Promise<string>;
  /** The exit code, once the program ends (killed after `timeoutMs`). */
  exited(timeoutMs?: number): Promise<number>;
  kill(): void;
}

export function spawnPty(cmd: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; cols?: number; rows?: number } = {}): PtySession {
  let out = "";
  const decoder = new TextDecoder();
  const proc = Bun.spawn(cmd, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    terminal: {
      cols: opts.cols ?? 80,
      rows: opts.rows ?? 24,
      data: (_t, d) => {
        out += decoder.decode(d, { stream: true });
      },
    },
  });
  return {
    output: () => out,
    type: (keys) => void proc.terminal!.write(keys),
    async waitFor(re, from = 0, timeoutMs = 15_000) {
      const deadline = performance.now() + timeoutMs;
      const seen = () => stripAnsi(out.slice(from));
      while (!re.test(seen())) {
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${re} in ${JSON.stringify(seen())}`);
        if (proc.exitCode !== null) {
          await Bun.sleep(50); // let the last output arrive
          if (re.test(seen())) break;
          throw new Error(`the program exited (${proc.exitCode}) before ${re} appeared in ${JSON.stringify(seen())}`);
        }
        await Bun.sleep(20);
      }
      return seen();
    },
    async exited(timeoutMs = 15_000) {
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await proc.exited;
      clearTimeout(timer);
      proc.terminal?.close();
      return code;
    },
    kill: () => proc.kill("SIGKILL"),
  };
}
