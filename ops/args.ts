/**
 * Argument checks shared by the operator factories: one error style everywhere, naming the bad
 * value, what was expected, and the operator's usage.
 */

/** An argument error: the message says what is wrong, then the usage. */
export function usageError(usage: string, problem: string): Error {
  return new Error(`${problem}\nusage: ${usage}`);
}

/**
 * A whole number >= min written in plain decimal digits. `Number()` alone would also accept "",
 * " 1", "1e3", "0x10" and "-0", which are more likely typos than column numbers.
 */
export function parseWholeNumber(text: string, what: string, usage: string, min = 0, note = ""): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw usageError(usage, `${what} ${JSON.stringify(text)} is not a whole number >= ${min}${note}`);
  }
  return n;
}

/** A column number: 0-based, as everywhere in RainStorm. */
export function parseColumn(text: string, usage: string): number {
  return parseWholeNumber(text, "column", usage, 0, " (columns are 0-based)");
}

/** Fail unless `args.length` is within [min, max]. */
export function expectArgCount(args: readonly string[], min: number, max: number, usage: string): void {
  if (args.length >= min && args.length <= max) return;
  const want = min === max ? `${min}` : max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min} to ${max}`;
  const got = args.length === 0 ? "none" : `${args.length} (${args.map((a) => JSON.stringify(a)).join(" ")})`;
  const singular = min === 1 && (max === 1 || max === Number.POSITIVE_INFINITY);
  throw usageError(usage, `expected ${want} argument${singular ? "" : "s"}, got ${got}`);
}
