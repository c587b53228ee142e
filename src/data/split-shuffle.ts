import { seededRandom } from "../model/sampling.js";

/**
 * Holds out round(fraction × n) items for validation, chosen by a seeded shuffle (at least one when fraction > 0
 * and n ≥ 2; never all of them). Both parts keep the original relative order, so the split is the only thing the
 * seed decides.
 */
export function splitValidation<T>(items: T[], fraction: number, seed: number): { train: T[]; validation: T[] } {
  const n = items.length;
  if (!(fraction > 0) || n < 2) return { train: [...items], validation: [] };
  const count = Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
  const held = new Set(shuffled(n, seededRandom(seed)).subarray(0, count));
  return {
    train: items.filter((_, index) => !held.has(index)),
    validation: items.filter((_, index) => held.has(index)),
  };
}

/**
 * The order to visit `count` training items in `epoch`: a seeded permutation, different each epoch, identical for
 * the same (seed, epoch), so a resumed run sees exactly the batches it would have seen.
 */
export function epochOrder(count: number, seed: number, epoch: number): Int32Array {
  // Mix the epoch into the seed (golden-ratio multiplier) so neighbouring epochs start from unrelated states.
  return shuffled(count, seededRandom((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0));
}

/** Fisher–Yates over 0..n-1. */
function shuffled(n: number, random: () => number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, index) => index);
  for (let i = n - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i] ?? i;
    order[i] = order[j] ?? j;
    order[j] = swap;
  }
  return order;
}
