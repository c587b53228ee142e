import { readdir, rm, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { errnoCode } from "../errors.js";

/** The names `tempSibling` gives: `<name>.tmp-<pid>-<8 hex>`. */
const TEMP_NAME = /^.+\.tmp-(\d+)-[0-9a-f]{8}$/;

/**
 * Removes the temp files and folders a killed finetune process left in a run directory (and its checkpoints/):
 * only names in our own temp pattern whose process is gone. A live process's temps (another run writing) are
 * left alone. Returns the paths removed.
 */
export async function removeStaleTemps(output: string, isAlive: (pid: number) => boolean = processAlive): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [output, join(output, "checkpoints")]) {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      // Absent, not a folder or unreadable: nothing of ours to clean; the output checks report the real problem.
      continue;
    }
    for (const entry of entries) {
      const match = TEMP_NAME.exec(entry);
      if (!match || isAlive(Number(match[1]))) continue;
      await rm(join(dir, entry), { recursive: true, force: true });
      removed.push(join(dir, entry));
    }
  }
  // checkpoints/ is created just before the first checkpoint write; if that write was all it held, it goes too.
  if (removed.some((path) => dirname(path) === join(output, "checkpoints"))) await rmdir(join(output, "checkpoints")).catch(() => undefined);
  return removed;
}

/** Whether a process exists. Our own pid counts as gone: this runs before we write anything, so such a temp is a predecessor's that had our pid. */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM";
  }
}
