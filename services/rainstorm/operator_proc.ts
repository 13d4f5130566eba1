/**
 * One long-running operator process, the engine side of the operator protocol (ops/protocol.ts,
 * docs/ARCHITECTURE.md §5): started once per task, fed batches of `{"id","key","value"}` lines on
 * stdin (one write per batch), answered in order with zero or more `{"key","value"}` lines then
 * `{"done": id}` per input. stderr goes to the task log.
 */
import type { Subprocess } from "bun";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { type Answer, decodeOperatorLine, type Output, restoreLine, snapshotRequestLine } from "../../ops/protocol.ts";
import { readLines } from "../shared/lines.ts";

// The engine's users (worker, leader, tests, bench) take the protocol's pieces from here too.
export { type Answer, inputLine, type Output } from "../../ops/protocol.ts";

/** One batch in flight: `count` inputs, answered in order. */
interface Pending {
  count: number;
  answers: Answer[];
  current: Output[];
  resolve: (answers: Answer[]) => void;
  reject: (err: Error) => void;
}

export class OperatorExited extends Error {}

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
  constructor(
    readonly cmd: string[],
    readonly logPath: string,
    cwd: string,
    argv0?: string,
  ) {
    const logFd = openSync(logPath, "a");
    try {
      this.proc = Bun.spawn(cmd, { cwd, stdin: "pipe", stdout: "pipe", stderr: logFd, ...(argv0 === undefined ? {} : { argv0 }) }) as Subprocess<
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
   * Send a batch of `count` input lines (already in the protocol's form: the data plane carries
   * them that way, so a worker passes them through without decoding); resolves with each
   * input's answer, in input order.
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
    this.pendingInputs += count;
    if (!this.send(lines)) return Promise.reject(new OperatorExited("operator stdin closed"));
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
    const msg = decodeOperatorLine(line);
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
