/** Deterministic values in [-1, 1) from a seed (a linear congruential generator: fast, enough for test data). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}
