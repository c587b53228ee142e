import { scanCacheDir } from "@huggingface/hub";
import { rm, stat } from "node:fs/promises";
import type { RepoType } from "./repo-ref.js";

export interface CachedRevision {
  sha: string;
  refs: string[];
  files: string[];
  size: number;
}

export interface CachedRepo {
  type: RepoType;
  repo: string;
  path: string;
  size: number;
  revisions: CachedRevision[];
}

export interface CacheScan {
  root: string;
  repos: CachedRepo[];
  size: number;
  /** Folders that are not valid cache entries, with why. */
  warnings: string[];
}

/** Scans the HF cache with huggingface.js's own scanner; an absent cache is an empty one. */
export async function scanCache(root: string): Promise<CacheScan> {
  const exists = await stat(root).then((s) => s.isDirectory()).catch(() => false);
  if (!exists) return { root, repos: [], size: 0, warnings: [] };
  const info = await scanCacheDir(root);
  const repos = info.repos
    .filter((repo) => repo.id.type === "model" || repo.id.type === "dataset")
    .map((repo) => ({
      type: repo.id.type as RepoType,
      repo: repo.id.name,
      path: repo.path,
      size: repo.size,
      revisions: repo.revisions.map((revision) => ({
        sha: revision.commitOid,
        refs: [...revision.refs].sort(),
        files: revision.files.map((file) => file.path.slice(revision.path.length + 1)).sort(),
        // Bytes on disk: a blob linked by several files counts once (as huggingface_hub's size_on_disk).
        size: [...new Map(revision.files.map((file) => [file.blob.path, file.blob.size])).values()].reduce((a, b) => a + b, 0),
      })),
    }))
    .sort((a, b) => a.repo.localeCompare(b.repo));
  return { root, repos, size: info.size, warnings: info.warnings.map((w) => w.message) };
}

/** Deletes a cached repo folder (all revisions and blobs); returns the bytes freed. */
export async function removeCachedRepo(repo: CachedRepo): Promise<number> {
  await rm(repo.path, { recursive: true, force: true });
  return repo.size;
}
