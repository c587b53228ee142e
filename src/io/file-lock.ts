import { link, readFile, rm, writeFile } from "node:fs/promises";
import { errnoCode, Interrupted } from "../errors.js";
import { tempSibling } from "./atomic.js";

/**
 * An exclusive lock between processes: a `<path>` file, created atomically, holding the owner's pid.
 * A lock whose owner is gone (crash, SIGKILL) is taken over. Returns the release function.
 */
export async function acquireLock(path: string, options: { signal?: AbortSignal | undefined; pollMs?: number } = {}): Promise<() => Promise<void>> {
  const pollMs = options.pollMs ?? 200;
  while (true) {
    if (options.signal?.aborted) throw new Interrupted("interrupted");
    // The pid is written to a private file first and hard-linked into place, so the lock never exists empty.
    const temp = tempSibling(path);
    await writeFile(temp, String(process.pid));
    try {
      await link(temp, path);
      return () => rm(path, { force: true });
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
    } finally {
      await rm(temp, { force: true });
    }
    const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (!isAlive(owner)) {
      await rm(path, { force: true });
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM";
  }
}
