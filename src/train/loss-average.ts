/** How many recent steps the displayed average loss covers (single steps are noisy; the summary names both). */
export const LOSS_AVERAGE_STEPS = 20;

/** The mean of the last `window` losses and how many it covers, or null before any step. */
export function recentAverage(losses: readonly number[], window = LOSS_AVERAGE_STEPS): { value: number; steps: number } | null {
  const recent = losses.slice(-window);
  if (recent.length === 0) return null;
  return { value: recent.reduce((a, b) => a + b, 0) / recent.length, steps: recent.length };
}

/** The label used wherever the average is shown, so the live line and the summary say the same thing. */
export const averageLabel = (steps: number): string => `loss (avg ${steps} step${steps === 1 ? "" : "s"})`;
