/**
 * Time bounds of tests as data: every fixed bound a test waits for or asserts ("within 2 s", a
 * test's timeout) goes through scaled(), which multiplies it by one factor from the environment
 * (RAINSTORM_TEST_TIME_SCALE, default 1; e.g. 2 on a loaded 2-core box). Bounds on what must NOT
 * happen too early (a rate limit's minimum duration) are not scaled: a slow box cannot make them
 * fail.
 */

/** The environment variable holding the factor. */
export const TIME_SCALE_ENV = "RAINSTORM_TEST_TIME_SCALE";

/** The factor from the environment's value: a finite number from 0.1 to 100. Unset or empty is 1. */
export function parseTimeScale(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale < 0.1 || scale > 100) {
    throw new Error(`${TIME_SCALE_ENV} must be a number from 0.1 to 100 (the factor applied to test time bounds), got ${JSON.stringify(raw)}`);
  }
  return scale;
}

/** `ms` times the factor, rounded up to a whole millisecond. */
export function scaled(ms: number, scale = parseTimeScale(process.env[TIME_SCALE_ENV])): number {
  return Math.ceil(ms * scale);
}
