export type ScheduleName = "cosine" | "linear" | "constant";

/**
 * Learning rate for optimizer step s (1-based) of `total`: linear warmup reaching the peak at step `warmup`,
 * then cosine or linear decay from the peak (first step after warmup) towards 0 (never exactly 0, so no
 * step is wasted), or constant.
 */
export function learningRate(params: { step: number; total: number; warmup: number; peak: number; schedule: ScheduleName }): number {
  const { step, total, warmup, peak, schedule } = params;
  if (warmup > 0 && step <= warmup) return (peak * step) / warmup;
  if (schedule === "constant") return peak;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, Math.max(0, (step - warmup - 1) / span));
  return schedule === "cosine" ? peak * 0.5 * (1 + Math.cos(Math.PI * progress)) : peak * (1 - progress);
}

/** Warmup steps from warmup_steps or warmup_ratio × total. */
export function warmupSteps(params: { total: number; warmupSteps?: number | undefined; warmupRatio?: number | undefined }): number {
  if (params.warmupSteps !== undefined) return Math.min(params.warmupSteps, params.total);
  if (params.warmupRatio !== undefined) return Math.ceil(params.warmupRatio * params.total);
  return 0;
}
