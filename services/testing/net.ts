/**
 * Addresses for multi-process tests. Every test cluster and test server binds 127.<base>.<n>.k,
 * where <n> is fixed per test file (so files running at once never share an address) and <base>
 * comes from the environment (RAINSTORM_TEST_NET, default 0): two suites on one machine, each
 * with its own base, never collide either. Linux routes all of 127.0.0.0/8 to lo, so any base works.
 */

/** The environment variable holding the second octet of every test address. */
export const TEST_NET_ENV = "RAINSTORM_TEST_NET";

/**
 * The second octet from the environment's value: an integer 0..254 (255 is left out so that
 * 127.<base>.255.255, a broadcast-looking address, never appears). Unset or empty is 0.
 */
export function parseTestNetBase(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 0;
  const base = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(base) || base < 0 || base > 254) {
    throw new Error(`${TEST_NET_ENV} must be an integer from 0 to 254 (the second octet of 127.X.N.K test addresses), got ${JSON.stringify(raw)}`);
  }
  return base;
}

/** "127.<base>.<n>": the first three octets of a test file's addresses (node k is `${testNet(n)}.${k}`). */
export function testNet(n: number, base = parseTestNetBase(process.env[TEST_NET_ENV])): string {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`test subnet number must be an integer from 0 to 255, got ${n}`);
  return `127.${base}.${n}`;
}
