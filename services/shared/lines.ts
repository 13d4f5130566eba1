/**
 * Text helpers shared by the daemons, ctl and tests: lines of a byte stream, and words of a
 * command line with shell-like quoting.
 */

/** The lines of a byte stream (without their "\n"; a last line without one is yielded too). */
export async function* readLines(stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    buffered += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
  buffered += dec.decode();
  if (buffered.length > 0) yield buffered;
}

export class QuoteError extends Error {}

/** Split a line into words: single and double quotes group words, backslash escapes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = "";
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new QuoteError(`unterminated ${quote} quote in ${JSON.stringify(line)}`);
  if (inWord) words.push(cur);
  return words;
}
