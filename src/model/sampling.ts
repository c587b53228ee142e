import { UserError } from "../errors.js";

export interface SamplingOptions {
  /** 0 means greedy. */
  temperature: number;
  /** 0 means no top-k cut. */
  topK: number;
  /** 1 means no nucleus cut. */
  topP: number;
}

/** Validates sampling flags with messages that name the value and the allowed range. */
export function checkSampling(options: SamplingOptions): SamplingOptions {
  if (!Number.isFinite(options.temperature) || options.temperature < 0) {
    throw new UserError(`--temperature ${options.temperature} is out of range: use 0 (greedy) or a positive number such as 0.7.`);
  }
  if (!Number.isInteger(options.topK) || options.topK < 0) {
    throw new UserError(`--top-k ${options.topK} is out of range: use a whole number ≥ 0 (0 turns it off).`);
  }
  if (!Number.isFinite(options.topP) || options.topP <= 0 || options.topP > 1) {
    throw new UserError(`--top-p ${options.topP} is out of range: use a number in (0, 1] (1 turns it off).`);
  }
  return options;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same samples on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks the next token from one row of logits: greedy at temperature 0, else temperature → top-k → top-p → sample. */
export function sampleToken(logits: Float32Array, options: SamplingOptions, random: () => number): number {
  if (options.temperature === 0) return argmax(logits);
  let order = Array.from(logits.keys()).sort((a, b) => (logits[b] ?? 0) - (logits[a] ?? 0));
  if (options.topK > 0) order = order.slice(0, options.topK);
  const top = logits[order[0] ?? 0] ?? 0;
  let probs = order.map((i) => Math.exp(((logits[i] ?? 0) - top) / options.temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  if (options.topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < probs.length && cumulative < options.topP * total) cumulative += probs[keep++] ?? 0;
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, Math.max(1, keep));
    total = probs.reduce((a, b) => a + b, 0);
  }
  let r = random() * total;
  for (const [i, p] of probs.entries()) {
    r -= p;
    if (r <= 0) return order[i] ?? 0;
  }
  return order[order.length - 1] ?? 0;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if ((values[i] ?? -Infinity) > (values[best] ?? -Infinity)) best = i;
  return best;
}
