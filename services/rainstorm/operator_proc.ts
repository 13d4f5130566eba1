/**
 * One long-running operator process, the engine side of the operator protocol (ops/protocol.ts,
 * docs/ARCHITECTURE.md §5): started once per task, fed batches of inputs on stdin (one write per
 * batch), answered in order with zero or more outputs then a done per input: tuple lines and
 * `o`/`d` lines for the built-in operators (TSV framing), `{"id","key","value"}` lines and
 * `{"key","value"}` / `{"done": id}` for any other executable (JSON). stderr goes to the task log.
 */
import type { Subprocess } from "bun";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import {
  type Answer,
  decodeOperatorLine,
  decodeOperatorTsvLine,
  FRAMING_ENV,
  type Framing,
  jsonInputLineOf,
  type OperatorMessage,
  type Output,
  restoreLine,
  snapshotRequestLine,
} from "../../ops/protocol.ts";
import { readLines } from "../shared/lines.ts";

// The engine's users (worker, leader, tests, bench) take the protocol's pieces from here too.
export { type Answer, type Framing, type Output, tupleLine } from "../../ops/protocol.ts";

/** One batch in flight: `count` inputs, answered in order. */
interface Pending {
  count: number;
  answers: Answer[];
  current: Output[];
  resolve: (answers: Answer[]) => void;
  reject: (err: Error) => void;
}

export class OperatorExited extends Error {}

/** Tuple lines as JSON input lines, for an operator that speaks JSON; undefined when one is not a tuple. */
export function jsonInputLines(lines: string): string | undefined {
  let out = "";
  for (let from = 0; from < lines.length;) {
    const end = lines.indexOf("\n", from);
    const json = jsonInputLineOf(lines.slice(from, end < 0 ? lines.length : end));
    if (json === undefined) return undefined;
    out += json;
    from = end < 0 ? lines.length : end + 1;
  }
  return out;
}

/** Newlines in `text` (indexOf runs natively, well below the cost of the pipe write). */
export function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

export class OperatorProcess {
  readonly proc: Subprocess<"pipe", "pipe", number>;
  readonly exited: Promise<number>;
  private readonly pending: Pending[] = [];
  private snapshotWaiters = new Map<number, { resolve: (state: unknown) => void; reject: (err: Error) => void }>();
  private exitCode: number | undefined;
  private readonly startedMs = performance.now();
  /** Inputs written and not yet answered (done), and answers so far: what the hung-operator guard samples. */
  private pendingInputs = 0;
  private answered = 0;

  /**
   * Run `cmd` (its first word is the file that runs) with its stderr appended to `logPath`.
   * `argv0` is the name the program sees itself invoked as (default: cmd[0]); the built-in
   * multi-call operator binary reads the operator's name from it.
   */
  private readonly decodeLine: (line: string) => OperatorMessage;

  /**
   * `framing`: "tsv" for the built-in operators (asked for through FRAMING_ENV; batches pass
   * through as they are), "json" for any other executable (each tuple line becomes a JSON input line).
   */
  constructor(
    readonly cmd: string[],
    readonly logPath: string,
    cwd: string,
    argv0?: string,
    readonly framing: Framing = "json",
  ) {
    this.decodeLine = framing === "tsv" ? decodeOperatorTsvLine : decodeOperatorLine;
    const logFd = openSync(logPath, "a");
    const env = { ...process.env, [FRAMING_ENV]: framing };
    try {
      this.proc = Bun.spawn(cmd, { cwd, env, stdin: "pipe", stdout: "pipe", stderr: logFd, ...(argv0 === undefined ? {} : { argv0 }) }) as Subprocess<
        "pipe",
        "pipe",
        number
      >;
    } finally {
      closeSync(logFd);
    }
    const shown = [argv0 ?? cmd[0]!, ...cmd.slice(1)];
    this.exited = this.proc.exited.then((code) => {
      this.exitCode = code;
      const err = new OperatorExited(`operator ${shown.map((c) => c.split("/").pop()).join(" ")} exited with code ${code}${this.stderrTail()}`);
      this.rejectAll(err);
      return code;
    });
    void this.readLoop();
  }

  get pid(): number {
    return this.proc.pid;
  }
  get alive(): boolean {
    return this.exitCode === undefined;
  }
  get uptimeMs(): number {
    return performance.now() - this.startedMs;
  }

  /** Progress for the hung-operator guard (worker_guards.ts). */
  progress(): { pending: number; answered: number } {
    return { pending: this.pendingInputs, answered: this.answered };
  }

