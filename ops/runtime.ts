/**
 * The shared operator runtime: the operator side of the protocol (ops/protocol.ts: newline-
 * delimited JSON over stdin/stdout, docs/ARCHITECTURE.md §5) around a pure `process(key, value)`.
 *
 * Speed comes from batching (docs/ARCHITECTURE.md §7: 11M lines/s chunked against 2.4M line by line): stdin is
 * read a chunk at a time, every complete line of the chunk is answered, and all the answers go out
 * in ONE write that is awaited, so a slow reader of stdout stops us reading stdin (backpressure
 * reaches the upstream worker through the pipe instead of piling up in our memory).
 *
 * Only protocol lines ever go to stdout; every complaint goes to stderr (the task log). Bad input
 * never stops the operator: a line that cannot be understood is reported and, when it carries an
 * id, answered with {"done": id} and no outputs so the worker is never left waiting.
 */
import {
  decodeEngineLine,
  decodeEngineTsvLine,
  describe,
  doneLine,
  type EngineMessage,
  FRAMING_ENV,
  type Framing,
  MAX_LINE_CHARS,
  type Output,
  outputLine,
  snapshotAnswerLine,
  tsvDoneLine,
  tsvOutputLine,
} from "./protocol.ts";

export type { Output };
export { MAX_LINE_CHARS };

export interface Operator {
  /** Canonical name, used in log lines. */
  name: string;
  /** One-paragraph usage, shown by --help and in argument errors. */
  usage: string;
  /** The operator itself: pure, synchronous, one input to zero or more outputs. */
  process(key: string, value: string): Output[];
  /** Stateful operators only: the state as plain JSON-able data. */
  snapshot?(): unknown;
  /** Stateful operators only: replace the state; throws when `state` is not valid. */
  restore?(state: unknown): void;
}

/** Builds an operator from its command-line arguments; throws an Error with usage on bad ones. */
export type OperatorFactory = (args: string[]) => Operator;

export interface OperatorIO {
  stdin: ReadableStream<Uint8Array>;
  /** Writes protocol lines; its promise resolving means "ready for more" (backpressure). */
  write: (s: string) => Promise<void> | void;
  /** One diagnostic message, without trailing newline. */
  log: (s: string) => void;
  /** The framing spoken (default: what FRAMING_ENV asks for, else JSON). */
  framing?: Framing;
}

export interface RunResult {
  /** 0 at end of input, 1 when stdout failed (the reader went away). */
  exitCode: number;
  inputs: number;
  outputs: number;
  /** Lines reported to stderr as not understood (malformed, misplaced restore, throwing op...). */
  errors: number;
  /** Calls of io.write: one per input chunk that held at least one complete line. */
  writes: number;
}

/** How much of a bad line a log message quotes. */
const QUOTE_CHARS = 160;

/**
 * Run `op` until end of input. Without `io` it speaks over the real stdin/stdout/stderr; tests pass
 * their own streams. Never throws for anything the input contains.
 */
export async function runOperator(op: Operator, io?: OperatorIO): Promise<RunResult> {
  const sink = io ? undefined : Bun.stdout.writer();
  const write =
    io?.write ??
    (async (s: string) => {
      // FileSink.write returns a promise when the pipe is full (types say number): awaiting it is
      // the backpressure, and leaving it unawaited would turn EPIPE into unhandled rejections.
      const written: unknown = sink!.write(s);
      if (written instanceof Promise) await written;
      await sink!.flush();
    });
  const log = io?.log ?? ((s: string) => void process.stderr.write(`${s}\n`));
  const stdin = io?.stdin ?? Bun.stdin.stream();

  const session = new Session(op, log, io?.framing ?? (process.env[FRAMING_ENV] === "tsv" ? "tsv" : "json"));
  const splitter = new LineSplitter(MAX_LINE_CHARS);
  const decoder = new TextDecoder();
  const result: RunResult = { exitCode: 0, inputs: 0, outputs: 0, errors: 0, writes: 0 };

  const answer = async (lines: string[]): Promise<boolean> => {
    if (lines.length === 0) return true;
    const text = session.answer(lines);
    if (text.length === 0) return true;
    try {
      result.writes++;
      await write(text);
      return true;
    } catch (err) {
      log(`${op.name}: stdout failed, stopping: ${(err as Error).message}`);
      result.exitCode = 1;
      return false;
    }
  };

  const reader = stdin.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const { lines, dropped } = splitter.push(decoder.decode(value, { stream: true }));
      if (dropped) session.report(`a line longer than ${MAX_LINE_CHARS} characters was dropped (no newline in sight)`);
      if (!(await answer(lines))) break;
    }
    if (result.exitCode === 0) {
      // End of input: the last line may lack its newline; answer it too.
      const { lines } = splitter.push(decoder.decode());
      const last = splitter.end();
      if (last !== undefined) lines.push(last);
      await answer(lines);
    }
  } catch (err) {
    // A failing stdin is the end of input too, not a crash.
    log(`${op.name}: stdin failed: ${(err as Error).message}`);
  } finally {
    reader.releaseLock();
  }
  if (sink) {
    try {
      await sink.end();
    } catch (err) {
      if (result.exitCode === 0) log(`${op.name}: stdout failed at exit: ${(err as Error).message}`);
      result.exitCode = 1;
    }
  }
  Object.assign(result, session.counts());
  return result;
}

/**
 * Cuts decoded text into lines across chunk boundaries. A line that grows past `maxChars` without
 * a newline is dropped whole (its remaining chunks are skipped up to the next newline).
 */
