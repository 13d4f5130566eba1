/**
 * Durations as people type them ("1s", "500ms", "2m", "1500") turned into milliseconds.
 * A bare number is milliseconds.
 */
export function parseDurationMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!match) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: expected a number with an optional unit ms, s or m (e.g. "1s", "500ms")`);
  }
  const value = Number(match[1]);
  const unit = match[2] ?? "ms";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000;
  return Math.round(value * factor);
}
