/**
 * The delay a `Retry-After` header asks for, in ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * null when absent or unreadable (the caller then uses its own backoff).
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | null {
  const value = header?.trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its month and zone in letters; Date.parse alone would read "-5" as a year.
  if (!/^[A-Za-z]{3},? /.test(value)) return null;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

/** "3600 s (at 10:20:00 UTC)": how long, and the wall-clock time, so a user knows when to try again. */
export function describeWait(ms: number, now: number = Date.now()): string {
  const at = new Date(now + ms).toISOString().slice(11, 19);
  return `${Math.ceil(ms / 1000)} s (at ${at} UTC)`;
}
