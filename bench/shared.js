/** Prefixes the line on which a bench section reports its { lines, results } (see bench/section.js). */
export const RESULT_MARKER = "@finetune-bench-section ";

/** The middle value (the mean of the two middle ones for an even count): robust to one run slowed by other load. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Matmul parameters a token passes through (every projection and the LM head), for the FLOP counts. */
export function matmulParameters(model) {
  let n = 0;
  for (const p of model.projections.values()) n += p.inFeatures * p.outFeatures;
  return n + model.head.rows * model.head.cols;
}

/**
 * Prefill and decode times of model.newDecoder (what `generate` runs): after a warm-up (the first calls grow the
 * heap, fault weights in and start the GEMM threads), `rounds` runs of the prompt and then `tokens` greedy tokens
 * on a fresh cache each; the median of each phase, and which decoder ran.
 */
export async function timeDecoding(model, { prompt, tokens, rounds }) {
  const capacity = prompt.length + tokens + 1;
  const greedy = (logits) => {
    let best = 0;
    for (let j = 1; j < logits.length; j += 1) if (logits[j] > logits[best]) best = j;
    return best;
  };
  const warm = model.newDecoder(capacity);
  let next = greedy(await warm.step(Array.from(prompt.slice(0, 8))));
  for (let i = 0; i < 4; i += 1) next = greedy(await warm.step([next]));
  warm.dispose();
  const prefills = [];
  const decodes = [];
  for (let round = 0; round < rounds; round += 1) {
    const decoder = model.newDecoder(capacity);
    let t0 = performance.now();
    next = greedy(await decoder.step(Array.from(prompt)));
    prefills.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let i = 0; i < tokens; i += 1) next = greedy(await decoder.step([next]));
    decodes.push((performance.now() - t0) / 1000);
    decoder.dispose();
  }
  return { kind: warm.kind, prefillSeconds: median(prefills), decodeSeconds: median(decodes) };
}

/** timeDecoding on the model's tfjs forward pass (FINETUNE_LEAN_DECODE=0), for comparison with the native decoder. */
export async function timeTfjsDecoding(model, settings) {
  const saved = process.env.FINETUNE_LEAN_DECODE;
  process.env.FINETUNE_LEAN_DECODE = "0";
  try {
    return await timeDecoding(model, settings);
  } finally {
    if (saved === undefined) delete process.env.FINETUNE_LEAN_DECODE;
    else process.env.FINETUNE_LEAN_DECODE = saved;
  }
}
