import { readFileSync } from "node:fs";

/**
 * When a process started, in clock ticks since boot, or null where it cannot be read (no /proc). On Linux this is
 * field 22 of /proc/<pid>/stat: a pid reused by another process has a different value, so a lock left by a dead
 * owner is not mistaken for one held by whoever got its pid.
 */
export function processStartTicks(pid: number): number | null {
  if (process.platform !== "linux") return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (the command name) may contain spaces and parentheses: count fields after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

/** processStartTicks as the opaque string the blob locks record. */
export function processStartTime(pid: number): string | null {
  const ticks = processStartTicks(pid);
  return ticks === null ? null : String(ticks);
}
