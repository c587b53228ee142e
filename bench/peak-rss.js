import { writeFileSync } from "node:fs";

/** The process's peak resident set so far, in KiB (getrusage's maxRSS). */
export function peakRssKiB() {
  return process.resourceUsage().maxRSS;
}

/**
 * Starts a new peak, so the next peakRssKiB() is the peak of one phase (training) rather than of the process
 * (loading included). Linux only (writing 5 to /proc/self/clear_refs resets the high-water mark getrusage reads);
 * returns false where that is not possible, and the next figure is then the process peak.
 */
export function resetPeakRss() {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}
