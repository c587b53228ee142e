import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { symlinkAtomic, writeFileAtomic } from "../io/atomic.js";
import type { RepoCachePaths } from "./cache-paths.js";

/** Points `snapshots/<sha>/<path>` at `blobs/<blob>` with a relative symlink, as huggingface_hub does. */
export async function linkSnapshotFile(paths: RepoCachePaths, sha: string, path: string, blobName: string): Promise<void> {
  const link = join(paths.snapshots, sha, path);
  const target = relative(dirname(link), join(paths.blobs, blobName));
  const current = await readlink(link).catch(() => null);
  if (current === target) return;
  await symlinkAtomic(target, link);
}

/** `refs/<revision>` holds the commit sha, with no newline. */
export async function writeRef(paths: RepoCachePaths, revision: string, sha: string): Promise<void> {
  await writeFileAtomic(join(paths.refs, revision), sha);
}

/** The sha a ref points to, or null when the ref file does not exist; an unreadable ref is an error naming it. */
export async function readRef(paths: RepoCachePaths, revision: string): Promise<string | null> {
  const path = join(paths.refs, revision);
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (error) {
    const code = errnoCode(error);
    // ENOTDIR/EISDIR: a revision like "v1/x" against refs laid out otherwise — the ref is simply not there.
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return null;
    throw new UserError(`cannot read the cached ref ${path} (${code ?? String(error)}); check its permissions, or remove it and pull again.`);
  }
}

/**
 * Every file path under a snapshot folder, relative, with forward slashes, sorted. A folder that does not exist
 * has no files ([]); any other failure (permissions, a file where a folder should be) is an error naming the path,
 * never an empty list that would read as "nothing downloaded".
 */
export async function listSnapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(sub: string): Promise<void> {
    const entries = await readdir(join(dir, sub), { withFileTypes: true });
    for (const entry of entries) {
      const rel = sub === "" ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory()) await walk(rel);
      else out.push(rel);
    }
  }
  try {
    await walk("");
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT" && out.length === 0 && !(await exists(dir))) return [];
    const path = typeof error === "object" && error !== null && "path" in error && typeof error.path === "string" ? error.path : dir;
    throw new UserError(`cannot list the files of ${path} (${code ?? String(error)}); check its permissions, or remove the folder and pull again.`);
  }
  return out.sort();
}

const exists = (path: string): Promise<boolean> => lstat(path).then(() => true, () => false);

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}
