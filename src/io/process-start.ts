import { readFileSync } from "node:fs";

/**
 * When a process started, as an opaque string, or null where it cannot be read. On Linux this is field 22 of
 * /proc/<pid>/stat (clock ticks since boot): a pid reused by another process has a different value, so a lock
 * left by a dead owner is not mistaken for one held by whoever got its pid.
 */
export function processStartTime(pid: number): string | null {
  if (process.platform !== "linux") return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (the command name) may contain spaces and parentheses: count fields after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
