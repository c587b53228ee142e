import { Interrupted } from "../errors.js";

/** Waits `ms`, or rejects with `stop()` (by default Interrupted) as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined, stop: () => Error = () => new Interrupted("interrupted")): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(stop());
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort(): void {
      clearTimeout(timer);
      reject(stop());
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
