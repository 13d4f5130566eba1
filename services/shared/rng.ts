/**
 * Seeded pseudo-random numbers. Protocol code never calls Math.random: it is handed an Rng so
 * that a simulated run is replayed exactly from its seed.
 */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
}

/** splitmix32-style generator: tiny, fast, good enough for peer selection and loss injection. */
export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      z = (z ^ (z >>> 16)) >>> 0;
      return z / 4294967296;
    },
  };
}

/** A generator seeded from the OS, for daemons. */
export function osRng(): Rng {
  return seededRng(crypto.getRandomValues(new Uint32Array(1))[0]!);
}

/** Integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

/** In-place Fisher-Yates shuffle; returns the array. */
export function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** Up to k distinct random items from `items` (which is not modified). */
export function sample<T>(rng: Rng, items: readonly T[], k: number): T[] {
  if (k >= items.length) return shuffle(rng, items.slice());
  return shuffle(rng, items.slice()).slice(0, k);
}