  /** The last lines the operator wrote to stderr, for error messages. */
  stderrTail(maxBytes = 400): string {
    try {
      const size = statSync(this.logPath).size;
      const text = readFileSync(this.logPath, "utf8")
        .slice(Math.max(0, size - maxBytes))
        .trim();
      return text ? `: ${text.split("\n").slice(-3).join(" | ")}` : "";
    } catch {
      return "";
    }
  }

  /**
   * Send a batch of `count` tuple lines (tupleLine: the data plane carries them that way, so a
   * worker passes them through to a TSV operator without decoding); resolves with each input's
   * answer, in input order.
   */
  processLines(lines: string, count: number): Promise<Answer[]> {
    if (!this.alive) return Promise.reject(new OperatorExited(`operator already exited with code ${this.exitCode}`));
    // The answers are counted against `count`: a batch whose lines say otherwise would leave
    // this batch waiting or give its answers to the next one. Refused before anything is sent.
    const lineCount = countLines(lines);
    if (lineCount !== count || (lines.length > 0 && !lines.endsWith("\n"))) {
      return Promise.reject(
        new Error(
          `batch of ${count} inputs holds ${lineCount} complete lines${lines.endsWith("\n") || lines.length === 0 ? "" : " and an unterminated one"}; not sent to the operator`,
        ),
      );
    }
    if (count === 0) return Promise.resolve([]);
    // One promise per batch, not per tuple: this is the hot path of every task.
    const done = new Promise<Answer[]>((resolve, reject) => {
      this.pending.push({ count, answers: [], current: [], resolve, reject });
    });
    const text = this.framing === "tsv" ? lines : jsonInputLines(lines);
    if (text === undefined) return Promise.reject(new Error("batch holds a line that is not a tuple (id TAB key TAB value); not sent to the operator"));
    this.pendingInputs += count;
    if (!this.send(text)) return Promise.reject(new OperatorExited("operator stdin closed"));
    return done;
  }

  /** Ask a stateful operator for its state. */
  snapshot(n: number, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no snapshot answer within ${timeoutMs} ms`)), timeoutMs);
      this.snapshotWaiters.set(n, {
        resolve: (state) => {
          clearTimeout(timer);
          resolve(state);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      if (!this.send(snapshotRequestLine(n))) reject(new OperatorExited("operator stdin closed"));
    });
  }

  restore(state: unknown): void {
    this.send(restoreLine(state));
  }

  /**
   * Write to the operator's stdin. A dead operator makes the pipe fail with EPIPE, synchronously
   * or in the flush promise: both are caught here (the exit itself is reported by `exited`).
   */
  private send(text: string): boolean {
    try {
      this.proc.stdin.write(text);
      const flushed = this.proc.stdin.flush();
      if (flushed instanceof Promise) flushed.catch(() => {});
      return true;
    } catch {
      return false;
    }
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const line of readLines(this.proc.stdout)) if (line) this.onLine(line);
    } catch {
      // stdout closes when the process dies; `exited` reports it.
    }
  }

  private onLine(line: string): void {
    const msg = this.decodeLine(line);
    switch (msg.kind) {
      case "done":
        return this.onDone(msg.id);
      case "output": {
        const head = this.pending[0];
        if (!head) return this.fail("operator wrote an output with no input pending");
        head.current.push({ key: msg.key, value: msg.value });
        return;
      }
      case "snapshot":
        this.snapshotWaiters.get(msg.n)?.resolve(msg.state);
        this.snapshotWaiters.delete(msg.n);
        return;
      case "bad":
        return this.fail(msg.problem);
    }
  }

  private onDone(id: string): void {
    const head = this.pending[0];
    if (!head) return this.fail(`operator answered done for ${id} with no input pending`);
    head.answers.push({ id, outputs: head.current });
    head.current = [];
    this.pendingInputs--;
    this.answered++;
    if (head.answers.length === head.count) {
      this.pending.shift();
      head.resolve(head.answers);
    }
  }

  /** A protocol violation: the operator cannot be trusted any more. */
  private fail(reason: string): void {
    this.rejectAll(new OperatorExited(reason));
    this.kill();
  }

  /** Every waiter (batches and snapshots) fails at once when the operator is gone. */
  private rejectAll(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err);
    this.pendingInputs = 0;
    for (const w of this.snapshotWaiters.values()) w.reject(err);
    this.snapshotWaiters.clear();
  }

  /** End of stream: close stdin and wait for the exit code, killing after `graceMs`. */
  async endInput(graceMs: number): Promise<number | undefined> {
    try {
      const ended = this.proc.stdin.end();
      if (ended instanceof Promise) ended.catch(() => {});
    } catch {}
    const code = await Promise.race([this.exited, Bun.sleep(graceMs).then(() => undefined)]);
    if (code === undefined) this.kill();
    return code;
  }

  kill(): void {
    try {
      this.proc.kill("SIGKILL");
    } catch {}
  }
}
