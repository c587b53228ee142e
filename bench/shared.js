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
