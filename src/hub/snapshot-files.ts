import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
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

export async function readRef(paths: RepoCachePaths, revision: string): Promise<string | null> {
  try {
    return (await readFile(join(paths.refs, revision), "utf8")).trim();
  } catch {
    return null;
  }
}

/** Every file path under a snapshot folder, relative, with forward slashes, sorted. */
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
  } catch {
    return [];
  }
  return out.sort();
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}
