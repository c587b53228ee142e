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
      // Release only a lock that is still ours (a stale-lock takeover may have replaced it).
      return async () => {
        const owner = await readFile(path, "utf8").catch(() => null);
        if (owner?.trim() === String(process.pid)) await rm(path, { force: true });
      };
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
    } finally {
      await rm(temp, { force: true });
    }
    const text = await readFile(path, "utf8").catch(() => null);
    // Gone between our attempt and the read: the owner just released it, so try again.
    if (text === null) continue;
    if (!isAlive(Number(text.trim()))) {
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
