import { mkdir, rename, rm } from "node:fs/promises";
import { tempSibling } from "./atomic.js";

/**
 * Fills a temp folder next to `dir`, then swaps it into place: the old folder is moved aside before the new one is
 * renamed in and only deleted after, so a crash leaves the old or the new folder (the aside copy), never neither.
 */
export async function replaceDirAtomic(dir: string, fill: (temp: string) => Promise<void>): Promise<void> {
  const temp = tempSibling(dir);
  await mkdir(temp, { recursive: true });
  try {
    await fill(temp);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  const aside = tempSibling(dir);
  const hadOld = await rename(dir, aside).then(() => true, () => false);
  await rename(temp, dir);
  if (hadOld) await rm(aside, { recursive: true, force: true });
}