export class LineSplitter {
  private carry = "";
  private discarding = false;

  constructor(private readonly maxChars: number) {}

  /** Complete lines in `text` (without their newline); `dropped` when an over-long line was cut. */
  push(text: string): { lines: string[]; dropped: boolean } {
    let dropped = false;
    const nl = text.lastIndexOf("\n");
    if (nl < 0) {
      if (!this.discarding) {
        this.carry += text;
        if (this.carry.length > this.maxChars) {
          this.carry = "";
          this.discarding = true;
          dropped = true;
        }
      }
      return { lines: [], dropped };
    }
    const whole = this.carry + text.slice(0, nl);
    const lines = whole.split("\n");
    if (this.discarding) {
      // The first piece is the tail of the line being dropped.
      lines.shift();
      this.discarding = false;
    }
    this.carry = text.slice(nl + 1);
    if (this.carry.length > this.maxChars) {
      this.carry = "";
      this.discarding = true;
      dropped = true;
    }
    return { lines, dropped };
  }

  /** At end of input: the unterminated last line, if any. */
  end(): string | undefined {
    const last = this.discarding || this.carry.length === 0 ? undefined : this.carry;
    this.carry = "";
    this.discarding = false;
    return last;
  }
}

/**
 * Protocol state of one run: answers lines, counts, remembers whether a restore is still allowed.
 * Synchronous, so a snapshot always reflects exactly the inputs answered before it.
 */
export class Session {
  private lineNo = 0;
  /** Whether a non-blank line has been seen: {"restore"} is only valid before that. */
  private started = false;
  private inputs = 0;
  private outputs = 0;
  private errors = 0;

  /** The framing's codec: how engine lines read, and how outputs and dones are written. */
  private readonly decode: (line: string) => EngineMessage;
  private readonly outputLine: (key: string, value: string) => string;
  private readonly doneLine: (id: string | number) => string;

  constructor(
    private readonly op: Operator,
    private readonly log: (s: string) => void,
    framing: Framing = "json",
  ) {
    const tsv = framing === "tsv";
    this.decode = tsv ? decodeEngineTsvLine : decodeEngineLine;
    this.outputLine = tsv ? tsvOutputLine : outputLine;
    this.doneLine = tsv ? tsvDoneLine : doneLine;
  }

  counts(): { inputs: number; outputs: number; errors: number } {
    return { inputs: this.inputs, outputs: this.outputs, errors: this.errors };
  }

  report(message: string): void {
    this.errors++;
    this.log(`${this.op.name}: ${message}`);
  }

  /** The protocol text answering `lines`, in order (empty string when nothing is to be said). */
  answer(lines: readonly string[]): string {
    const out: string[] = [];
    for (const line of lines) this.answerLine(line, out);
    return out.length === 0 ? "" : `${out.join("\n")}\n`;
  }

  private answerLine(line: string, out: string[]): void {
    this.lineNo++;
    const msg = this.decode(line);
    if (msg.kind === "blank") return; // not a message, so a restore may still follow
    const first = !this.started;
    this.started = true;
    switch (msg.kind) {
      case "input":
        return this.input(msg.id, msg.key, msg.value, line, out);
      case "input_without_tuple":
        this.inputs++;
        this.bad(msg.problem, line);
        out.push(this.doneLine(msg.id));
        return;
      case "snapshot":
        return this.snapshot(msg.n, line, out);
      case "restore":
        return this.restore(msg.state, first, line);
      case "bad":
        return this.bad(msg.problem, line);
    }
  }

  private input(id: string | number, key: string, value: string, line: string, out: string[]): void {
    const done = this.doneLine(id);
    this.inputs++;
    let results: Output[];
    try {
      results = this.op.process(key, value);
    } catch (err) {
      this.bad(`operator failed (${(err as Error).message}); answering done without outputs`, line);
      out.push(done);
      return;
    }
    for (const r of results) {
      // A bad output would corrupt the stream for the worker: drop it and say so.
      if (typeof r?.key !== "string" || typeof r.value !== "string") {
        this.bad(`operator returned an output without string key and value (${describe(r)}); dropped`, line);
        continue;
      }
      out.push(this.outputLine(r.key, r.value));
      this.outputs++;
    }
    out.push(done);
  }

  private snapshot(n: number | string, line: string, out: string[]): void {
    let state: unknown = null; // stateless operators answer too, so a uniform worker never waits
    if (this.op.snapshot) {
      try {
        state = this.op.snapshot();
      } catch (err) {
        // No answer rather than a wrong one: the worker's snapshot timeout reports it.
        this.bad(`snapshot failed (${(err as Error).message}); not answered`, line);
        return;
      }
    }
    out.push(snapshotAnswerLine(state, n));
  }

  private restore(state: unknown, first: boolean, line: string): void {
    if (!first) {
      this.bad(`{"restore"} is only valid as the first line; ignored (state unchanged)`, line);
      return;
    }
    if (!this.op.restore) {
      if (state !== null) this.bad(`is a restore, but this operator is stateless; ignored`, line);
      return;
    }
    try {
      this.op.restore(state);
    } catch (err) {
      this.bad(`restore failed (${(err as Error).message}); continuing with the initial state`, line);
    }
  }

  private bad(problem: string, line: string): void {
    this.report(`line ${this.lineNo} ${problem}: ${quote(line)}`);
  }
}

/** A log-sized excerpt of a line. */
export function quote(line: string, max = QUOTE_CHARS): string {
  return line.length <= max ? line : `${line.slice(0, max)}... (${line.length} chars)`;
}
