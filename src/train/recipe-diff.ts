export interface RecipeDifference {
  /** Dot path of the value, e.g. train.lr. */
  path: string;
  before: unknown;
  after: unknown;
}

/** The leaf values that differ between two parsed recipes, by dot path, in a stable order. Arrays compare whole. */
export function recipeDifferences(before: unknown, after: unknown, prefix = ""): RecipeDifference[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => recipeDifferences(before[key], after[key], prefix ? `${prefix}.${key}` : key));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: prefix || "(recipe)", before, after }];
}

/** One difference as `train.lr: 0.01 → 0.5`; an absent value shows as (not set). */
export function formatDifference(difference: RecipeDifference): string {
  const show = (value: unknown) => (value === undefined ? "(not set)" : JSON.stringify(value));
  return `${difference.path}: ${show(difference.before)} → ${show(difference.after)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
